import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { openHarness, type Harness } from '../api/testing/harness.js';
import { ownershipTags, type ProviderDriver } from '../providers/provider.js';
import { fakeDriver, type FakeDriver } from '../providers/testing/fake-driver.js';
import { DEPROVISIONED_KINDS } from '../core/deletion.js';
import { requestDeletion } from '../services/deletion.js';
import { deprovision } from '../services/teardown.js';
import { STORE_ENGINES } from '../store/testing/engines.js';
import { Annealer } from './annealer.js';
import { waitFor } from './testing/fixtures.js';

/**
 * DELETE of a node, deployment or provider is reconciled: the API marks it and answers 202;
 * the annealer deprovisions it (machines, node-roles, nodes, then the row), retrying as the
 * error says and recording the last error on the object.
 */
describe.each(STORE_ENGINES)('deletions carried out by the annealer on $name', (engine) => {
  let h: Harness;
  let fake: FakeDriver;
  /** What the annealer's deprovision step loads for provider type `fake` (a test may slow it down). */
  let driver: ProviderDriver;
  let annealer: Annealer;

  beforeEach(async () => {
    h = await openHarness(engine);
    h.services.deleters = new Map(DEPROVISIONED_KINDS.map((k) => [k, (name: string, ctx: { actor?: string }) => requestDeletion(h.services, k, name, ctx)]));
    fake = fakeDriver();
    driver = fake;
    await fake.prepare!({} as never);
    const store = h.t.store;
    await store.objects('providers').create({ name: 'fk', type: 'fake' });
    await store.objects('deployments').create({ name: 'demo', provider: 'fk', state: 'committed' });
    for (const name of ['n1', 'n2']) {
      const node = await store.objects('nodes').create({ name, provider: 'fk', deployment: 'demo' });
      const m = await fake.createMachine({ name, nodeId: node.id, idempotencyToken: name, tags: ownershipTags('fk', node.id) }, {} as never);
      await store.objects('nodes').update(node.id, { nativeId: m.nativeId });
      await store.objects('noderoles').create({ name: `demo:${name}:web`, deployment: 'demo', node: name, role: 'web', state: 'active' });
    }
    h.services.deprovision = (kind, object, ctx) => deprovision(h.services, kind, object, { ...ctx, loadDriver: async () => driver });
    annealer = new Annealer(h.services, { tickMs: 10, retryBaseMs: 50, onError: () => undefined, deprovision: { waitMs: 20 } });
    h.services.engine = annealer;
  });
  afterEach(async () => {
    await annealer.stop();
    await h.close();
  });

  const gone = (plural: string, name: string, ms = 15_000) => waitFor(async () => !(await h.t.store.objects(plural).find(name)), ms);

  it('DELETE of a deployment answers 202 at once while the driver is slow; the annealer then deletes machines, node-roles, nodes and the deployment', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    driver = { ...fake, deleteMachine: async (id, ctx) => gate.then(() => fake.deleteMachine(id, ctx)) };
    await annealer.start();

    const started = Date.now();
    const res = await h.call('DELETE', '/api/v1/deployments/demo');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ name: 'demo', deletion: { requestedBy: 'admin-user', attempts: 0 } });

    // The worker has marked the nodes and is inside the (held) machine deletions: nothing is gone yet.
    await waitFor(async () => fake.calls.filter((c) => c === 'listMachines').length >= 2);
    expect(await h.t.store.objects('deployments').find('demo')).toBeDefined();
    expect(fake.machines.size).toBe(2);
    const nodes = await h.t.store.objects('nodes').all({ filters: { deployment: 'demo' } });
    expect(nodes.map((n) => (n.deletion as { leaseOwner?: string }).leaseOwner)).toEqual([annealer.workerId, annealer.workerId]);

    release();
    await gone('deployments', 'demo');
    expect(fake.machines.size).toBe(0);
    expect(await h.t.store.objects('nodes').all()).toEqual([]);
    expect(await h.t.store.objects('noderoles').all()).toEqual([]);
    const events = await h.t.store.events.list({ types: ['deployments'], keys: ['demo'] });
    expect(events.at(-1)).toMatchObject({ action: 'deleted', actor: annealer.workerId });
  });

  it("deleting a node releases what made its machine reachable before the machine, and leaves nothing tagged for it", async () => {
    const n1 = await h.t.store.objects('nodes').get('n1');
    await fake.makeReachable!((await fake.getMachine(n1.nativeId as string, {} as never))!, {} as never);
    await annealer.start();
    expect((await h.call('DELETE', '/api/v1/nodes/n1')).statusCode).toBe(202);
    await gone('nodes', 'n1');
    const mine = fake.calls.filter((c) => c.endsWith(` ${n1.nativeId}`) && /^(undoReachable|deleteMachine)/.test(c));
    expect(mine).toEqual([`undoReachable ${n1.nativeId}`, `deleteMachine ${n1.nativeId}`]);
    expect([...fake.addresses.values()].filter((a) => a.tags['formwork.io/node-id'] === n1.id)).toEqual([]);
  });

  it('a failing machine deletion is retried, and its error recorded on the node meanwhile', async () => {
    fake.failNext('deleteMachine', new Error('socket hang up'));
    await annealer.start();
    expect((await h.call('DELETE', '/api/v1/nodes/n1')).statusCode).toBe(202);
    await gone('nodes', 'n1');
    expect(fake.calls.filter((c) => c.startsWith('deleteMachine'))).toHaveLength(2);
    const updates = (await h.t.store.events.list({ types: ['nodes'], keys: ['n1'] })).map((e) => (e.object as StoredObject | undefined)?.deletion as { lastError?: Record<string, unknown> } | undefined);
    const recorded = updates.find((d) => d?.lastError)?.lastError;
    expect(recorded).toMatchObject({ code: 'PROVIDER_ERROR', attempt: 1, retryAt: expect.any(String) });
    expect(String(recorded!.message)).toContain('socket hang up');
    expect([...fake.machines.values()].map((m) => m.spec.name)).toEqual(['n2']); // the other node's machine is untouched
  });

  it('an error that is not retryable stops the deletion (failed, with the error); DELETE again tries again', async () => {
    fake.failNext('deleteMachine', new FormworkError('PROVIDER_AUTH', 'the provider refused the credentials'));
    await annealer.start();
    expect((await h.call('DELETE', '/api/v1/nodes/n1')).statusCode).toBe(202);
    const failed = await waitFor(async () => {
      const n = await h.t.store.objects('nodes').get('n1');
      return (n.deletion as { failed?: boolean }).failed && n;
    });
    expect(failed.deletion).toMatchObject({ failed: true, attempts: 1, lastError: { code: 'PROVIDER_AUTH', attempt: 1 } });
    expect(failed.deletion).not.toHaveProperty('leaseOwner');
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.calls.filter((c) => c.startsWith('deleteMachine'))).toHaveLength(1); // not retried

    const again = await h.call('DELETE', '/api/v1/nodes/n1');
    expect(again.statusCode).toBe(202);
    expect(again.json().deletion).toMatchObject({ attempts: 0 });
    expect(again.json().deletion).not.toHaveProperty('failed');
    await gone('nodes', 'n1');
    expect(fake.calls.filter((c) => c.startsWith('deleteMachine'))).toHaveLength(2);
  });

  it('a provider is refused while it has nodes not being deleted; once they are, it waits for them, then tears down once', async () => {
    const refused = await h.call('DELETE', '/api/v1/providers/fk');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/still has 2 node\(s\) \(n1, n2\)/);
    expect((await h.t.store.objects('providers').get('fk')).deletion).toBeFalsy(); // nothing half-written

    expect((await h.call('DELETE', '/api/v1/deployments/demo')).statusCode).toBe(202);
    expect((await h.call('DELETE', '/api/v1/providers/fk')).statusCode).toBe(202);
    await annealer.start();
    await gone('providers', 'fk');
    await gone('deployments', 'demo');
    const teardown = fake.calls.indexOf('teardown');
    expect(fake.calls.filter((c) => c === 'teardown')).toHaveLength(1);
    expect(fake.calls.findLastIndex((c) => c.startsWith('deleteMachine'))).toBeLessThan(teardown);
    expect(fake.calls.filter((c) => c.startsWith('deleteMachine')).sort()).toEqual(['deleteMachine fake-1', 'deleteMachine fake-2']);
  });

  it('refuses writes to what is being deleted (apply, patch, commit), changing nothing', async () => {
    expect((await h.call('DELETE', '/api/v1/deployments/demo')).statusCode).toBe(202);
    const before = await h.t.store.objects('deployments').get('demo');
    const apply = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Deployment', name: 'demo', provider: 'fk', nodes: [{ name: 'n1' }], roles: {} }] } });
    expect(apply.statusCode).toBe(409);
    expect(apply.json().error.message).toMatch(/^deployment "demo" is being deleted \(asked at .+\); wait until it is gone/);
    const patch = await h.call('PATCH', '/api/v1/nodes/n1', { body: { zone: 'elsewhere' } });
    expect(patch.statusCode).toBe(409);
    expect(patch.json().error.message).toMatch(/^node "n1" is being deleted/);
    expect((await h.call('POST', '/api/v1/deployments/demo/commit')).statusCode).toBe(409);
    expect((await h.t.store.objects('deployments').get('demo')).version).toBe(before.version);
    expect((await h.t.store.objects('nodes').get('n1')).zone).toBeUndefined();
  });

  it('waits for a running node-role before deleting its machine, without counting the wait as an attempt', async () => {
    await h.t.store.objects('noderoles').update('demo:n1:web', { state: 'running', leaseOwner: 'someone', leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() });
    await annealer.start();
    expect((await h.call('DELETE', '/api/v1/nodes/n1')).statusCode).toBe(202);
    const waiting = await waitFor(async () => {
      const d = (await h.t.store.objects('nodes').get('n1')).deletion as { waitingFor?: string; attempts: number };
      return d.waitingFor && d;
    });
    expect(waiting).toMatchObject({ waitingFor: 'node-roles still running: demo:n1:web', attempts: 0 });
    expect(fake.calls.filter((c) => c.startsWith('deleteMachine'))).toEqual([]);
    await h.t.store.objects('noderoles').update('demo:n1:web', { state: 'active', leaseOwner: null, leaseExpiresAt: null });
    await gone('nodes', 'n1');
    expect(fake.machines.size).toBe(1);
  });
});
