/**
 * The emulator's operations: each mutating call answers an operation at once (RUNNING) and
 * does its work in the background, after a short delay, ending DONE — with `error` when the
 * work failed late (ZONE_RESOURCE_POOL_EXHAUSTED after an accepted insert). A call repeated
 * with the same `requestId` answers the first call's operation and does nothing again, as
 * Compute does. `wait` answers once the operation is DONE (or after a bound).
 *
 * @example
 *   const op = ops.start('insert', targetLink, zoneLink, requestId, async () => { … });
 */
import type { GceState } from './state.js';
import { newOperation, timestamp, type GceOperationRecord } from './wire.js';

/** A late failure of an operation's work: its `error.errors[]` entry. */
export class OperationFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Starts, runs and tracks operations (see the file's comment). */
export class Operations {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly state: GceState,
    private readonly user: string,
    private readonly delayMs: number,
  ) {}

  /** The operation of an earlier call with this requestId, if any. */
  repeated(requestId: string | null): GceOperationRecord | undefined {
    const name = requestId ? this.state.requestIds.get(requestId) : undefined;
    return name ? this.state.operations.get(name) : undefined;
  }

  /** Starts an operation whose work runs in the background. */
  start(operationType: string, targetLink: string, zoneLink: string | undefined, requestId: string | null, work: () => Promise<void>, targetId?: string): GceOperationRecord {
    const op = newOperation(this.state.projectLink, operationType, targetLink, this.user, zoneLink);
    if (targetId) op.targetId = targetId;
    this.state.operations.set(op.name, op);
    if (requestId) this.state.requestIds.set(requestId, op.name);
    const run = (async () => {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      try {
        await work();
      } catch (e) {
        const code = e instanceof OperationFailure ? e.code : 'INTERNAL_ERROR';
        op.error = { errors: [{ code, message: e instanceof Error ? e.message : String(e) }] };
      }
      op.status = 'DONE';
      op.progress = 100;
      op.endTime = timestamp();
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
    return { ...op };
  }

  /** The operation, waited for up to `ms` until DONE. */
  async wait(op: GceOperationRecord, ms = 120_000): Promise<GceOperationRecord> {
    const deadline = Date.now() + ms;
    while (op.status !== 'DONE' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return op;
  }

  /** Resolves when no operation's work is running. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }
}
