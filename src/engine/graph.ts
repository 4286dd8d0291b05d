/**
 * Node-role graph queries and state changes shared by the annealer, retry and the API.
 * Every state change goes through the repository, so each one is an event.
 */
import { sql } from 'kysely';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { Store } from '../store/store.js';

export interface ParentState {
  id: string;
  name: string;
  state: string;
  lastError?: { message?: string } | null;
}

/** Parents of a node-role that are not active. */
export async function pendingParents(store: Store, childId: string): Promise<ParentState[]> {
  const rows = await store.db
    .selectFrom('noderole_links as l')
    .innerJoin('noderoles as p', 'p.id', 'l.parent_id')
    .select(['p.id as id', 'p.name as name', 'p.state as state', 'p.last_error as last_error'])
    .where('l.child_id', '=', childId)
    .where('p.state', '<>', 'active')
    .orderBy('p.name')
    .execute();
  return rows.map((r) => ({
    id: r.id as string,
    name: r.name as string,
    state: r.state as string,
    lastError: r.last_error ? (JSON.parse(r.last_error as string) as { message?: string }) : null,
  }));
}

/**
 * Failed node-roles that keep `childId` waiting: reached from its parents that are not
 * active, going up through node-roles that are neither active nor failed. A failure
 * anywhere above a waiting node-role is named on it, however deep (a sibling finishing
 * or a re-apply does not hide it); one behind an active node-role blocks nothing.
 */
export async function failedAncestors(store: Store, childId: string): Promise<ParentState[]> {
  const res = await sql<{ id: string; name: string; state: string; last_error: string | null }>`
    with recursive up(id, state) as (
      select p.id, p.state from noderole_links l join noderoles p on p.id = l.parent_id
      where l.child_id = ${childId} and p.state <> 'active'
      union
      select p.id, p.state from up
        join noderole_links l on l.child_id = up.id
        join noderoles p on p.id = l.parent_id
      where up.state <> 'error' and p.state <> 'active'
    )
    select n.id, n.name, n.state, n.last_error from noderoles n
    where n.state = 'error' and n.id in (select id from up)
    order by n.name`.execute(store.db);
  return res.rows.map((r) => ({
    id: r.id,
    name: r.name,
    state: r.state,
    lastError: r.last_error ? (JSON.parse(r.last_error) as { message?: string }) : null,
  }));
}

/** Why a node-role waits: every failed node-role above it that blocks it, else the parents not yet active. */
export function blockedReason(pending: ParentState[], failed: ParentState[] = []): string {
  const direct = pending.filter((p) => p.state === 'error');
  const all = [...direct, ...failed.filter((f) => !direct.some((d) => d.id === f.id))];
  if (all.length) return all.map((f) => `parent ${f.name} failed: ${f.lastError?.message ?? 'see its last run'}`).join('; ');
  return `waiting for ${pending.map((p) => `${p.name} (${p.state})`).join(', ')}`;
}

/** Why a node-role waits, read from the graph as it is now; undefined when every parent is active. */
export async function blockedReasonFor(store: Store, id: string): Promise<string | undefined> {
  const pending = await pendingParents(store, id);
  if (!pending.length) return undefined;
  return blockedReason(pending, await failedAncestors(store, id));
}

export async function children(store: Store, parentId: string): Promise<StoredObject[]> {
  const rows = await store.db
    .selectFrom('noderole_links as l')
    .innerJoin('noderoles as c', 'c.id', 'l.child_id')
    .selectAll('c')
    .where('l.parent_id', '=', parentId)
    .orderBy('c.id')
    .execute();
  const repo = store.objects('noderoles');
  return rows.map((r) => repo.toObject(r));
}

/** Every descendant (children, their children, …), each once. */
export async function descendants(store: Store, id: string): Promise<StoredObject[]> {
  const res = await sql<Record<string, unknown>>`
    with recursive d(id) as (
      select child_id from noderole_links where parent_id = ${id}
      union
      select l.child_id from noderole_links l join d on l.parent_id = d.id
    )
    select n.* from noderoles n join d on n.id = d.id order by n.id`.execute(store.db);
  const repo = store.objects('noderoles');
  return res.rows.map((r) => repo.toObject(r));
}

/**
 * Brings a waiting node-role's state in line with its parents: `todo` when every parent
 * is active, else `blocked` with the reason. Touches only `todo` and `blocked` ones.
 */
