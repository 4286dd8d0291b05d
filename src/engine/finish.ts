/**
 * Finishing a run: the one transaction that records a run's end and moves its node-role on.
 * A success stores the outputs (sealed where they republish a secret) and input hash, marks
 * the node-role `active` (or `todo` again when its inputs changed while it ran) and promotes
 * or re-runs its children; a failure retries with backoff or marks it `error` and names the
 * failure on every waiting descendant. Either way, a run whose lease passed to another
 * worker, or whose node-role was deleted meanwhile, only records the run as abandoned.
 *
 * @example
 *   const finisher = new RunFinisher({ store, loader, workerId, retryBaseMs: 500, retryMaxMs: 60_000, stopping: () => false });
 *   await finisher.success(nr, claim, runId, result, outputs, resolved.hash, log, ctx);
 *   const retryIn = await finisher.failure(nr, claim, runId, err, log, ctx);   // ms until the retry is due, if any
 */
import { isRemoving } from '../core/attribs.js';
import { FormworkError, toFormworkError, type ErrorCode } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { RoleSpec } from '../core/roles.js';
import { sameValue } from '../store/repository.js';
import { sealOwner } from '../store/sealing.js';
import type { Store } from '../store/store.js';
import { children, descendants, reevaluate, requeue, withTxRetry } from './graph.js';
import type { ContextLoader, NodeRoleContext } from './inputs.js';
import type { HeadTailText } from './log.js';
import { protectOutputs } from './secrecy.js';
import { DEFAULT_RETRIES, type RunResult } from './types.js';

/**
 * What finishing needs of the worker: its store and context loader, its id (the lease
 * owner and the writes' actor), its backoff, and whether it is stopping.
 *
 * @example
 *   const o: FinisherOptions = { store, loader, workerId: 'w1', retryBaseMs: 500, retryMaxMs: 60_000, stopping: () => annealerStopping };
 */
export interface FinisherOptions {
  store: Store;
  loader: ContextLoader;
  workerId: string;
  /** Retry backoff: min(max, base·2^(attempt-1)) · (0.5..1 jitter). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** True once the worker stops: a run it stopped then is given back, its attempt not counted. */
  stopping: () => boolean;
}

/**
 * The worker's hold on a run while it lasts: `leaseLost` once its claim passed to another
 * worker (or its node-role was deleted); `ac` aborts the run.
 *
 * @example
 *   const claim: RunClaim = { leaseLost: false, ac: new AbortController() };
 */
export interface RunClaim {
  leaseLost: boolean;
  ac: AbortController;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Records runs' ends and moves their node-roles on (see the file's comment).
 *
 * @example
 *   const finisher = new RunFinisher({ store, loader, workerId: 'w1', retryBaseMs: 500, retryMaxMs: 60_000, stopping: () => false });
 */
export class RunFinisher {
  constructor(private readonly o: FinisherOptions) {}

