import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
import { claimAffinity } from '../providers/lifecycle.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer, type AnnealerOptions } from './annealer.js';
import { role, seed, settled } from './testing/fixtures.js';

const FAST: AnnealerOptions = { tickMs: 10, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined };

/** Host-bound providers' work goes only to workers of their host (`affinity`). */
describe.each(STORE_ENGINES)('worker affinity on $name', (engine) => {
  let t: TestStore;
  const annealers: Annealer[] = [];
  beforeEach(async () => {
    t = await engine.open();
  });
  afterEach(async () => {
    await Promise.all(annealers.splice(0).map((a) => a.stop()));
    await t.cleanup();
  });

  async function provider(name: string, affinity: string | null): Promise<void> {
    await t.store.objects('providers').create({ name, type: 'lab', settings: {} });
    await t.store.db.updateTable('providers').set({ affinity }).where('name', '=', name).execute();
  }

  it('a worker claims only work whose provider has no affinity or its own', async () => {
    await provider('on-h1', 'h1');
    await provider('on-h2', 'h2');
    await provider('anywhere', null);
    const nodes = ['on-h1', 'on-h2', 'anywhere'].flatMap((p) => [0, 1, 2].map((i) => ({ name: `${p}-${i}`, provider: p })));
    await seed(t.store, {
      roles: [role('r', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': 'sleep 0.05' },
      nodes,
      bind: nodes.map((n) => ({ node: n.name, role: 'r' })),
    });
    for (const affinity of ['h1', 'h2']) {
      const store = affinity === 'h1' ? t.store : await t.reopen();
      const services: Services = { store, dataDir: t.dataDir, appliers: new Map() };
      annealers.push(new Annealer(services, { ...FAST, workerId: `w-${affinity}`, affinity, concurrency: 2 }));
    }
    await Promise.all(annealers.map((a) => a.start()));
    const s = await settled(t.store);
    expect(Object.values(s).every((x) => x === 'active')).toBe(true);
    const runs = await t.store.objects('runs').all();
    expect(runs).toHaveLength(9);
    const workersOf = (prefix: string) => new Set(runs.filter((r) => String(r.node).startsWith(prefix)).map((r) => r.worker));
    expect(workersOf('on-h1-')).toEqual(new Set(['w-h1']));
    expect(workersOf('on-h2-')).toEqual(new Set(['w-h2']));
    expect((await t.store.objects('providers').get('on-h1')).affinity).toBe('h1'); // shown on the object
  });

  it('no worker of another host takes a bound provider\'s work', async () => {
    await provider('on-h1', 'h1');
    await seed(t.store, { roles: [role('r', { kind: 'local', file: 's.sh' })], files: { 's.sh': 'true' }, nodes: [{ name: 'n', provider: 'on-h1' }], bind: [{ node: 'n', role: 'r' }] });
    const other = new Annealer({ store: t.store, dataDir: t.dataDir, appliers: new Map() }, { ...FAST, affinity: 'h2' });
    annealers.push(other);
    await other.start();
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.store.objects('noderoles').get('demo:n:r')).state).toBe('todo');
    expect(await t.store.objects('runs').all()).toHaveLength(0);
  });

  it('the first worker to prepare a host-bound provider binds it to its host, race-safely', async () => {
    await provider('lab', null);
    const other = await t.reopen();
    const results = await Promise.allSettled([claimAffinity(t.store, 'lab', 'h1'), claimAffinity(other, 'lab', 'h2')]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toMatchObject({ code: 'WRONG_HOST' });
    const bound = (await t.store.objects('providers').get('lab')).affinity as string;
    expect(['h1', 'h2']).toContain(bound);
    expect(String((lost[0]!.reason as Error).message)).toContain(`bound to host "${bound}"`);
    await expect(claimAffinity(t.store, 'lab', bound)).resolves.toBeUndefined(); // its own host again: fine
  });
});
