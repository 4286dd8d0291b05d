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

  it('a retry finds the still-booting machine by its recorded id and keeps waiting: never deleted, never made twice', async () => {
    const driver = fakeDriver({ bootPolls: 1_000_000 });
    const first = await provision(driver, node, 0.05).catch((e: unknown) => e as { code: string; retryable: boolean; nodeUpdate?: Record<string, unknown> });
    expect(first).toMatchObject({ code: 'MACHINE_FAILED', retryable: true, nodeUpdate: { nativeId: 'fake-1' } });
    const recorded = await t.store.objects('nodes').update(node.id, { nativeId: 'fake-1' });
    driver.machines.get('fake-1')!.bootReads = 2; // it comes up during the second attempt
    const r = await provision(driver, recorded);
    expect(r.nodeUpdate).toMatchObject({ nativeId: 'fake-1' });
    expect(driver.calls.filter((c) => c.startsWith('createMachine'))).toHaveLength(1);
    expect(driver.calls.filter((c) => c.startsWith('deleteMachine'))).toEqual([]);
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
});
