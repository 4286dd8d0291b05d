import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer } from './annealer.js';
import { role, seed, waitFor } from './testing/fixtures.js';

/**
 * A node-role deleted while it runs (its binding or node left the deployment): its process
 * is stopped and its run recorded `abandoned` (NODEROLE_DELETED). It was left `running`
 * for good, its process running on beside any node-role of that name bound again. (Found
 * by the convergence property test: removing a binding mid-run.)
 */
describe.each(STORE_ENGINES)('a node-role deleted mid-run on $name', (engine) => {
  let t: TestStore;
  let annealer: Annealer;

  beforeEach(async () => {
    t = await engine.open();
    const services: Services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    annealer = new Annealer(services, { tickMs: 20, retryBaseMs: 10, leaseMs: 30_000, logFlushMs: 50, onError: () => undefined });
  });
  afterEach(async () => {
    await annealer.stop();
    await t.cleanup();
  });

  it('stops its process and abandons its run', async () => {
    const marker = path.join(t.dataDir, 'marker');
    await seed(t.store, {
      roles: [role('slow', { kind: 'local', file: 'slow.sh' })],
      files: { 'slow.sh': `echo started >> ${marker}\nsleep 3\necho finished >> ${marker}` },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'slow' }],
    });
    await annealer.start();
    await waitFor(async () => fs.existsSync(marker));
    const nr = await t.store.objects('noderoles').get('demo:n1:slow');
    expect(nr.state).toBe('running');
    await t.store.objects('noderoles').delete(nr.id, { actor: 'test' });

    const run = await waitFor(async () => {
      const [r] = await t.store.objects('runs').all({ filters: { noderole: 'demo:n1:slow' } });
      return r && r.state !== 'running' && r;
    }, 2500); // well before the script's 3 s sleep ends
    expect(run.state).toBe('abandoned');
    expect(run.error).toMatchObject({ code: 'NODEROLE_DELETED', message: expect.stringContaining('demo:n1:slow was deleted during this run') });
    await new Promise((r) => setTimeout(r, 3500));
    expect(fs.readFileSync(marker, 'utf8')).toBe('started\n'); // the process did not run on
  });
});
