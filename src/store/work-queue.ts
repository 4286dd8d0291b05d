import { sql } from 'kysely';
import { FormworkError, type ErrorCode } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { Store } from './store.js';

/**
 * The annealer's work queue in the store: which node-roles may run, claiming them under a
 * lease, the limits that hold across every worker on the database, and the worker rows and
 * leases that let one worker take back another's claims. The SQL differs by engine only
 * where locking does: PostgreSQL locks candidate rows `FOR UPDATE SKIP LOCKED` and takes
 * transaction-scoped advisory try-locks per node and per provider, so that two workers
 * never count or claim at once; SQLite has one writer at a time, so the same checks inside
 * one transaction suffice. The engine keeps the scheduling (how many, which first).
 *
 * @example
 *   const cands = await runnableNodeRoles(store, { affinity: 'host-a', limit: 16 });
 *   const claimed = await claimNodeRoles(store, cands, { workerId: 'w1', leaseMs: 30_000, perProviderConcurrency: 4 });
 */

/** A node-role that may run now, with what scheduling limits it by: its node and that node's provider. */
export interface QueueCandidate {
  id: string;
  name: string;
  node?: string;
  provider?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Node-roles that may run now, in id order: state `todo`, the next attempt due, every parent
 * `active`, nothing else `running` on the same node, and a provider whose `affinity` is empty
 * or `affinity` (host-bound providers' work goes to workers of their host).
 *
 * @example
 *   const cands = await runnableNodeRoles(store, { affinity: os.hostname(), limit: 32 });
 */
export async function runnableNodeRoles(store: Store, opts: { affinity: string; limit: number; now?: number }): Promise<QueueCandidate[]> {
  const now = iso(opts.now ?? Date.now());
  const res = await sql<{ id: string; name: string; node: string | null; provider: string | null }>`
    select nr.id, nr.name, nr.node, n.provider
    from noderoles nr left join nodes n on n.name = nr.node left join providers pv on pv.name = n.provider
    where nr.state = 'todo'
      and (pv.affinity is null or pv.affinity = ${opts.affinity})
      and (nr.next_attempt_at is null or nr.next_attempt_at <= ${now})
      and not exists (
        select 1 from noderole_links l join noderoles p on p.id = l.parent_id
        where l.child_id = nr.id and p.state <> 'active')
      and (nr.node is null or not exists (
        select 1 from noderoles r where r.node = nr.node and r.state = 'running'))
    order by nr.id
    limit ${opts.limit}`.execute(store.db);
  return res.rows.map((r) => ({ id: r.id, name: r.name, node: r.node ?? undefined, provider: r.provider ?? undefined }));
}

/**
 * Whether one more run fits a provider's limit, counting its `running` node-roles of every
 * worker (this transaction's own claims included). On PostgreSQL a per-provider try-lock
 * keeps two claims from counting at once: one that does not get it answers false and leaves
 * the provider to its next pass. Call it inside a transaction (the lock lasts until commit).
 *
 * @example
 *   await store.transaction(async (tx) => (await providerHasRoom(tx, 'lab', 4)) && …);
 */
export async function providerHasRoom(tx: Store, provider: string, limit: number): Promise<boolean> {
  if (tx.dialect === 'postgres') {
    const l = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtext(${'formwork-provider:' + provider})) as ok`.execute(tx.db);
    if (!l.rows[0]?.ok) return false;
  }
  const res = await sql<{ n: number | string }>`
    select count(*) as n from noderoles r join nodes n on n.name = r.node
    where r.state = 'running' and n.provider = ${provider}`.execute(tx.db);
  return Number(res.rows[0]?.n ?? 0) < limit;
}

/**
 * Whether a node is free to take a run: nothing `running` on it. On PostgreSQL it first
 * takes the node's transaction-scoped try-lock, so two claims cannot both find it free;
 * one that does not get the lock answers false. Call it inside a transaction.
 *
 * @example
 *   await store.transaction(async (tx) => (await nodeIsFree(tx, 'web-1')) && …);
 */
export async function nodeIsFree(tx: Store, node: string): Promise<boolean> {
  if (tx.dialect === 'postgres') {
    const l = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtext(${'formwork-node:' + node})) as ok`.execute(tx.db);
    if (!l.rows[0]?.ok) return false;
  }
  const busy = await sql`select 1 from noderoles where node = ${node} and state = 'running' limit 1`.execute(tx.db);
  return busy.rows.length === 0;
}

/** What a claim is made under. */
export interface ClaimOptions {
  /** The claiming worker: the lease's owner and the writes' actor. */
  workerId: string;
  /** How long the lease lasts unless renewed. */
  leaseMs: number;
  /** Runs at once per provider across every worker (providerHasRoom). */
  perProviderConcurrency: number;
}

/**
 * Claims candidates in one transaction: each still `todo` (on PostgreSQL not locked by
 * another claim), its provider with room and its node free becomes `running` under
 * `workerId`'s lease, its attempts counted, by a version-checked update. Returns the
 * node-roles claimed; the others are left for a later pass. Two workers' claims never take
 * the same node-role (on SQLite a loser fails with a retryable conflict).
 *
 * @example
 *   const claimed = await claimNodeRoles(store, cands, { workerId: 'w1', leaseMs: 30_000, perProviderConcurrency: 4 });
 */
export async function claimNodeRoles(store: Store, cands: QueueCandidate[], opts: ClaimOptions): Promise<StoredObject[]> {
  if (!cands.length) return [];
  const ids = cands.map((c) => c.id);
  return store.transaction(async (tx) => {
    const rows =
      tx.dialect === 'postgres'
        ? await sql<{ id: string }>`select id from noderoles where id in (${sql.join(ids)}) and state = 'todo' for update skip locked`.execute(tx.db)
        : await sql<{ id: string }>`select id from noderoles where id in (${sql.join(ids)}) and state = 'todo'`.execute(tx.db);
    const locked = new Set(rows.rows.map((r) => r.id));
    const out: StoredObject[] = [];
    const lease = iso(Date.now() + opts.leaseMs);
    for (const c of cands) {
      if (!locked.has(c.id)) continue;
      if (c.provider && !(await providerHasRoom(tx, c.provider, opts.perProviderConcurrency))) continue;
      if (c.node && !(await nodeIsFree(tx, c.node))) continue;
      const cur = await tx.objects('noderoles').get(c.id);
      if (cur.state !== 'todo') continue;
      const upd = await tx.objects('noderoles').update(
        c.id,
        { state: 'running', leaseOwner: opts.workerId, leaseExpiresAt: lease, attempts: Number(cur.attempts ?? 0) + 1, nextAttemptAt: null, blockedReason: null },
        { actor: opts.workerId, expectedVersion: cur.version },
      );
      out.push(upd);
    }
    return out;
  });
}

/**
 * `blocked` node-roles whose parents are all `active` (none pending), in id order: what a
 * promotion sweep moves on (completions promote at once; this catches what they missed).
 *
 * @example
 *   for (const nr of await promotableNodeRoles(store)) await store.transaction((tx) => reevaluate(tx, nr, actor));
 */
export async function promotableNodeRoles(store: Store, limit = 500): Promise<StoredObject[]> {
  const res = await sql<Record<string, unknown>>`
    select nr.* from noderoles nr
    where nr.state = 'blocked' and not exists (
      select 1 from noderole_links l join noderoles p on p.id = l.parent_id
      where l.child_id = nr.id and p.state <> 'active')
    order by nr.id limit ${limit}`.execute(store.db);
  const repo = store.objects('noderoles');
  return res.rows.map((row) => repo.toObject(row));
}

// ---------------------------------------------------------------------------------------
// Workers and leases

/**
 * Records a worker in the `workers` table as it starts (its heartbeat starts now).
 *
 * @example
 *   await addWorkerRow(store, { id: 'host:123:abc', host: os.hostname(), pid: process.pid });
 */
export async function addWorkerRow(store: Store, worker: { id: string; host: string; pid: number }): Promise<void> {
  const now = iso(Date.now());
  await store.db.insertInto('workers').values({ id: worker.id, host: worker.host, pid: worker.pid, started_at: now, heartbeat_at: now }).execute();
}

/**
 * Removes a worker's row (a clean stop, or a worker known dead).
 *
 * @example
 *   await removeWorkerRow(store, 'host:123:abc');
 */
export async function removeWorkerRow(store: Store, id: string): Promise<void> {
  await store.db.deleteFrom('workers').where('id', '=', id).execute();
}

/**
 * A worker's heartbeat: stamps its row, extends its leases on `ids` (those still `running`
 * under it) to `leaseMs` from now, and returns the ids it no longer holds (another worker
 * took them, or they were deleted), whose runs it must stop.
 *
 * @example
 *   for (const id of await heartbeat(store, 'w1', [...inflight.keys()], 30_000)) stopRun(id);
 */
export async function heartbeat(store: Store, workerId: string, ids: string[], leaseMs: number): Promise<string[]> {
  const now = Date.now();
  await store.db.updateTable('workers').set({ heartbeat_at: iso(now) }).where('id', '=', workerId).execute();
  if (!ids.length) return [];
  await store.db
    .updateTable('noderoles')
    .set({ lease_expires_at: iso(now + leaseMs) })
    .where('id', 'in', ids)
    .where('lease_owner', '=', workerId)
    .where('state', '=', 'running')
    .execute();
  const mine = await store.db.selectFrom('noderoles').select(['id', 'state', 'lease_owner']).where('id', 'in', ids).execute();
  const held = new Set(mine.filter((r) => r.state === 'running' && r.lease_owner === workerId).map((r) => r.id as string));
  return ids.filter((id) => !held.has(id));
}

/**
 * Ids of `running` node-roles whose lease ran out before `now` (or that have none).
 *
 * @example
 *   const expired = await expiredClaims(store, new Date().toISOString());
 */
export async function expiredClaims(store: Store, now: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom('noderoles')
    .select(['id'])
    .where('state', '=', 'running')
    .where((eb) => eb.or([eb('lease_expires_at', '<', now), eb('lease_expires_at', 'is', null)]))
    .execute();
  return rows.map((r) => r.id as string);
}

/**
 * Ids of the node-roles `running` under one worker's lease.
 *
 * @example
 *   const theirs = await claimsOf(store, deadWorker.id);
 */
export async function claimsOf(store: Store, workerId: string): Promise<string[]> {
  const rows = await store.db.selectFrom('noderoles').select(['id']).where('state', '=', 'running').where('lease_owner', '=', workerId).execute();
  return rows.map((r) => r.id as string);
}

/** Why a claim was released: the code, and the text for the node-role and for its runs. */
export interface ReleaseReason {
  code: ErrorCode;
  noderole: string;
  run: string;
}

/**
 * Gives a `running` node-role back to `todo` (its lease cleared, `lastError` saying why) and
 * abandons its running runs, in one transaction. `still` re-checks, in it, that the claim
 * is still the one to release; `why` gets the lease owner. False when it was not (any
 * more), also when a concurrent release won: workers racing on one claim release it once.
 *
 * @example
 *   await releaseClaim(store, 'w2', id, (cur) => cur.leaseOwner === 'w1', (owner) => ({ code: 'WORKER_DIED', noderole: `${owner} died`, run: `${owner} died` }));
 */
export async function releaseClaim(
  store: Store,
  actor: string,
  id: string,
  still: (cur: StoredObject) => boolean,
  why: (owner: string) => ReleaseReason,
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
