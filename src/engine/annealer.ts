/**
 * The annealer: the running half of the engine.
 *
 * Repeatedly: find runnable node-roles (state `todo`, every parent `active`, the next
 * attempt due, nothing else running on the same node), claim each with a lease, run it
 * through its executor with its resolved inputs, record a Run, store its outputs and input
 * hash, mark it `active` (promoting children) or retry with backoff / `error` (blocking
 * the subtree with the reason; finish.ts). State lives in the store: a killed worker's leases expire
 * and another worker takes the work, at once when that worker was of this host (leases.ts,
 * workers.ts); nothing runs twice at once. Input changes are found by changes.ts and by the
 * finishing transaction of each successful run.
 *
 * Each pass also carries out the deletions that DELETE asked for (deprovision.ts: the
 * built-in deprovision step, under a claim on the object, with retries).
 *
 * The queue's queries and the claim itself are the store's (store/work-queue.ts): PostgreSQL
 * locks candidates `FOR UPDATE SKIP LOCKED` and each node with a transaction-scoped advisory
 * try-lock, then re-checks that nothing runs on the node; SQLite does the same check and a
 * version-checked update inside one transaction (one writer at a time); this file schedules. A worker claims only work whose provider's `affinity` (the host a
 * host-bound provider such as lab was prepared on) is empty or its own (`affinity`).
 * `concurrency` is per worker; `perProviderConcurrency` holds across all
 * workers on the store: the claim counts the provider's running node-roles in the store
 * (on PostgreSQL under a per-provider advisory lock, so two claims cannot both take the last slot).
 *
 * @example
 *   const annealer = new Annealer(services, { concurrency: 8 });
 *   services.engine = annealer;
 *   await annealer.start();
 *   …
 *   await annealer.retry('demo:web-1:nginx');
 *   await annealer.stop();
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { isRemoving } from '../core/attribs.js';
import { FormworkError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { StoredObject } from '../core/kinds.js';
import type { EngineHandle, Services } from '../context/services.js';
import type { Store } from '../store/store.js';
import { SshPool } from '../ssh/client.js';
import { preloadSsh2 } from '../ssh/ssh2.js';
import { defaultExecutors } from './executors/index.js';
import { isContention, parseRetryTarget, reevaluate, retryNodeRoles, type RetryTarget } from './graph.js';
import { redactNamed } from './secrecy.js';
import { addWorkerRow, claimNodeRoles, heartbeat, promotableNodeRoles, removeWorkerRow, runnableNodeRoles, type QueueCandidate } from '../store/work-queue.js';
import { ContextLoader, resolveContext, type NodeRoleContext, type Resolved } from './inputs.js';
import { finishRemoval, removalRole } from './removal.js';
import { DEFAULT_LOG_CAP, HeadTailText, LogPublisher } from './log.js';
import { validateOutputs } from './outputs.js';
import { InputChanges } from './changes.js';
import { RunFinisher } from './finish.js';
import { expireLeases, releaseDeadWorkers } from './leases.js';
import { Deprovisioner, type DeprovisionOptions } from './deprovision.js';
import { forgetWorker, registerWorker, workerAffinity, type WorkerRecord } from './workers.js';
import { DEFAULT_TIMEOUT_SECONDS, type RoleExecutor, type RunJob, type RunResult } from './types.js';

export interface AnnealerOptions {
  /** Names this worker in leases and runs. Default `<host>:<pid>:<random>`. */
  workerId?: string;
  /** Which host-bound providers' work this worker takes (their `affinity`). Default FORMWORK_WORKER_AFFINITY, else the host name. */
  affinity?: string;
  /** Runs at once in this worker. Default 8. */
  concurrency?: number;
  /** Runs at once per provider (the node's provider), across every worker on the store. Default 4. */
  perProviderConcurrency?: number;
  /** A claim's lease; renewed every leaseMs/3 while the run lasts. Default 30 s. */
  leaseMs?: number;
  /** Loop period when nothing wakes it. Default 200 ms. */
  tickMs?: number;
  /** Retry backoff: min(max, base·2^(attempt-1)) · (0.5..1 jitter). Defaults 500 ms, 60 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A run log keeps its head and tail within this many characters. Default 1 MiB. */
  logCapBytes?: number;
  /** How often log output is published as `logs` events. Default 200 ms. */
  logFlushMs?: number;
  /** Executors by implementation kind; replaces/extends the standard ones. */
  executors?: Record<string, RoleExecutor>;
  /** Shared SSH pool (default: one of its own, closed on stop). */
  sshPool?: SshPool;
  /**
   * How often every active node-role's inputs are resolved again and compared with the hash
   * of its last run, besides the checks that change events trigger: a safety net for changes
   * written without an event (straight into the database). Default 60 s.
   */
  inputSweepMs?: number;
  /** Errors of the loop itself (not of runs, which are recorded). Default: stderr. */
  onError?: (err: unknown, where: string) => void;
  /** The deprovision step's settings (deprovision.ts); its lease and backoff default to the ones above. */
  deprovision?: Omit<DeprovisionOptions, 'workerId' | 'onSettled' | 'onError'>;
}