export async function reevaluate(store: Store, nr: StoredObject, actor?: string): Promise<StoredObject> {
  if (nr.state !== 'todo' && nr.state !== 'blocked') return nr;
  const reason = await blockedReasonFor(store, nr.id);
  if (reason === undefined) {
    if (nr.state === 'blocked') return store.objects('noderoles').update(nr.id, { state: 'todo', blockedReason: null }, { actor });
    return nr;
  }
  if (nr.state === 'blocked' && nr.blockedReason === reason) return nr;
  return store.objects('noderoles').update(nr.id, { state: 'blocked', blockedReason: reason }, { actor });
}

/**
 * Sends an active node-role back to run again (its inputs changed, or a parent's outputs
 * did), with its attempts reset: `todo` when every parent is active, else `blocked` with
 * the reason — `todo` says "runnable", and one behind a failed parent would wait unnamed.
 */
export async function requeue(store: Store, nr: StoredObject, actor: string, expectedVersion?: number): Promise<StoredObject> {
  const reason = await blockedReasonFor(store, nr.id);
  const state = reason === undefined ? { state: 'todo', blockedReason: null } : { state: 'blocked', blockedReason: reason };
  return store.objects('noderoles').update(nr.id, { ...state, attempts: 0, nextAttemptAt: null }, { actor, ...(expectedVersion === undefined ? {} : { expectedVersion }) });
}

/** True for failures where running the same transaction again can succeed (a concurrent writer won). */
export function isContention(e: unknown): boolean {
  // Store.transaction turns a deadlock, serialization failure or busy database into a
  // retryable CONFLICT; a CONFLICT that is not retryable (a real clash) is not contention.
  if (e instanceof FormworkError) return e.code === 'VERSION_MISMATCH' || (e.code === 'CONFLICT' && e.retryable);
  const err = e as { code?: string; message?: string } | undefined;
  // PostgreSQL deadlock / serialization failure; SQLite busy.
  return err?.code === '40P01' || err?.code === '40001' || /SQLITE_BUSY|database is locked/i.test(String(err?.code ?? '') + String(err?.message ?? ''));
}

/** Runs a transaction again (a few times, with a short random pause) when a concurrent writer made it fail. */
export async function withTxRetry<T>(store: Store, fn: (tx: Store) => Promise<T>, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await store.transaction(fn);
    } catch (e) {
      if (i >= attempts || !isContention(e)) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * i));
    }
  }
}

export type RetryTarget = { noderole: string } | { deployment: string };

/** `deployment/NAME` → a deployment; anything else → a node-role name. */
export function parseRetryTarget(s: string): RetryTarget {
  const m = /^deployments?\/(.+)$/.exec(s);
  return m ? { deployment: m[1] } : { noderole: s };
}

/**
 * Puts failed node-roles back to `todo` with their attempts reset, and re-evaluates their
 * descendants (blocked "parent X failed" becomes "waiting for X"). A node-role waiting for
 * its next attempt is made runnable now. Returns the node-roles it changed.
 */
export async function retryNodeRoles(store: Store, target: RetryTarget, actor = 'engine'): Promise<StoredObject[]> {
  let targets: StoredObject[];
  if ('deployment' in target) {
    await store.objects('deployments').get(target.deployment);
    targets = (await store.objects('noderoles').all({ filters: { deployment: target.deployment } })).filter(
      (n) => n.state === 'error' || (n.state === 'todo' && n.nextAttemptAt),
    );
  } else {
    const nr = await store.objects('noderoles').get(target.noderole);
    if (nr.state !== 'error' && !(nr.state === 'todo' && nr.nextAttemptAt)) {
      throw new FormworkError('CONFLICT', `node-role "${nr.name}" is ${nr.state}, not in error: there is nothing to retry`, {
        noderole: nr.name,
        state: nr.state,
      });
    }
    targets = [nr];
  }
  const changed: StoredObject[] = [];
  for (const t of targets) {
    const updated = await withTxRetry(store, async (tx) => {
      const cur = await tx.objects('noderoles').get(t.id);
      if (cur.state !== 'error' && !(cur.state === 'todo' && cur.nextAttemptAt)) return undefined;
      const reason = await blockedReasonFor(tx, cur.id);
      const next = reason !== undefined
        ? { state: 'blocked', blockedReason: reason, attempts: 0, nextAttemptAt: null }
        : { state: 'todo', blockedReason: null, attempts: 0, nextAttemptAt: null };
      const u = await tx.objects('noderoles').update(cur.id, next, { actor, expectedVersion: cur.version });
      for (const d of await descendants(tx, cur.id)) await reevaluate(tx, d, actor);
      return u;
    });
    if (updated) changed.push(updated);
  }
  return changed;
}
