import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer } from './annealer.js';
import { role, seed, settled, waitFor } from './testing/fixtures.js';

/**
 * An active node-role sent back to run again (its inputs changed, or a parent's outputs did)
 * while another parent is not active is `blocked` with the reason, not `todo`: `todo` says
 * runnable, and `formwork up` waits on it instead of naming the failure. (Found by the
 * convergence property test: a failed src left agg `todo` behind it.)
 */
describe.each(STORE_ENGINES)('re-running an active node-role behind a failed parent on $name', (engine) => {
  let t: TestStore;
  let annealer: Annealer;

  beforeEach(async () => {
    t = await engine.open();
    const services: Services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    annealer = new Annealer(services, { tickMs: 20, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined });
  });
  afterEach(async () => {
    await annealer.stop();
    await t.cleanup();
  });

  const roles = [
    role('a', { kind: 'local', file: 'a.sh' }, { inputs: { v: { schema: { type: 'string' }, default: 'one' } }, outputs: { v: { schema: { type: 'string' } } } }),
    role('b', { kind: 'local', file: 'ok.sh' }),
    role('c', { kind: 'local', file: 'ok.sh' }, { inputs: { v: { from: 'outputs(a).v' }, x: { schema: { type: 'string' }, default: 'x' } } }),
  ];
  const files = { 'a.sh': 'printf \'{"v":"%s"}\' "$FW_INPUT_V" > "$FW_OUTPUTS"', 'ok.sh': 'true' };
  const nodeRoles = () => t.store.objects('noderoles');

  async function activeThenFail(failing: string): Promise<void> {
    await seed(t.store, { roles, files, nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'a' }, { node: 'n2', role: 'b' }, { node: 'n1', role: 'c', parents: ['n1:a', 'n2:b'] }] });
    await annealer.start();
    expect(Object.values(await settled(t.store))).toEqual(['active', 'active', 'active']);
    await nodeRoles().update(failing, { state: 'error', lastError: { code: 'RUN_FAILED', message: 'exited with 3' } });
  }

  it('an input change: blocked, naming the failed parent', async () => {
    await activeThenFail('demo:n2:b');
    await nodeRoles().update('demo:n1:c', { attribs: { x: 'changed' } });
    const c = await waitFor(async () => {
      const cur = await nodeRoles().get('demo:n1:c');
      return cur.state !== 'active' && cur;
    });
    expect({ state: c.state, blockedReason: c.blockedReason }).toEqual({ state: 'blocked', blockedReason: 'parent demo:n2:b failed: exited with 3' });
  });

  it("another parent's new outputs: blocked, naming the failed parent", async () => {
    await activeThenFail('demo:n2:b');
    await nodeRoles().update('demo:n1:a', { attribs: { v: 'two' } });
    const a = await waitFor(async () => {
      const cur = await nodeRoles().get('demo:n1:a');
      return cur.state === 'active' && (cur.outputs as { v: string }).v === 'two' && cur;
    });
    expect(a.outputs).toEqual({ v: 'two' });
    const c = await nodeRoles().get('demo:n1:c'); // requeued in a's finishing transaction
    expect({ state: c.state, blockedReason: c.blockedReason }).toEqual({ state: 'blocked', blockedReason: 'parent demo:n2:b failed: exited with 3' });
  });

  it('with every parent active it is todo, and runs', async () => {
    await seed(t.store, { roles, files, nodes: ['n1', 'n2'], bind: [{ node: 'n1', role: 'a' }, { node: 'n2', role: 'b' }, { node: 'n1', role: 'c', parents: ['n1:a', 'n2:b'] }] });
    await annealer.start();
    await settled(t.store);
    const before = (await t.store.objects('runs').all({ filters: { noderole: 'demo:n1:c' } })).length;
    await nodeRoles().update('demo:n1:a', { attribs: { v: 'two' } });
    await waitFor(async () => (await t.store.objects('runs').all({ filters: { noderole: 'demo:n1:c', state: 'succeeded' } })).length > before);
    expect(Object.values(await settled(t.store))).toEqual(['active', 'active', 'active']);
  });
});