interface Inflight {
  id: string;
  name: string;
  node?: string;
  provider?: string;
  ac: AbortController;
  leaseLost: boolean;
  promise?: Promise<void>;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** How long a stopped run's executor gets to stop what it started and settle, before the run is given up on. */
const ABORT_GRACE_MS = 5100;

export class Annealer implements EngineHandle {
  readonly workerId: string;
  private readonly store: Store;
  private readonly loader: ContextLoader;
  private readonly executors: Map<string, RoleExecutor>;
  private readonly pool: SshPool;
  private readonly ownPool: boolean;
  private readonly o: Required<Omit<AnnealerOptions, 'workerId' | 'executors' | 'sshPool' | 'onError' | 'deprovision'>>;
  private readonly deprovisionOptions: AnnealerOptions['deprovision'];
  /** Carries out the deletions DELETE asked for (made anew at each start). */
  private deprovisioner: Deprovisioner | undefined;
  private readonly onError: (err: unknown, where: string) => void;
  private readonly inflight = new Map<string, Inflight>();
  private started = false;
  /** This worker's record in the data dir (src/engine/workers.ts); its runs' temp dirs are under its tempDir. */
  private record: WorkerRecord | undefined;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private kicked = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private lastSweep = 0;
  private lastEventPoll = 0;
  private lastInputSweep = 0;
  private readonly changes: InputChanges;
  private readonly finisher: RunFinisher;

  constructor(
    private readonly services: Services,
    opts: AnnealerOptions = {},
  ) {
    this.store = services.store;
    this.workerId = opts.workerId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.o = {
      affinity: opts.affinity ?? workerAffinity(),
      concurrency: opts.concurrency ?? 8,
      perProviderConcurrency: opts.perProviderConcurrency ?? 4,
      leaseMs: opts.leaseMs ?? 30_000,
      tickMs: opts.tickMs ?? 200,
      retryBaseMs: opts.retryBaseMs ?? 500,
      retryMaxMs: opts.retryMaxMs ?? 60_000,
      logCapBytes: opts.logCapBytes ?? DEFAULT_LOG_CAP,
      logFlushMs: opts.logFlushMs ?? 200,
      inputSweepMs: opts.inputSweepMs ?? 60_000,
    };
    this.deprovisionOptions = opts.deprovision;
    this.onError = opts.onError ?? ((e, where) => console.error(`formwork engine (${where}):`, e instanceof Error ? e.message : e));
    this.loader = new ContextLoader(this.store.secrets);
    this.finisher = new RunFinisher({
      store: this.store,
      loader: this.loader,
      workerId: this.workerId,
      retryBaseMs: this.o.retryBaseMs,
      retryMaxMs: this.o.retryMaxMs,
      stopping: () => this.stopping,
    });
    this.changes = new InputChanges(this.store, this.loader, this.workerId, (id) => this.stopInflight(id));
    this.ownPool = !opts.sshPool;
    this.pool = opts.sshPool ?? new SshPool();
    this.executors = defaultExecutors(services, this.pool);
    for (const [kind, ex] of Object.entries(opts.executors ?? {})) this.executors.set(kind, ex);
  }

