import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer, type AnnealerOptions } from './annealer.js';
import { role, seed, settled } from './testing/fixtures.js';
import { markerScript, peakConcurrency, readIntervals } from './testing/markers.js';

const FAST: AnnealerOptions = { tickMs: 10, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined };

/** Limits that hold across workers: two annealers (as two processes would) on one store. */
describe.each(STORE_ENGINES)('per-provider concurrency across workers on $name', (engine) => {
  let t: TestStore;
  const annealers: Annealer[] = [];
  beforeEach(async () => {
    t = await engine.open();
  });
  afterEach(async () => {
    await Promise.all(annealers.splice(0).map((a) => a.stop()));
    await t.cleanup();
  });

  it('two workers together run no more of a provider at once than its limit', async () => {
    const file = path.join(t.dataDir, 'markers');
    const nodes = Array.from({ length: 8 }, (_, i) => ({ name: `n${i}`, provider: i < 4 ? 'p1' : 'p2' }));
    await seed(t.store, {
      roles: [role('r', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': markerScript(file, 'sleep 0.15') },
      nodes,
      bind: nodes.map((n) => ({ node: n.name, role: 'r' })),
    });
    for (const id of ['w1', 'w2']) {
      // Each worker alone would run 2 of p1 at once (both first pick p1: candidates come in id order); together, still 2.
      const store = id === 'w1' ? t.store : await t.reopen();
      const services: Services = { store, dataDir: t.dataDir, appliers: new Map() };
      const a = new Annealer(services, { ...FAST, workerId: id, concurrency: 2, perProviderConcurrency: 2 });
      annealers.push(a);
    }
    await Promise.all(annealers.map((a) => a.start()));
    const s = await settled(t.store);
    expect(Object.values(s).every((x) => x === 'active')).toBe(true);
    const { intervals } = readIntervals(file);
    expect(intervals).toHaveLength(8);
    const p1 = intervals.filter((i) => Number(i.node.slice(1)) < 4);
    const p2 = intervals.filter((i) => Number(i.node.slice(1)) >= 4);
    expect(peakConcurrency(p1)).toBeLessThanOrEqual(2);
    expect(peakConcurrency(p2)).toBeLessThanOrEqual(2);
    expect(peakConcurrency(intervals)).toBeGreaterThan(2); // the providers did run side by side
    // Both workers took part (else the test would say nothing about sharing the limit).
    const runs = await t.store.objects('runs').all();
    expect(new Set(runs.map((r) => r.worker))).toEqual(new Set(['w1', 'w2']));
  });
});
