import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
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
  const workerEnv = (leaseMs: string): NodeJS.ProcessEnv => ({
    ...process.env,
    FW_WORKER_DATA_DIR: t.dataDir,
    FW_WORKER_DATABASE_URL: t.databaseUrl ?? '',
    FW_WORKER_LEASE_MS: leaseMs,
    FW_WORKER_ID: 'doomed',
  });

  it('a SIGKILLed worker is known dead at the next start: its node-role runs again at once, not a lease later, and its temp dir is gone', async () => {
    const started = path.join(dir, 'started');
    const tmp = path.join(dir, 'tmp');
    fs.mkdirSync(tmp);
    await seed(t.store, {
      roles: [role('slow', { kind: 'local', file: 's.sh' })],
      // The first run records its pid and work dir, then sleeps past the test; a second run ends at once.
      files: { 's.sh': `if [ ! -f ${started} ]; then echo "$$ $PWD" > ${started}; sleep 60; fi` },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'slow' }],
    });
    const leaseMs = 60_000;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'testing/worker.ts')], {
      cwd: root,
      env: { ...workerEnv(String(leaseMs)), TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let runDir: string;
    let scriptPid: number;
    try {
      const line = await waitFor(async () => fs.existsSync(started) && fs.readFileSync(started, 'utf8').trim(), 30_000);
      scriptPid = Number(line.slice(0, line.indexOf(' ')));
      runDir = line.slice(line.indexOf(' ') + 1);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    // The script dies with its worker (its watcher sees the pipe close); nothing sleeps on after the test.
    await waitFor(async () => !fs.existsSync(`/proc/${scriptPid}`), 3000);
    const record = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'workers', 'doomed.json'), 'utf8')) as { pid: number; tempDir: string };
    expect(record.pid).toBe(child.pid);
    // The run made its work dir under the worker's temp dir, which the kill left behind.
    expect(path.basename(record.tempDir)).toMatch(/^formwork-worker-doomed-/);
    expect(path.dirname(record.tempDir)).toBe(tmp);
    expect(path.dirname(runDir)).toBe(record.tempDir);
    expect(fs.existsSync(runDir)).toBe(true);
    expect((await t.store.objects('noderoles').get('demo:n1:slow')).state).toBe('running');

    const restartedAt = Date.now();
    const a = new Annealer(services(t.store), { workerId: 'rescuer', leaseMs, tickMs: 20, retryBaseMs: 10, onError: () => undefined });
    annealers.push(a);
    await a.start();
    expect(fs.existsSync(record.tempDir)).toBe(false);
    expect(fs.existsSync(path.join(t.dataDir, 'workers', 'doomed.json'))).toBe(false);
    expect(await settled(t.store, 'demo', 10_000)).toEqual({ 'demo:n1:slow': 'active' });
    expect(Date.now() - restartedAt).toBeLessThan(leaseMs / 6);

    const runs = (await t.store.objects('runs').all({ filters: { noderole: 'demo:n1:slow' } })).map((r) => [r.worker, r.state, (r.error as { code?: string } | undefined)?.code]);
    expect(runs.sort()).toEqual([
      ['doomed', 'abandoned', 'WORKER_DIED'],
      ['rescuer', 'succeeded', undefined],
    ]);
    // The rescuer's own record is there while it runs, and goes with a clean stop.
    expect(fs.existsSync(path.join(t.dataDir, 'workers', 'rescuer.json'))).toBe(true);
    await a.stop();
    expect(fs.readdirSync(path.join(t.dataDir, 'workers'))).toEqual([]);
  }, 60_000);

  it('a SIGKILLed worker loses nothing: another worker completes every node-role, none ran twice at once', async () => {
    const markers = path.join(dir, 'markers');
    const pids = path.join(dir, 'pids');
    const tmp = path.join(dir, 'tmp');
    fs.mkdirSync(tmp);
    await seed(t.store, {
      roles: [role('one', { kind: 'local', file: 's.sh' }), role('two', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': markerScript(markers, `echo "$FW_NODEROLE $$" >> ${pids}\nsleep 0.8`) },
      nodes: ['n1', 'n2', 'n3'],
      bind: ['n1', 'n2', 'n3'].flatMap((n) => chain(n, ['one', 'two'])),
    });
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'testing/worker.ts')], {
      cwd: root,
      env: { ...workerEnv('1500'), TMPDIR: tmp },
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

    // As if the killed worker ran on another host: no record of it here, only its leases tell.
    fs.rmSync(path.join(t.dataDir, 'workers', 'doomed.json'));
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
