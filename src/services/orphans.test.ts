import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Services } from '../context/services.js';
import { ownershipTags } from '../providers/provider.js';
import { fakeDriver, type FakeDriver } from '../providers/testing/fake-driver.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { deleteOrphans, findOrphans } from './orphans.js';

describe.each(STORE_ENGINES)('orphans on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let fake: FakeDriver;
  const opts = () => ({ loadDriver: async () => fake });

  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    fake = fakeDriver();
    const ctx = { providerName: 'fk' } as never;
    await fake.prepare!(ctx);
    await t.store.objects('providers').create({ name: 'fk', type: 'fake' });
    const kept = await t.store.objects('nodes').create({ name: 'kept', provider: 'fk' });
    for (const [nodeId, provider] of [[kept.id, 'fk'], ['gone-node', 'fk'], ['theirs', 'other']] as const) {
      const m = await fake.createMachine({ name: nodeId, nodeId, idempotencyToken: nodeId, tags: ownershipTags(provider, nodeId) }, ctx);
      await fake.makeReachable!(m, ctx);
    }
  });
  afterEach(() => t.cleanup());

  it("lists what carries the provider's tags and a node id no stored node has: never the provider's own, nor another provider's", async () => {
    const report = await findOrphans(services, 'fk', opts());
    expect(report).toMatchObject({ provider: 'fk', source: 'listOwned', owned: 7 }); // 2 nodes × (machine, key, address) + the group
    expect(report.orphans.map((r) => `${r.kind} ${r.id}`).sort()).toEqual(['address fip-2', 'key-pair key-fake-2', 'machine fake-2']);
  });

  it('deletes them (the machine first), and then there are none; the kept node keeps everything', async () => {
    const report = await deleteOrphans(services, 'fk', opts());
    expect(report.deleted).toEqual(['machine fake-2', 'key-pair key-fake-2', 'address fip-2']);
    expect((await findOrphans(services, 'fk', opts())).orphans).toEqual([]);
    expect([...fake.machines.keys()].sort()).toEqual(['fake-1', 'fake-3']);
    expect(fake.addresses.has('fip-1')).toBe(true);
  });

  it('a driver without listOwned is asked for its machines', async () => {
    const { listOwned: _l, deleteOwned: _d, ...plain } = fake;
    const report = await deleteOrphans(services, 'fk', { loadDriver: async () => plain });
    expect(report).toMatchObject({ source: 'listMachines', owned: 2, deleted: ['machine fake-2'] });
    // Released before it was deleted: its address went with it.
    expect(fake.addresses.has('fip-2')).toBe(false);
  });

  it('an unknown provider is NOT_FOUND', async () => {
    await expect(findOrphans(services, 'nope', opts())).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
