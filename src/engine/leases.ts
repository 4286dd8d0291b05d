/**
 * Taking back claims of workers that are gone, so that their node-roles run again:
 * claims whose lease expired (a worker anywhere stopped heartbeating), and, sooner, claims
 * of workers of this host whose record names a dead process (src/engine/workers.ts).
 * The annealer calls both on its lease pass; each release is one transaction that
 * re-checks the claim, so workers racing on the same claim release it once.
 */
import type { ErrorCode } from '../core/errors.js';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { Store } from '../store/store.js';
import { deadWorkers, forgetWorker } from './workers.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Node-roles whose lease expired (their worker died) go back to `todo`; their runs are
 * `abandoned` (LEASE_EXPIRED). `ours` names claims of the caller, which it renews itself.
 * Returns how many.
 */
export async function expireLeases(store: Store, actor: string, ours: (id: string) => boolean): Promise<number> {
  const now = iso(Date.now());
  const rows = await store.db
    .selectFrom('noderoles')
    .select(['id'])
    .where('state', '=', 'running')
    .where((eb) => eb.or([eb('lease_expires_at', '<', now), eb('lease_expires_at', 'is', null)]))
    .execute();
  let n = 0;
  for (const r of rows) {
    if (ours(r.id as string)) continue; // alive: the heartbeat renews it
    const done = await releaseClaim(
      store,
      actor,
      r.id as string,
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
 */
export async function releaseDeadWorkers(store: Store, dataDir: string, actor: string): Promise<number> {
  let n = 0;
  for (const dead of deadWorkers(dataDir)) {
    const rows = await store.db.selectFrom('noderoles').select(['id']).where('state', '=', 'running').where('lease_owner', '=', dead.id).execute();
    for (const r of rows) {
      const done = await releaseClaim(store, actor, r.id as string, (cur) => cur.leaseOwner === dead.id, () => ({
        code: 'WORKER_DIED',
        noderole: `worker ${dead.id} (pid ${dead.pid}) died during its run; the node-role was queued again`,
        run: `worker ${dead.id} (pid ${dead.pid}) died during the run`,
      }));
      if (done) n++;
    }
    await store.db.deleteFrom('workers').where('id', '=', dead.id).execute();
    forgetWorker(dataDir, dead);
  }
  return n;
}

/**
 * Gives a running node-role claimed by another worker back to `todo` and abandons its
 * running runs, recording the code and why. `still` re-checks, in the transaction, that the
 * claim is still the one to release. False when it was not (any more).
 */
async function releaseClaim(
  store: Store,
  actor: string,
  id: string,
  still: (cur: StoredObject) => boolean,
  why: (owner: string) => { code: ErrorCode; noderole: string; run: string },
): Promise<boolean> {
  const now = iso(Date.now());
  return store
    .transaction(async (tx) => {
      const cur = await tx.objects('noderoles').get(id);
      if (cur.state !== 'running' || !still(cur)) return false;
      const { code, ...text } = why((cur.leaseOwner as string | undefined) ?? 'an unknown worker');
      await tx.objects('noderoles').update(
        cur.id,
        { state: 'todo', leaseOwner: null, leaseExpiresAt: null, lastError: { code, message: text.noderole } },
        { actor, expectedVersion: cur.version },
      );
      const runs = await tx.objects('runs').all({ filters: { noderole: cur.name, state: 'running' } });
      for (const run of runs) {
        await tx.objects('runs').update(run.id, { state: 'abandoned', endedAt: now, error: { code, message: text.run } }, { actor });
      }
      return true;
    })
    .catch((e) => {
      if (e instanceof FormworkError && e.code === 'VERSION_MISMATCH') return false;
      throw e;
    });
}