  /** Runs in flight in this worker. */
  get running(): number {
    return this.inflight.size;
  }

  async start(): Promise<void> {
    if (this.started) return;
    // First, so that a data dir it cannot write fails the start and leaves nothing half-started.
    this.record = registerWorker(this.services.dataDir, this.workerId);
    this.started = true;
    this.stopping = false;
    await addWorkerRow(this.store, { id: this.workerId, host: os.hostname(), pid: process.pid }).catch((e) => this.onError(e, 'register worker'));
    await releaseDeadWorkers(this.store, this.services.dataDir, this.workerId).catch((e) => this.onError(e, 'release dead workers'));
    await this.changes.startFromNow();
    this.lastInputSweep = Date.now();
    this.deprovisioner = new Deprovisioner(this.services, {
      leaseMs: this.o.leaseMs,
      retryBaseMs: this.o.retryBaseMs,
      retryMaxMs: this.o.retryMaxMs,
      ...this.deprovisionOptions,
      workerId: this.workerId,
      onSettled: () => this.kick(),
      onError: this.onError,
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch((e) => this.onError(e, 'heartbeat')), Math.max(50, Math.floor(this.o.leaseMs / 3)));
    this.heartbeatTimer.unref();
    this.loopDone = this.loop();
  }

  /** Stops the loop; runs in flight are stopped and their node-roles released to `todo`. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    this.kick();
    await this.loopDone;
    await this.deprovisioner?.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const f of this.inflight.values()) f.ac.abort();
    await Promise.all([...this.inflight.values()].map((f) => f.promise));
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await removeWorkerRow(this.store, this.workerId).catch(() => undefined);
    if (this.record) forgetWorker(this.services.dataDir, this.record);
    this.record = undefined;
    if (this.ownPool) await this.pool.close();
    this.started = false;
  }

  kick(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    } else this.kicked = true;
  }

  /** error → todo for a node-role or every failed one of a deployment (`deployment/NAME`); wakes the loop. */
  async retry(target: string | RetryTarget, actor = 'engine'): Promise<StoredObject[]> {
    const changed = await retryNodeRoles(this.store, typeof target === 'string' ? parseRetryTarget(target) : target, actor);
    this.kick();
    return changed;
  }

  // -------------------------------------------------------------------------------------
  // The loop

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.tick();
      } catch (e) {
        this.onError(e, 'tick');
      }
      if (this.stopping) break;
      await this.sleep(this.o.tickMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private later(ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.kick();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** One pass: leases, promotions, input changes (on events, and every inputSweepMs), then claim and start what can run. */
  async tick(): Promise<void> {
    const now = Date.now();
    if (now - this.lastSweep >= Math.min(1000, this.o.leaseMs / 4)) {
      this.lastSweep = now;
      const released =
        (await releaseDeadWorkers(this.store, this.services.dataDir, this.workerId)) + (await expireLeases(this.store, this.workerId, (id) => this.inflight.has(id)));
      if (released) this.kick();
      await this.promoteSweep();
    }
    if (now - this.lastInputSweep >= this.o.inputSweepMs) {
      this.lastInputSweep = now;
      this.changes.markAll();
    }
    if (now - this.lastEventPoll >= 250) {
      this.lastEventPoll = now;
      await this.changes.poll();
    }
    if (this.changes.pending && (await this.changes.check())) this.kick();
    await this.schedule();
    await this.deprovisioner?.tick();
  }

  private async schedule(): Promise<void> {
    const free = this.o.concurrency - this.inflight.size;
    if (free <= 0 || this.stopping) return;
    const cands = await runnableNodeRoles(this.store, { affinity: this.o.affinity, limit: Math.max(free * 4, 16) });
    const busyNodes = new Set<string>();
    const perProvider = new Map<string, number>();
    for (const f of this.inflight.values()) {
      if (f.node) busyNodes.add(f.node);
      if (f.provider) perProvider.set(f.provider, (perProvider.get(f.provider) ?? 0) + 1);
    }
    const picked: QueueCandidate[] = [];
    for (const c of cands) {
      if (picked.length >= free) break;
      if (c.node && busyNodes.has(c.node)) continue;
      if (c.provider && (perProvider.get(c.provider) ?? 0) >= this.o.perProviderConcurrency) continue;
      picked.push(c);
      if (c.node) busyNodes.add(c.node);
      if (c.provider) perProvider.set(c.provider, (perProvider.get(c.provider) ?? 0) + 1);
    }
    if (!picked.length) return;
    let claimed: StoredObject[] = [];
    try {
      claimed = await claimNodeRoles(this.store, picked, { workerId: this.workerId, leaseMs: this.o.leaseMs, perProviderConcurrency: this.o.perProviderConcurrency });
    } catch (e) {
      // Another process won a race on the same rows (SQLite busy, PostgreSQL version): next tick.
      if (!isContention(e)) throw e;
    }
    const byId = new Map(picked.map((c) => [c.id, c]));
    for (const nr of claimed) this.launch(nr, byId.get(nr.id)?.provider);
    // Runs reach nodes over SSH sooner or later: load ssh2 while the first ones wait on their
    // machines, rather than at start-up or in the middle of the first connection.
    if (claimed.length) preloadSsh2();
    if (claimed.length && this.inflight.size < this.o.concurrency) this.kick(); // there may be more to claim
  }

  private launch(nr: StoredObject, provider: string | undefined): void {
    const entry: Inflight = {
      id: nr.id,
      name: nr.name,
      node: typeof nr.node === 'string' ? nr.node : undefined,
      provider,
      ac: new AbortController(),
      leaseLost: false,
    };
    this.inflight.set(nr.id, entry);
    entry.promise = this.execute(nr, entry)
      .catch((e) => this.onError(e, `run ${nr.name}`))
      .finally(() => {
        this.inflight.delete(nr.id);
        this.kick();
      });
  }

  // -------------------------------------------------------------------------------------
  // One run

  private async execute(nr: StoredObject, entry: Inflight): Promise<void> {
    const startedAt = Date.now();
    let ctx: NodeRoleContext | undefined;
    let resolved: Resolved | undefined;
    let setupError: unknown;
    try {
      ctx = await this.loader.load(nr, this.store);
      resolved = resolveContext(ctx);
    } catch (e) {
      setupError = e;
    }
    const runId = newId('rn');
    const log = new HeadTailText(this.o.logCapBytes);
    const pub = new LogPublisher(this.store, nr.name, runId, { intervalMs: this.o.logFlushMs });
    await this.store.objects('runs').create(
      {
        id: runId,
        name: runName(nr.name, runId),
        noderole: nr.name,
        deployment: nr.deployment,
        node: nr.node,
        role: nr.role,
        attempt: nr.attempts,
        state: 'running',
        worker: this.workerId,
        startedAt: iso(startedAt),
        inputs: ctx && resolved ? redactNamed(resolved.inputs, resolved.secret) : undefined,
      },
      { actor: this.workerId },
    );
    if (setupError || !ctx || !resolved) {
      await this.failed(nr, entry, runId, setupError, log, ctx);
      return;
    }
    // A node-role whose binding was removed runs its role's removal step instead (removal.ts).
    const removal = isRemoving(nr.attribs) && !!ctx.role.removal;
    const role = removal ? removalRole(ctx.role) : ctx.role;
    const executor = this.executors.get(role.implementation.kind);
    const timeoutMs = Math.max(1, Math.round((role.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000));
    const job: RunJob = {
      runId,
      noderole: nr,
      role,
      node: ctx.node,
      deployment: ctx.deployment,
      inputs: resolved.inputs,
      previousInputs: ctx.previousInputs,
      ...(removal ? { removal: true } : {}),
      files: ctx.files,
      timeoutMs,
      tempDir: this.record?.tempDir ?? os.tmpdir(),
    };
    // What the run prints is masked before it is kept or published: a script may echo a secret.
    const masker = ctx.secrets.masker();
    const record = (text: string): void => {
      if (!text) return;
      log.push(text);
      pub.write(text);
    };
    const io = {
      log: (chunk: string) => record(masker.push(chunk)),
      signal: entry.ac.signal,
    };
    let result: RunResult | undefined;
    let outputs: Record<string, unknown> | undefined;
    let error: unknown;
    try {
      if (!executor) {
        throw new FormworkError('RUN_FAILED', `role ${role.name}: no executor for implementation kind "${role.implementation.kind}"`, { role: role.name }, { retryable: false });
      }
      result = await this.guard(executor.run(job, io), job, entry, executor.kind === 'builtin' ? 0 : 5000, ABORT_GRACE_MS);
      outputs = validateOutputs(result.outputs, role, ctx.node?.name);
    } catch (e) {
      error = e;
    }
    record(masker.end());
    await pub.close();
    if (error || !result || !outputs) await this.failed(nr, entry, runId, error, log, ctx, result?.exitCode);
    else if (removal) await finishRemoval(this.store, nr, runId, result, log.toString(), { actor: this.workerId, leaseLost: entry.leaseLost });
    else await this.finisher.success(nr, entry, runId, result, outputs, resolved.hash, log, ctx);
  }

  /** Records a failed run (finish.ts) and wakes the loop when its retry is due. */
  private async failed(nr: StoredObject, entry: Inflight, runId: string, err: unknown, log: HeadTailText, ctx: NodeRoleContext | undefined, exitCode?: number): Promise<void> {
    const retryIn = await this.finisher.failure(nr, entry, runId, err, log, ctx, exitCode);
    if (retryIn !== undefined) this.later(retryIn + 1);
  }

  /**
   * The executor's promise, bounded by the role's timeout (plus the executor's own grace) and
   * by abort (plus `abortGraceMs`, for every kind: a provider call stopped mid-create cleans
   * up what it made before it settles, and a stopping server waits for that).
   */
  private guard<T>(p: Promise<T>, job: RunJob, entry: Inflight, graceMs: number, abortGraceMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const where = `role ${job.role.name}${job.node ? ` on node ${job.node.name}` : ''}`;
      const t = setTimeout(() => {
        entry.ac.abort();
        reject(new FormworkError('RUN_TIMEOUT', `${where} did not finish within ${job.timeoutMs} ms and was stopped`, { timeoutMs: job.timeoutMs }));
      }, job.timeoutMs + graceMs);
      const onAbort = () => {
        // Give the executor a moment to stop its process and report; then give up on it.
        const t2 = setTimeout(() => reject(new FormworkError('RUN_FAILED', `${where} was stopped`, { aborted: true })), abortGraceMs);
        t2.unref();
      };
      entry.ac.signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  // -------------------------------------------------------------------------------------
  // Leases

  private async heartbeat(): Promise<void> {
    for (const id of await heartbeat(this.store, this.workerId, [...this.inflight.keys()], this.o.leaseMs)) this.stopInflight(id);
  }

  /**
   * Stops an in-flight run whose node-role is another worker's now, or deleted (its binding
   * or node left the deployment): its result will be discarded, and no node-role of that
   * name may run beside an orphan of this one.
   */
  private stopInflight(id: string): void {
    const f = this.inflight.get(id);
    if (f && !f.leaseLost) {
      f.leaseLost = true;
      f.ac.abort();
    }
  }

  /** Blocked node-roles whose parents are all active become `todo` (a safety net; completions promote at once). */
  private async promoteSweep(): Promise<void> {
    for (const nr of await promotableNodeRoles(this.store)) {
      await this.store.transaction((tx) => reevaluate(tx, nr, this.workerId)).catch((e) => {
        if (!(e instanceof FormworkError && e.code === 'VERSION_MISMATCH')) throw e;
      });
    }
  }
}

function runName(noderole: string, runId: string): string {
  const suffix = `@${runId.slice(3)}`;
  return noderole.slice(0, 253 - suffix.length) + suffix;
}