  /**
   * A run that succeeded: its outputs and input hash stored, the node-role `active` (or
   * `todo`: its inputs changed while it ran, or its removal step is next), children
   * promoted, and active children re-run when the outputs changed (not destructive ones).
   *
   * @example
   *   await finisher.success(nr, claim, runId, result, outputs, resolved.hash, log, ctx);
   */
  async success(
    nr: StoredObject,
    claim: RunClaim,
    runId: string,
    result: RunResult,
    outputs: Record<string, unknown>,
    hash: string,
    log: HeadTailText,
    ctx: NodeRoleContext,
  ): Promise<void> {
    const { store, workerId: actor } = this.o;
    await withTxRetry(store, async (tx) => {
      const cur = await tx.objects('noderoles').find(nr.id);
      const endedAt = iso(Date.now());
      if (!cur) {
        await tx.objects('runs').update(runId, { endedAt, exitCode: result.exitCode, log: log.toString(), ...deletedRun(nr) }, { actor });
        return;
      }
      // Outputs that republish a secret are secret too: sealed on the node-role, redacted in the run.
      const { stored, shown } = protectOutputs(outputs, ctx.secrets, cur.outputs, store.secrets, sealOwner('noderoles', cur));
      const runFields = { endedAt, exitCode: result.exitCode, log: log.toString(), outputs: shown };
      if (!this.ownsLease(cur) || claim.leaseLost) {
        await tx.objects('runs').update(runId, { ...runFields, ...lostLeaseRun(cur) }, { actor });
        return;
      }
      if (result.nodeUpdate && ctx.node) await tx.objects('nodes').update(ctx.node.id, result.nodeUpdate, { actor });
      await tx.objects('runs').update(runId, { ...runFields, state: 'succeeded' }, { actor });
      if (isRemoving(cur.attribs) && ctx.role.removal) {
        // Its binding was removed while it ran: its removal step is next.
        await tx.objects('noderoles').update(cur.id, { state: 'todo', outputs, inputHash: hash, leaseOwner: null, leaseExpiresAt: null, attempts: 0, nextAttemptAt: null }, { actor, expectedVersion: cur.version });
        return;
      }
      const before = cur.outputs;
      // Inputs changed while it ran (a re-apply, a node or parent update): the checks that
      // change events trigger skip a running node-role, so this is where such a change is
      // caught. Read in this transaction, so that a change either shows here or comes after.
      const stale = await this.o.loader.stale(cur, hash, tx);
      await tx.objects('noderoles').update(
        cur.id,
        {
          ...(stale ? { state: 'todo', attempts: 0 } : { state: 'active' }),
          outputs: stored,
          inputHash: hash,
          leaseOwner: null,
          leaseExpiresAt: null,
          lastError: null,
          nextAttemptAt: null,
          blockedReason: null,
        },
        { actor, expectedVersion: cur.version },
      );
      const outputsChanged = before !== undefined && !sameValue(before, stored);
      for (const c of await children(tx, cur.id)) {
        if (c.state === 'active') {
          // A parent's new outputs re-run its children (not destructive ones).
          if (outputsChanged && !(await this.isDestructive(tx, c.role as string))) await requeue(tx, c, actor);
        } else {
          await reevaluate(tx, c, actor);
        }
      }
    });
  }

