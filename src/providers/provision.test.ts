import { FormworkError } from '../core/errors.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { ownershipTags } from './provider.js';
import { bootPoll, provisionMachine } from './provision.js';
import { readinessProbe } from './readiness.js';
import { fakeDriver, type FakeDriver } from './testing/fake-driver.js';

bootPoll.ms = 5;
// The fake's machines have no sockets: TCP/22 "answers" where the fake says it would.
let probed: FakeDriver | undefined;
readinessProbe.tcp = async (host) => {
  if (probed && !probed.answers(host)) throw new Error(`${host}: connection refused`);
};

describe.each(STORE_ENGINES)('provisioning a node on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let provider: StoredObject;
  let node: StoredObject;
  let log: string;
  const io = () => ({ log: (c: string) => void (log += c), signal: new AbortController().signal });

  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    provider = await t.store.objects('providers').create({ name: 'fk', type: 'fake' });
    node = await t.store.objects('nodes').create({ name: 'web-1', provider: 'fk' });
    log = '';
  });
  afterEach(() => t.cleanup());

  const provision = (driver: FakeDriver, n = node, waitSeconds?: number) => {
    probed = driver;
    return provisionMachine(services, { node: n, provider, driver }, io(), waitSeconds);
  };

  it('prepares the provider, then waits for a booting machine instead of recreating it', async () => {
    const driver = fakeDriver({ bootPolls: 3 });
    const r = await provision(driver);
    expect(r.nodeUpdate).toMatchObject({ nativeId: 'fake-1', state: 'provisioned' });
    expect(driver.calls.filter((c) => /^(prepare|createMachine|deleteMachine)/.test(c))).toEqual(['prepare', 'createMachine web-1']);
    expect(log).toContain('fake-1 is booting');
    expect((await t.store.objects('providers').get('fk')).state).toBe('ready');
  });

  it('a retry after a failure during the wait finds the still-booting machine by its recorded id and keeps waiting: never deleted, never made twice', async () => {
    const driver = fakeDriver({ bootPolls: 3 });
    driver.failNext('getMachine', new FormworkError('PROVIDER_THROTTLED', 'Rate exceeded'));
    const first = await provision(driver).catch((e: unknown) => e as { code: string; retryable: boolean; nodeUpdate?: Record<string, unknown> });
    expect(first).toMatchObject({ code: 'PROVIDER_THROTTLED', retryable: true, nodeUpdate: { nativeId: 'fake-1' } });
    const recorded = await t.store.objects('nodes').update(node.id, { nativeId: 'fake-1' });
    const r = await provision(driver, recorded);
    expect(r.nodeUpdate).toMatchObject({ nativeId: 'fake-1' });
    expect(driver.calls.filter((c) => c.startsWith('createMachine'))).toHaveLength(1);
    expect(driver.calls.filter((c) => c.startsWith('deleteMachine'))).toEqual([]);
  });

  it('a machine still booting when the readiness timeout runs out is given up: deleted, and the next attempt makes another under a new token', async () => {
    const driver = fakeDriver();
    driver.breakNextBoot('never');
    const first = (await provision(driver, node, 0.05).catch((e: unknown) => e)) as { code: string; message: string; retryable: boolean; nodeUpdate?: Record<string, unknown> };
    expect(first).toMatchObject({ code: 'MACHINE_FAILED', retryable: true, nodeUpdate: { nativeId: null, inventory: { machineGeneration: 1 } } });
    expect(first.message).toMatch(/still booting after 0.05 s \(the readiness timeout\)/);
    expect(driver.machines.has('fake-1')).toBe(false);
    expect(log).toContain('deleted: it was not ready within the readiness timeout');
    const next = await t.store.objects('nodes').update(node.id, first.nodeUpdate!);
    const r = await provision(driver, next);
    expect(r.nodeUpdate).toMatchObject({ nativeId: 'fake-2' });
    expect(driver.calls.filter((c) => c.startsWith('createMachine'))).toHaveLength(2);
  });

  it('finds an unrecorded machine by its node-id tag, never by name', async () => {
    const driver = fakeDriver();
    await driver.prepare!({} as never);
    // Someone else's machine with the same name, and ours from an interrupted run (id never recorded).
    const theirs = await driver.createMachine({ name: 'web-1', nodeId: 'other', idempotencyToken: 'x', tags: { owner: 'someone-else' } }, {} as never);
    const ours = await driver.createMachine({ name: 'web-1', nodeId: node.id, idempotencyToken: 'y', tags: ownershipTags('fk', node.id) }, {} as never);
    const r = await provision(driver);
    expect(r.nodeUpdate!.nativeId).toBe(ours.nativeId);
    expect(driver.machines.has(theirs.nativeId)).toBe(true);
    expect(driver.calls.filter((c) => c.startsWith('createMachine'))).toHaveLength(2); // only the two above
  });

  it('replaces a machine in error with a new one made under another idempotency token', async () => {
    const driver = fakeDriver();
    await provision(driver);
    driver.setState('fake-1', 'error');
    const recorded = await t.store.objects('nodes').update(node.id, { nativeId: 'fake-1' });
    const r = await provision(driver, recorded);
    expect(r.nodeUpdate!.nativeId).toBe('fake-2');
    expect(driver.calls).toContain('deleteMachine fake-1');
    const tokens = [...driver.machines.values()].map((m) => m.spec.idempotencyToken);
    expect(tokens).toEqual([`formwork-${node.id}-1`]);
  });

  it("turns an SDK's own error into a retryable PROVIDER_ERROR that keeps its cause", async () => {
    const driver = fakeDriver();
    const sdk = Object.assign(new Error('socket hang up'), { name: 'RequestError' });
    driver.failNext('createMachine', sdk);
    const e = (await provision(driver).catch((x: unknown) => x)) as Error & { code: string; retryable: boolean };
    expect(e).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, cause: sdk });
    expect(e.message).toContain('socket hang up');
    expect(log).toContain('cause: RequestError: socket hang up');
  });

  it('keeps a terminal code a driver chose', async () => {
    const driver = fakeDriver();
    const { FormworkError } = await import('../core/errors.js');
    driver.failNext('createMachine', new FormworkError('PROVIDER_QUOTA', 'fake: 0 instances left'));
    await expect(provision(driver)).rejects.toMatchObject({ code: 'PROVIDER_QUOTA', retryable: false });
  });

  describe('catalog, reachability and decisions', () => {
    const tagged = (driver: FakeDriver) => [...driver.addresses.values()].filter((a) => a.tags['formwork.io/node-id'] === node.id);

    it('maps size and image through the catalog, makes the machine reachable, and records every decision with its reason', async () => {
      const driver = fakeDriver({ bootPolls: 1 });
      const n = await t.store.objects('nodes').update(node.id, { sizeNormalized: 'small', imageNormalized: 'debian-12' });
      const r = await provision(driver, n);
      const u = r.nodeUpdate as Record<string, unknown> & { addresses: Array<{ role: string; reason?: string }>; decisions: Array<{ subject: string; chosen: string; reason: string }> };
      // fake.wide meets "small" and is cheaper than fake.small: price decides when every size has one.
      expect(u).toMatchObject({ sizeNormalized: 'small', sizeNative: 'fake.wide', imageNormalized: 'debian-12', imageNative: 'fake-debian-12' });
      expect(u.addresses.every((a) => !!a.reason)).toBe(true);
      expect(u.addresses.find((a) => a.role === 'public')!.reason).toMatch(/floating address .* TCP\/22 answered from the control plane/);
      const subjects = u.decisions.map((d) => d.subject);
      expect(subjects).toEqual(['size', 'image', 'network', 'address']);
      expect(u.decisions[0]!.reason).toMatch(/cheapest/);
      expect(u.decisions[1]!.reason).toMatch(/os_distro=debian, os_version=12/);
      expect(u.decisions[3]).toMatchObject({ chosen: '192.0.2.1' });
      expect(driver.calls.filter((c) => c.startsWith('makeReachable'))).toEqual(['makeReachable fake-1']);
      expect(tagged(driver)).toHaveLength(1);
    });

    it('a request nothing in the catalog meets is a clear error naming what was asked, where it looked and the setting', async () => {
      const driver = fakeDriver();
      const n = await t.store.objects('nodes').update(node.id, { imageNormalized: 'plan9-4' });
      const e = (await provision(driver, n).catch((x: unknown) => x)) as { code: string; message: string; retryable: boolean };
      expect(e).toMatchObject({ code: 'PROVIDER_INVALID', retryable: false });
      expect(e.message).toMatch(/plan9-4.*3 images of provider fk.*settings\.images\.plan9-4/);
      expect(driver.calls.filter((c) => c.startsWith('createMachine'))).toEqual([]);
    });

    it('settings.sizes and settings.images override the catalog, and say so', async () => {
      provider = await t.store.objects('providers').update(provider.id, { settings: { sizes: { small: 'fake.medium' }, images: { 'debian-12': 'fake-debian-11' } } });
      const n = await t.store.objects('nodes').update(node.id, { sizeNormalized: 'small', imageNormalized: 'debian-12' });
      const r = await provision(fakeDriver(), n);
      expect(r.nodeUpdate).toMatchObject({ sizeNative: 'fake.medium', imageNative: 'fake-debian-11' });
      expect((r.nodeUpdate!.decisions as Array<{ reason: string }>).slice(0, 2).map((d) => d.reason)).toEqual(['settings.sizes.small of provider fk', 'settings.images.debian-12 of provider fk']);
    });

    it('undoes make-reachable when the machine never answers, leaving the address it did not make alone', async () => {
      const driver = fakeDriver();
      driver.breakNextBoot('unreachable');
      const e = await provision(driver).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'MACHINE_FAILED', retryable: true, nodeUpdate: { nativeId: null } });
      expect((e as Error).message).toMatch(/TCP\/22 on 192\.0\.2\.1 did not answer/);
      // Released inside the wait, released again (idempotent) as the machine is given up, then deleted.
      expect(driver.calls.filter((c) => /Reachable|deleteMachine/.test(c))).toEqual(['makeReachable fake-1', 'undoReachable fake-1', 'undoReachable fake-1', 'deleteMachine fake-1']);
      expect(tagged(driver)).toEqual([]);
      expect(driver.addresses.get('fip-foreign')).toEqual({ id: 'fip-foreign', address: '203.0.113.250', tags: {} });
      expect(log).toContain('is released');
    });

    it('a readiness timeout (settings.readinessTimeoutSeconds) leaves nothing behind; a late build failure is replaced', async () => {
      provider = await t.store.objects('providers').update(provider.id, { settings: { readinessTimeoutSeconds: 0.05 } });
      const driver = fakeDriver();
      driver.breakNextBoot('never');
      await expect(provision(driver)).rejects.toMatchObject({ code: 'MACHINE_FAILED', message: expect.stringMatching(/still booting after 0.05 s/) });
      expect(driver.calls).toContain('undoReachable fake-1');
      expect([driver.machines.has('fake-1'), tagged(driver)]).toEqual([false, []]);
      const r = await provision(driver);
      expect(r.nodeUpdate!.nativeId).toBe('fake-2');
      driver.setState('fake-2', 'error');
      const recorded = await t.store.objects('nodes').update(node.id, { nativeId: 'fake-2' });
      const r3 = await provision(driver, recorded);
      expect(r3.nodeUpdate!.nativeId).toBe('fake-3');
      // The failed machine was released (its reachability first), then deleted.
      const order = driver.calls.filter((c) => /fake-2$/.test(c) && /Reachable|deleteMachine/.test(c));
      expect(order.slice(-2)).toEqual(['undoReachable fake-2', 'deleteMachine fake-2']);
      expect(tagged(driver).map((a) => a.machine)).toEqual(['fake-3']);
    });
  });
});
