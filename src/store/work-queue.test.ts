import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredObject } from '../core/kinds.js';
import { role, seed, type SeedSpec } from '../engine/testing/fixtures.js';
import type { Store } from './store.js';
import { STORE_ENGINES, type TestStore } from './testing/engines.js';
import {
  claimNodeRoles,
  claimsOf,
  expiredClaims,
  heartbeat,
  nodeIsFree,
  promotableNodeRoles,
  providerHasRoom,
  releaseClaim,
  runnableNodeRoles,
  type QueueCandidate,
} from './work-queue.js';

const R = role('r', { kind: 'local', file: 's.sh' });
const S = role('s', { kind: 'local', file: 's.sh' });
const iso = (ms: number) => new Date(ms).toISOString();
const CLAIM = { workerId: 'w1', leaseMs: 30_000, perProviderConcurrency: 4 };

/** The work queue's queries, on each engine (their SQL differs where locking does). */
describe.each(STORE_ENGINES)('the work queue on $name', (engine) => {
  let t: TestStore;
  let store: Store;
  beforeEach(async () => {
    t = await engine.open();
    store = t.store;
  });
  afterEach(() => t.cleanup());

  async function given(spec: Omit<SeedSpec, 'roles' | 'files'>): Promise<Map<string, StoredObject>> {
    return seed(store, { roles: [R, S], files: { 's.sh': 'true' }, ...spec });
  }
  const set = (nr: StoredObject | undefined, patch: Record<string, unknown>) => store.objects('noderoles').update(nr!.id, patch);
  const runnableNames = async (affinity = 'h1') => (await runnableNodeRoles(store, { affinity, limit: 100 })).map((c) => c.name).sort();
  async function provider(name: string, affinity: string | null): Promise<void> {
    await store.objects('providers').create({ name, type: 'lab', settings: {} });
    await store.db.updateTable('providers').set({ affinity }).where('name', '=', name).execute();
  }

  it('offers todo node-roles whose parents are all active, with their node and provider', async () => {
    const nrs = await given({ nodes: [{ name: 'n1', provider: 'p1' }], bind: [{ node: 'n1', role: 'r' }, { node: 'n1', role: 's', parents: ['n1:r'] }] });
    const cands = await runnableNodeRoles(store, { affinity: 'h1', limit: 100 });
    expect(cands).toEqual([{ id: nrs.get('demo:n1:r')!.id, name: 'demo:n1:r', node: 'n1', provider: 'p1' }]);
  });

  it('a parent not active blocks, even a child in todo', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 's', parents: ['n1:r'] }] });
    await set(nrs.get('demo:n2:s'), { state: 'todo', blockedReason: null });
    expect(await runnableNames()).toEqual(['demo:n1:r']);
    await set(nrs.get('demo:n1:r'), { state: 'error' });
    expect(await runnableNames()).toEqual([]);
    await set(nrs.get('demo:n1:r'), { state: 'active' });
    expect(await runnableNames()).toEqual(['demo:n2:s']);
  });

  it('a next attempt in the future is not runnable; one that is due is', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }] });
    await set(nrs.get('demo:n1:r'), { nextAttemptAt: iso(Date.now() + 60_000) });
    await set(nrs.get('demo:n2:r'), { nextAttemptAt: iso(Date.now() - 1000) });
    expect(await runnableNames()).toEqual(['demo:n2:r']);
  });

  it('a node with a running node-role is not runnable; other nodes and node-less work are', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n1', role: 's' }, { node: 'n2', role: 'r' }, { role: 'r' }] });
    await set(nrs.get('demo:n1:r'), { state: 'running', leaseOwner: 'w9', leaseExpiresAt: iso(Date.now() + 60_000) });
    expect(await runnableNames()).toEqual(['demo:-:r', 'demo:n2:r']);
  });

  it('only work whose provider has no affinity or the worker\'s own', async () => {
    await provider('on-h1', 'h1');
    await provider('on-h2', 'h2');
    await provider('anywhere', null);
    await given({
      nodes: [{ name: 'a', provider: 'on-h1' }, { name: 'b', provider: 'on-h2' }, { name: 'c', provider: 'anywhere' }],
      bind: [{ node: 'a', role: 'r' }, { node: 'b', role: 'r' }, { node: 'c', role: 'r' }],
    });
    expect(await runnableNames('h1')).toEqual(['demo:a:r', 'demo:c:r']);
    expect(await runnableNames('h2')).toEqual(['demo:b:r', 'demo:c:r']);
    expect(await runnableNames('h3')).toEqual(['demo:c:r']);
  });

  it('honours the limit, in id order', async () => {
    await given({ nodes: ['n1', 'n2', 'n3'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }, { node: 'n3', role: 'r' }] });
    const all = await runnableNodeRoles(store, { affinity: 'h1', limit: 100 });
    const two = await runnableNodeRoles(store, { affinity: 'h1', limit: 2 });
    expect(two).toEqual([...all].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, 2));
  });

  it('provider room counts running node-roles of every worker', async () => {
    const nrs = await given({
      nodes: [{ name: 'a', provider: 'p1' }, { name: 'b', provider: 'p1' }, { name: 'c', provider: 'p2' }],
      bind: [{ node: 'a', role: 'r' }, { node: 'b', role: 'r' }, { node: 'c', role: 'r' }],
    });
    const lease = iso(Date.now() + 60_000);
    await set(nrs.get('demo:a:r'), { state: 'running', leaseOwner: 'w1', leaseExpiresAt: lease });
    await set(nrs.get('demo:b:r'), { state: 'running', leaseOwner: 'w2', leaseExpiresAt: lease });
    const room = (p: string, limit: number) => store.transaction((tx) => providerHasRoom(tx, p, limit));
    expect(await room('p1', 2)).toBe(false);
    expect(await room('p1', 3)).toBe(true);
    expect(await room('p2', 1)).toBe(true);
    // Counted in the database: another process's store sees the same.
    const other = await t.reopen();
    expect(await other.transaction((tx) => providerHasRoom(tx, 'p1', 2))).toBe(false);
  });

  it('a node is free while nothing runs on it', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }] });
    await set(nrs.get('demo:n1:r'), { state: 'running', leaseOwner: 'w1', leaseExpiresAt: iso(Date.now() + 60_000) });
    expect(await store.transaction((tx) => nodeIsFree(tx, 'n1'))).toBe(false);
    expect(await store.transaction((tx) => nodeIsFree(tx, 'n2'))).toBe(true);
  });

  it('a claim takes only todo node-roles, under the worker\'s lease, and not twice', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }] });
    const cands = await runnableNodeRoles(store, { affinity: 'h1', limit: 100 });
    await set(nrs.get('demo:n2:r'), { state: 'error' }); // changed after it was offered
    const claimed = await claimNodeRoles(store, cands, CLAIM);
    expect(claimed.map((c) => c.name)).toEqual(['demo:n1:r']);
    expect(claimed[0]).toMatchObject({ state: 'running', leaseOwner: 'w1', attempts: 1 });
    expect(claimed[0].nextAttemptAt ?? null).toBeNull();
    expect(Date.parse(claimed[0].leaseExpiresAt as string)).toBeGreaterThan(Date.now() + 20_000);
    expect(await claimNodeRoles(store, cands, { ...CLAIM, workerId: 'w2' })).toEqual([]);
    expect((await store.objects('noderoles').get('demo:n1:r')).leaseOwner).toBe('w1');
  });

  it('two workers claiming the same candidates at once take each once', async () => {
    await given({ nodes: ['n1', 'n2', 'n3'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }, { node: 'n3', role: 'r' }] });
    const cands = await runnableNodeRoles(store, { affinity: 'h1', limit: 100 });
    const other = await t.reopen();
    const results = await Promise.allSettled([claimNodeRoles(store, cands, CLAIM), claimNodeRoles(other, cands, { ...CLAIM, workerId: 'w2' })]);
    // A loser may fail outright (SQLite: busy), never take what the other took.
    const taken = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.map((c) => c.name) : []));
    expect(new Set(taken).size).toBe(taken.length);
    const running = (await store.objects('noderoles').all()).filter((n) => n.state === 'running');
    expect(running.map((n) => n.name).sort()).toEqual([...taken].sort());
    expect(running.every((n) => n.attempts === 1)).toBe(true);
  });

  it('a claim keeps one run per node and the provider limit, within itself too', async () => {
    await given({
      nodes: [{ name: 'a', provider: 'p1' }, { name: 'b', provider: 'p1' }, { name: 'c', provider: 'p2' }],
      bind: [{ node: 'a', role: 'r' }, { node: 'a', role: 's' }, { node: 'b', role: 'r' }, { node: 'c', role: 'r' }],
    });
    const cands: QueueCandidate[] = await runnableNodeRoles(store, { affinity: 'h1', limit: 100 });
    expect(cands).toHaveLength(4);
    const claimed = await claimNodeRoles(store, cands, { ...CLAIM, perProviderConcurrency: 1 });
    const byNode = claimed.map((c) => c.node).sort();
    expect(byNode).toEqual(['a', 'c']); // a once, b not (p1 full), c (p2)
  });

  it('blocked node-roles whose parents are all active are promotable', async () => {
    const nrs = await given({ nodes: ['n1'], bind: [{ node: 'n1', role: 'r' }, { node: 'n1', role: 's', parents: ['n1:r'] }] });
    expect(await promotableNodeRoles(store)).toEqual([]);
    await set(nrs.get('demo:n1:r'), { state: 'active' });
    const promotable = await promotableNodeRoles(store);
    expect(promotable.map((n) => [n.name, n.state])).toEqual([['demo:n1:s', 'blocked']]);
  });

  it('a heartbeat renews the worker\'s own leases and names the claims it lost', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }] });
    const soon = iso(Date.now() + 1000);
    await set(nrs.get('demo:n1:r'), { state: 'running', leaseOwner: 'w1', leaseExpiresAt: soon });
    await set(nrs.get('demo:n2:r'), { state: 'running', leaseOwner: 'w2', leaseExpiresAt: soon });
    const ids = [nrs.get('demo:n1:r')!.id, nrs.get('demo:n2:r')!.id];
    expect(await heartbeat(store, 'w1', ids, 60_000)).toEqual([ids[1]]);
    expect(Date.parse((await store.objects('noderoles').get('demo:n1:r')).leaseExpiresAt as string)).toBeGreaterThan(Date.now() + 50_000);
    expect((await store.objects('noderoles').get('demo:n2:r')).leaseExpiresAt).toBe(soon);
  });

  it('finds expired claims and a worker\'s claims, and releases a claim once', async () => {
    const nrs = await given({ nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'r' }, { node: 'n2', role: 'r' }] });
    const a = nrs.get('demo:n1:r')!;
    const b = nrs.get('demo:n2:r')!;
    await set(a, { state: 'running', leaseOwner: 'w1', leaseExpiresAt: iso(Date.now() - 1000) });
    await set(b, { state: 'running', leaseOwner: 'w2', leaseExpiresAt: iso(Date.now() + 60_000) });
    await store.objects('runs').create({ name: 'run-a', noderole: a.name, deployment: 'demo', node: 'n1', role: 'r', attempt: 1, state: 'running', worker: 'w1', startedAt: iso(Date.now()) });
    expect(await expiredClaims(store, iso(Date.now()))).toEqual([a.id]);
    expect(await claimsOf(store, 'w2')).toEqual([b.id]);
    const why = (owner: string) => ({ code: 'LEASE_EXPIRED' as const, noderole: `lease of ${owner} expired`, run: `${owner} stopped` });
    expect(await releaseClaim(store, 'w3', a.id, () => true, why)).toBe(true);
    expect(await releaseClaim(store, 'w3', a.id, () => true, why)).toBe(false); // not running any more
    expect(await releaseClaim(store, 'w3', b.id, () => false, why)).toBe(false); // no longer the claim to release
    const released = await store.objects('noderoles').get(a.id);
    expect(released).toMatchObject({ state: 'todo', lastError: { code: 'LEASE_EXPIRED', message: 'lease of w1 expired' } });
    expect(released.leaseOwner ?? null).toBeNull(); // unset fields are left out of objects
    expect(await store.objects('runs').get('run-a')).toMatchObject({ state: 'abandoned', error: { code: 'LEASE_EXPIRED', message: 'w1 stopped' } });
    expect((await store.objects('noderoles').get(b.id)).state).toBe('running');
  });
});