  /**
   * A run that failed (or could not start: `ctx` undefined): retried with backoff while the
   * error is retryable and retries are left, else `error` with every waiting descendant
   * naming it. Returns the delay until the retry is due, when one was scheduled.
   *
   * @example
   *   const retryIn = await finisher.failure(nr, claim, runId, err, log, ctx, result?.exitCode);
   *   if (retryIn !== undefined) wakeAfter(retryIn + 1);
   */
  async failure(
    nr: StoredObject,
    claim: RunClaim,
    runId: string,
    err: unknown,
    log: HeadTailText,
    ctx: NodeRoleContext | undefined,
    exitCode?: number,
  ): Promise<number | undefined> {
    const fe = toFormworkError(err ?? new Error('the run failed without an error'));
    if (ctx) fe.message = ctx.secrets.mask(fe.message); // e.g. a schema error quoting an input fed from a secret
    const { store, workerId: actor } = this.o;
    const role: RoleSpec | undefined = ctx?.role;
    const details = fe.details as Record<string, unknown> | undefined;
    const code = exitCode ?? (typeof details?.exitCode === 'number' ? (details.exitCode as number) : undefined);
    if (fe.code === 'RUN_TIMEOUT') log.push(`\n[formwork: ${fe.message}]\n`);
    let retryIn: number | undefined;
    await withTxRetry(store, async (tx) => {
      const cur = await tx.objects('noderoles').find(nr.id);
      const endedAt = Date.now();
      const runFields = { endedAt: iso(endedAt), exitCode: code ?? null, log: log.toString() };
      if (!cur) {
        await tx.objects('runs').update(runId, { ...runFields, ...deletedRun(nr) }, { actor });
        return;
      }
      if (!this.ownsLease(cur) || claim.leaseLost) {
        await tx.objects('runs').update(runId, { ...runFields, ...lostLeaseRun(cur) }, { actor });
        return;
      }
      const nodeUpdate = (err as { nodeUpdate?: Record<string, unknown> } | undefined)?.nodeUpdate;
      if (nodeUpdate && ctx?.node) await tx.objects('nodes').update(ctx.node.id, nodeUpdate, { actor });
      if (this.o.stopping() && claim.ac.signal.aborted) {
        // This worker is stopping: give the node-role back, without counting the attempt.
        await tx.objects('runs').update(runId, { ...runFields, state: 'abandoned', error: { code: 'WORKER_STOPPED' satisfies ErrorCode, message: `worker ${actor} stopped during the run` } }, { actor });
        await tx.objects('noderoles').update(
          cur.id,
          { state: 'todo', leaseOwner: null, leaseExpiresAt: null, attempts: Math.max(0, Number(cur.attempts ?? 1) - 1) },
          { actor, expectedVersion: cur.version },
        );
        return;
      }
      await tx.objects('runs').update(runId, { ...runFields, state: 'failed', error: fe.toJSON() }, { actor });
      const attempts = Number(cur.attempts ?? 1);
      const retries = role?.retries ?? DEFAULT_RETRIES;
      if (fe.retryable && attempts < 1 + retries) {
        const delay = fe.nextDelayMs ?? this.backoff(attempts);
        const next = iso(endedAt + delay);
        await tx.objects('noderoles').update(
          cur.id,
          {
            state: 'todo',
            nextAttemptAt: next,
            leaseOwner: null,
            leaseExpiresAt: null,
            lastError: { ...fe.toJSON(), attempt: attempts, run: runId, retryAt: next, summary: `attempt ${attempts} of ${1 + retries} failed: ${fe.message}; retrying at ${next}` },
          },
          { actor, expectedVersion: cur.version },
        );
        retryIn = delay;
        return;
      }
      await tx.objects('noderoles').update(
        cur.id,
        {
          state: 'error',
          nextAttemptAt: null,
          leaseOwner: null,
          leaseExpiresAt: null,
          lastError: { ...fe.toJSON(), attempt: attempts, run: runId, summary: `attempt ${attempts} failed${fe.retryable ? ' (no retries left)' : ' (not retryable)'}: ${fe.message}` },
        },
        { actor, expectedVersion: cur.version },
      );
      // Every waiting descendant names the failure (the reason comes from the graph).
      for (const d of await descendants(tx, cur.id)) await reevaluate(tx, d, actor);
    });
    return retryIn;
  }

  private ownsLease(cur: StoredObject): boolean {
    return cur.state === 'running' && cur.leaseOwner === this.o.workerId;
  }

  /** Read in the run's finishing transaction, through it: a role no longer defined is not destructive. */
  private async isDestructive(tx: Store, role: string): Promise<boolean> {
    const spec = await this.o.loader.role(role, tx).catch((e: unknown) => {
      if (e instanceof FormworkError && e.code === 'ROLE_UNKNOWN') return undefined;
      throw e;
    });
    return spec?.flags.includes('destructive') ?? false;
  }

  private backoff(attempt: number): number {
    const raw = Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(raw * (0.5 + Math.random() * 0.5));
  }
}

/** A run whose lease passed to another worker before it ended: its result is discarded. */
function lostLeaseRun(cur: StoredObject): Record<string, unknown> {
  return {
    state: 'abandoned',
    error: {
      code: 'LEASE_LOST' satisfies ErrorCode,
      message: `the lease of ${cur.name} passed to ${cur.leaseOwner ?? 'no worker'} (state ${cur.state}) before this run ended; its result was discarded`,
    },
  };
}

/** A run whose node-role was deleted while it ran: nothing is left to take its result. */
function deletedRun(nr: StoredObject): Record<string, unknown> {
  return {
    state: 'abandoned',
    error: {
      code: 'NODEROLE_DELETED' satisfies ErrorCode,
      message: `node-role ${nr.name} was deleted during this run (its binding or node left the deployment); its result was discarded`,
    },
  };
}
