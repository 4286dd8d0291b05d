/**
 * The annealer's built-in deprovision step: carries out the deletions that DELETE asked for
 * (services/deletion.ts) in whichever worker gets to them first.
 *
 * Each pass finds the objects marked deleting whose next attempt is due and whose claim is
 * free (or expired: its worker died), claims each with a version-checked update of its
 * `deletion` (a lease, renewed while the step lasts; one update wins on either engine), and
 * runs its step (`services.deprovision`, services/teardown.ts, given by server/assemble.ts:
 * the engine knows no provider). A step that waits (node-roles running, nodes still
 * being deleted) is looked at again soon without counting an attempt; one that fails is retried
 * with backoff as its error says (registered codes' `retryable` and `nextDelayMs`; an error
 * that is no FormworkError is retried), up to `retries`, with the last error recorded on the
 * object; then it is `failed` until a DELETE again. A finished step has removed the row.
 *
 * @example
 *   const d = new Deprovisioner(services, { workerId: 'w1' });
 *   await d.tick(); // claims and starts what is due
 *   await d.stop(); // waits for the steps in flight
 */
import { DEPROVISIONED_KINDS, deletionOf, type DeprovisionedKind, type Deletion, type StepOutcome } from '../core/deletion.js';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';

export interface DeprovisionOptions {
  workerId: string;
  /** Steps at once in this worker. Default 4. */
  concurrency?: number;
  /** A claim's lease, renewed every leaseMs/3. Default 30 s. */
  leaseMs?: number;
  /** Retries after the first failed attempt. Default 5. */
  retries?: number;
  /** Backoff: min(max, base·2^(attempt-1)) · (0.5..1 jitter). Defaults 500 ms, 60 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How soon a waiting step is looked at again. Default 1 s. */
  waitMs?: number;
  /** Called when a step's result is recorded (the annealer wakes itself to claim more). */
  onSettled?: () => void;
  onError?: (err: unknown, where: string) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class Deprovisioner {
  private readonly o: Required<Omit<DeprovisionOptions, 'onSettled' | 'onError'>>;
  private readonly inflight = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(
    private readonly services: Services,
    private readonly opts: DeprovisionOptions,
  ) {
    this.o = {
      workerId: opts.workerId,
      concurrency: opts.concurrency ?? 4,
      leaseMs: opts.leaseMs ?? 30_000,
      retries: opts.retries ?? 5,
      retryBaseMs: opts.retryBaseMs ?? 500,
      retryMaxMs: opts.retryMaxMs ?? 60_000,
      waitMs: opts.waitMs ?? 1000,
    };
  }

  get running(): number {
    return this.inflight.size;
  }

  /** Claims the deletions that are due (up to the free slots) and starts their steps. */
  async tick(): Promise<void> {
    // A process given no step (no providers wired in) leaves deletions to the workers that have one.
    if (this.stopping || !this.services.deprovision) return;
    const now = Date.now();
    for (const kind of DEPROVISIONED_KINDS) {
      if (this.inflight.size >= this.o.concurrency) return;
      const rows = await this.services.store.db.selectFrom(kind).selectAll().where('deletion', 'is not', null).orderBy('id').limit(100).execute();
      const repo = this.services.store.objects(kind);
      for (const row of rows) {
        if (this.inflight.size >= this.o.concurrency) return;
        const object = repo.toObject(row);
        const key = `${kind}/${object.id}`;
        if (this.inflight.has(key) || !due(deletionOf(object)!, now)) continue;
        const claimed = await this.claim(kind, object, now);
        if (!claimed) continue;
        const p = this.run(kind, claimed)
          .catch((e) => this.opts.onError?.(e, `deprovision ${kind} ${object.name}`))
          .finally(() => {
            this.inflight.delete(key);
            this.opts.onSettled?.();
          });
        this.inflight.set(key, p);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.inflight.values());
  }

  private async claim(kind: DeprovisionedKind, object: StoredObject, now: number): Promise<StoredObject | undefined> {
    const d = deletionOf(object)!;
    const deletion: Deletion = { ...d, attempts: d.attempts + 1, leaseOwner: this.o.workerId, leaseExpiresAt: iso(now + this.o.leaseMs) };
    try {
      return await this.services.store.objects(kind).update(object.id, { deletion }, { actor: this.o.workerId, expectedVersion: object.version });
    } catch (e) {
      // Another worker claimed it, or it changed (a DELETE again): the next pass sees it as it is.
      if (e instanceof FormworkError && (e.code === 'VERSION_MISMATCH' || e.code === 'NOT_FOUND' || e.code === 'CONFLICT')) return undefined;
      throw e;
    }
  }

  private async run(kind: DeprovisionedKind, object: StoredObject): Promise<void> {
    let renewing: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      renewing = this.update(kind, object.id, (d) => ({ ...d, leaseExpiresAt: iso(Date.now() + this.o.leaseMs) })).catch((e) => this.opts.onError?.(e, 'renew a deletion lease'));
    }, Math.max(50, Math.floor(this.o.leaseMs / 3)));
    let outcome: StepOutcome | undefined;
    let error: unknown;
    try {
      outcome = await this.services.deprovision!(kind, object, { actor: this.o.workerId });
    } catch (e) {
      error = e;
    } finally {
      clearInterval(timer);
      await renewing;
    }
    if (outcome === 'done') return;
    const now = Date.now();
    await this.update(kind, object.id, (d) => {
      const released = { ...d, leaseOwner: undefined, leaseExpiresAt: undefined };
      if (outcome) return { ...released, attempts: Math.max(0, d.attempts - 1), waitingFor: outcome.waitingFor, nextAttemptAt: iso(now + this.o.waitMs) };
      const fe = error instanceof FormworkError ? error : new FormworkError('INTERNAL', error instanceof Error ? error.message : String(error), undefined, { retryable: true, cause: error });
      const retry = fe.retryable && d.attempts < 1 + this.o.retries;
      const retryAt = retry ? iso(now + (fe.nextDelayMs ?? this.backoff(d.attempts))) : undefined;
      const lastError = { code: fe.code, message: fe.message, attempt: d.attempts, ...(retryAt ? { retryAt } : {}) };
      return { ...released, waitingFor: undefined, lastError, nextAttemptAt: retryAt, ...(retry ? {} : { failed: true }) };
    });
  }

  /** Rewrites this worker's claim on a deletion (version-checked; nothing when the claim is gone). */
  private async update(kind: DeprovisionedKind, id: string, change: (d: Deletion) => Deletion): Promise<void> {
    const repo = this.services.store.objects(kind);
    for (let tries = 0; tries < 5; tries++) {
      const cur = await repo.find(id);
      const d = cur && deletionOf(cur);
      if (!cur || !d || d.leaseOwner !== this.o.workerId) return;
      const next = JSON.parse(JSON.stringify(change(d))) as Deletion; // drops the undefined fields
      try {
        await repo.update(id, { deletion: next }, { actor: this.o.workerId, expectedVersion: cur.version });
        return;
      } catch (e) {
        if (!(e instanceof FormworkError && (e.code === 'VERSION_MISMATCH' || e.code === 'NOT_FOUND'))) throw e;
      }
    }
  }

  private backoff(attempt: number): number {
    const raw = Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(raw * (0.5 + Math.random() * 0.5));
  }
}

function due(d: Deletion, now: number): boolean {
  if (d.failed) return false;
  if (d.nextAttemptAt && Date.parse(d.nextAttemptAt) > now) return false;
  return !d.leaseOwner || !d.leaseExpiresAt || Date.parse(d.leaseExpiresAt) <= now;
}
