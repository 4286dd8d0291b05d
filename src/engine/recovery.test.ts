import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../services/services.js';
import type { Store } from '../store/store.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer } from './annealer.js';
import { chain, role, seed, settled, waitFor } from './testing/fixtures.js';
import { markerScript, overlapsPerNode, overlapsPerNodeRole, readIntervals } from './testing/markers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

describe.each(STORE_ENGINES)('recovery and scale-out on $name', (engine) => {
  let t: TestStore;
  let annealers: Annealer[];
  let dir: string;
  const stores: Store[] = [];

  beforeEach(async () => {
    t = await engine.open();
    annealers = [];
    dir = fs.mkdtempSync(path.join(t.dataDir, 'work-'));
  });
  afterEach(async () => {
    await Promise.all(annealers.map((a) => a.stop()));
    await t.cleanup();
    stores.length = 0;
  });

  const services = (store: Store): Services => ({ store, dataDir: t.dataDir, appliers: new Map() });

  it('a SIGKILLed worker loses nothing: another worker completes every node-role, none ran twice at once', async () => {
    const markers = path.join(dir, 'markers');
    const pids = path.join(dir, 'pids');
    await seed(t.store, {
      roles: [role('one', { kind: 'local', file: 's.sh' }), role('two', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': markerScript(markers, `echo "$FW_NODEROLE $$" >> ${pids}\nsleep 0.8`) },
      nodes: ['n1', 'n2', 'n3'],
      bind: ['n1', 'n2', 'n3'].flatMap((n) => chain(n, ['one', 'two'])),
    });
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'testing/worker.ts')], {
      cwd: root,
      env: { ...process.env, FW_WORKER_DATA_DIR: t.dataDir, FW_WORKER_DATABASE_URL: t.databaseUrl ?? '', FW_WORKER_LEASE_MS: '1500', FW_WORKER_ID: 'doomed' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      // Kill it while scripts sleep.
      await waitFor(async () => fs.existsSync(pids) && fs.readFileSync(pids, 'utf8').trim().split('\n').length >= 2, 30_000);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const killedAt = Date.now();
    // The killed worker's scripts die with it (their watcher sees the pipe close).
    const started = fs.readFileSync(pids, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]));
    await waitFor(async () => started.every((p) => !fs.existsSync(`/proc/${p}`)), 3000);
    const allDeadAt = Date.now();
    const running = await t.store.objects('noderoles').all({ filters: { state: 'running' } });
    expect(running.length).toBeGreaterThan(0);
    expect(running.every((n) => n.leaseOwner === 'doomed')).toBe(true);

    const a = new Annealer(services(t.store), { workerId: 'rescuer', leaseMs: 1500, tickMs: 20, retryBaseMs: 10, onError: () => undefined });
    annealers.push(a);
    await a.start();
    const s = await settled(t.store, 'demo', 30_000);
    expect(Object.values(s).every((x) => x === 'active')).toBe(true);

    const { intervals, unfinished } = readIntervals(markers);
    expect(overlapsPerNode(intervals)).toEqual([]);
    expect(overlapsPerNodeRole(intervals)).toEqual([]);
    // Every run the kill interrupted was started again only after the killed one was gone.
    expect(unfinished.length).toBeGreaterThan(0);
    for (const u of unfinished) {
      const again = intervals.filter((i) => i.noderole === u.noderole && i.start > u.start);
      expect(again.length).toBe(1);
      expect(again[0].start).toBeGreaterThan(killedAt - 50);
      expect(allDeadAt - killedAt).toBeLessThan(3000);
    }
    const runs = await t.store.objects('runs').all();
    const abandoned = runs.filter((r) => r.state === 'abandoned');
    // A run whose script had not printed its start marker yet may be abandoned too.
    expect(abandoned.length).toBeGreaterThanOrEqual(unfinished.length);
    for (const u of unfinished) expect(abandoned.some((r) => r.noderole === u.noderole)).toBe(true);
    expect(abandoned.every((r) => r.worker === 'doomed' && (r.error as { code: string }).code === 'LEASE_EXPIRED')).toBe(true);
    // Each node-role succeeded exactly once.
    const ok = runs.filter((r) => r.state === 'succeeded').map((r) => r.noderole as string);
    expect(ok.sort()).toEqual(Object.keys(s).sort());
  }, 60_000);

  it.runIf(engine.name === 'postgres')('two annealers sharing the database complete a deployment with no node-role run twice', async () => {
    const markers = path.join(dir, 'markers');
    const nodes = Array.from({ length: 8 }, (_, i) => `n${i + 1}`);
    await seed(t.store, {
      roles: ['a', 'b', 'c'].map((r) => role(r, { kind: 'local', file: 's.sh' })).concat([role('all', { kind: 'builtin', handler: 'engine.noop' })]),
      files: { 's.sh': markerScript(markers, 'sleep 0.05') },
      nodes,
      bind: [...nodes.flatMap((n) => chain(n, ['a', 'b', 'c'])), { role: 'all', parents: nodes.map((n) => `${n}:c`) }],
    });
    const second = await t.reopen();
    for (const [store, id] of [[t.store, 'w1'], [second, 'w2']] as const) {
      const a = new Annealer(services(store), { workerId: id, concurrency: 4, perProviderConcurrency: 4, tickMs: 10, leaseMs: 5000, onError: () => undefined });
      annealers.push(a);
    }
    await Promise.all(annealers.map((a) => a.start()));
    const s = await settled(t.store, 'demo', 60_000);
    expect(Object.values(s).every((x) => x === 'active')).toBe(true);
    const { intervals, unfinished } = readIntervals(markers);
    expect(unfinished).toEqual([]);
    const runs0 = await t.store.objects('runs').all();
    const dup = intervals.filter((i) => intervals.filter((j) => j.noderole === i.noderole).length > 1);
    expect({ dup, runs: runs0.filter((r) => dup.some((d) => d.noderole === r.noderole)).map((r) => [r.noderole, r.state, r.worker, r.attempt, r.error]) }).toEqual({ dup: [], runs: [] });
    expect(intervals).toHaveLength(24);
    expect(new Set(intervals.map((i) => i.noderole)).size).toBe(24);
    expect(overlapsPerNode(intervals)).toEqual([]);
    const runs = await t.store.objects('runs').all();
    expect(runs).toHaveLength(25);
    expect(runs.every((r) => r.state === 'succeeded')).toBe(true);
    expect(new Set(runs.map((r) => r.worker))).toEqual(new Set(['w1', 'w2']));
  }, 90_000);
});
