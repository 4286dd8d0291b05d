/**
 * Taking back claims of workers that are gone, so that their node-roles run again:
 * claims whose lease expired (a worker anywhere stopped heartbeating), and, sooner, claims
 * of workers of this host whose record names a dead process (src/engine/workers.ts).
 * The annealer calls both on its lease pass; each release is one transaction that
 * re-checks the claim, so workers racing on the same claim release it once. The queries
 * and the release itself are the store's (store/work-queue.ts); this decides whose claims go.
 *
 * @example
 *   const released = (await releaseDeadWorkers(store, dataDir, me)) + (await expireLeases(store, me, (id) => inflight.has(id)));
 */
import type { Store } from '../store/store.js';
import { claimsOf, expiredClaims, releaseClaim, removeWorkerRow } from '../store/work-queue.js';
import { deadWorkers, forgetWorker } from './workers.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Node-roles whose lease expired (their worker died) go back to `todo`; their runs are
 * `abandoned` (LEASE_EXPIRED). `ours` names claims of the caller, which it renews itself.
 * Returns how many.
 *
 * @example
 *   if (await expireLeases(store, workerId, (id) => inflight.has(id))) kick();
 */
export async function expireLeases(store: Store, actor: string, ours: (id: string) => boolean): Promise<number> {
  const now = iso(Date.now());
  let n = 0;
  for (const id of await expiredClaims(store, now)) {
    if (ours(id)) continue; // alive: the heartbeat renews it
    const done = await releaseClaim(
      store,
      actor,
      id,
      (cur) => !cur.leaseExpiresAt || (cur.leaseExpiresAt as string) < now,
      (owner) => ({
        code: 'LEASE_EXPIRED',
        noderole: `the lease of worker ${owner} expired (the worker stopped or lost the database); the node-role was queued again`,
        run: `worker ${owner} stopped heartbeating during the run`,
      }),
    );
    if (done) n++;
  }
  return n;
}

/**
 * Workers of this host that died without stopping: their node-roles go back to `todo` at
 * once (not a lease later), their runs are `abandoned` (WORKER_DIED), their temp dirs and
 * records removed. Returns how many node-roles were released.
 *
 * @example
 *   await releaseDeadWorkers(store, services.dataDir, workerId);
 */
export async function releaseDeadWorkers(store: Store, dataDir: string, actor: string): Promise<number> {
  let n = 0;
  for (const dead of deadWorkers(dataDir)) {
    for (const id of await claimsOf(store, dead.id)) {
      const done = await releaseClaim(store, actor, id, (cur) => cur.leaseOwner === dead.id, () => ({
        code: 'WORKER_DIED',
        noderole: `worker ${dead.id} (pid ${dead.pid}) died during its run; the node-role was queued again`,
        run: `worker ${dead.id} (pid ${dead.pid}) died during the run`,
      }));
      if (done) n++;
    }
    await removeWorkerRow(store, dead.id);
    forgetWorker(dataDir, dead);
  }
  return n;
}
