import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownershipTags } from '../../providers/provider.js';
import { loadDriver, providerContext } from '../../providers/registry.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { openHarness, type Harness } from '../testing/harness.js';

describe.each(STORE_ENGINES)('a provider\'s orphans over the API on $name', (engine) => {
  let h: Harness;
  beforeEach(async () => {
    h = await openHarness(engine);
    const provider = await h.t.store.objects('providers').create({ name: 'own', type: 'static', settings: { machines: [{ name: 'm-1', address: '198.18.200.1', user: 'root' }, { name: 'm-2', address: '198.18.200.2', user: 'root' }] } });
    const kept = await h.t.store.objects('nodes').create({ name: 'kept', provider: 'own' });
    const driver = await loadDriver('static');
    const ctx = await providerContext(h.services, provider);
    // A machine for a stored node, and one for a node Formwork forgot (a crash between create and record).
    await driver.createMachine({ name: 'kept', nodeId: kept.id, idempotencyToken: 'k', tags: ownershipTags('own', kept.id) }, ctx);
    await driver.createMachine({ name: 'lost', nodeId: 'lost-node', idempotencyToken: 'l', tags: ownershipTags('own', 'lost-node') }, ctx);
  });
  afterEach(() => h.close());

  it('lists them for an operator, and deletes them for an admin only', async () => {
    const list = await h.call('GET', '/api/v1/providers/own/orphans', { token: h.tokens.operator });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ provider: 'own', source: 'listMachines', owned: 2, orphans: [{ kind: 'machine', tags: { 'formwork.io/node-id': 'lost-node' } }] });
    expect((await h.call('POST', '/api/v1/providers/own/orphans/delete', { token: h.tokens.operator })).statusCode).toBe(403);
    const del = await h.call('POST', '/api/v1/providers/own/orphans/delete');
    expect(del.statusCode).toBe(200);
    expect(del.json().deleted).toHaveLength(1);
    expect((await h.call('GET', '/api/v1/providers/own/orphans')).json()).toMatchObject({ owned: 1, orphans: [] });
    expect((await h.call('GET', '/api/v1/providers/nope/orphans')).statusCode).toBe(404);
  });
});
