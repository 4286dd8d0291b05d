/**
 * The provider contract suite (not the node `conformance` report): the same tests for every
 * driver, as hono runs every router through one `runTest`. docs/providers.md is the
 * contract in prose; this is what holds a driver to it. The in-memory fake and `static`
 * run it in every unit run, `lab` in test/e2e/lab/contract.test.ts (as root).
 *
 * @example
 *   runProviderContract('static', async () => ({ driver: staticDriver, ctx }), { cleanup: () => rm(dir) });
 */
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { controlAddress } from '../../core/addresses.js';
import { ERROR_CODES, isFormworkError } from '../../core/errors.js';
import { resolveCatalog } from '../catalog/index.js';
import { MACHINE_STATES, ownershipTags, TAG_MANAGED_BY, TAG_NODE_ID, type MachineSpec, type OwnedResource, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from '../provider.js';
import { awaitReadiness, readinessProbe, releaseMachine } from '../readiness.js';

export interface ContractSubject {
  driver: ProviderDriver;
  ctx: ProviderContext;
}

export interface ContractOptions {
  /** Per-test timeout (a real driver boots machines). Default 5 s. */
  timeoutMs?: number;
  cleanup?: () => Promise<void>;
  /** When the suite cannot run here (not root, a tool missing), why: the tests are skipped and say it. */
  skip?: string;
  /**
   * How the control plane's TCP/22 probe is answered for this driver's machines (a fake's
   * have no sockets); default: a real TCP connect.
   */
  probe?: (subject: ContractSubject, host: string, port: number) => Promise<void>;
  /** Makes the next machine created fail its readiness (never answer, never boot): the suite then checks nothing made to reach it is left. */
  breakReadiness?: (subject: ContractSubject) => void;
  /** How long a readiness wait in the suite lasts (default half the per-test timeout): a broken machine's wait runs it out. */
  readinessSeconds?: number;
  /** The catalog request the catalog test asks of a driver that lists sizes and images (default `small`, `debian-12`). */
  catalogRequest?: { size: string; image: string };
}

/** A spec as the provision role builds one, for a node id of the suite's own. */
export function contractSpec(name: string, run = `${process.pid}`): MachineSpec {
  const nodeId = `contract-${run}-${name}`;
  return { name, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('contract', nodeId, { suite: 'contract' }) };
}

export function runProviderContract(title: string, setup: () => Promise<ContractSubject>, opts: ContractOptions = {}): void {
  const t = opts.timeoutMs ?? 5_000;
  describe.skipIf(!!opts.skip)(`provider contract: ${title}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let s: ContractSubject;
    let first: ProvisionedMachine;
    const spec = contractSpec('c-1');
    const realProbe = readinessProbe.tcp;
    const wait = { waitSeconds: opts.readinessSeconds ?? t / 2000, log: () => undefined };
    /** The resources carrying a node's id, as `listOwned` reports them (ids, sorted). */
    const ownedBy = async (nodeId: string) => ((await s.driver.listOwned?.(s.ctx)) ?? []).filter((r: OwnedResource) => r.tags[TAG_NODE_ID] === nodeId).map((r) => `${r.kind} ${r.id}`).sort();

    beforeAll(async () => {
      s = await setup();
      if (opts.probe) readinessProbe.tcp = (host, port) => opts.probe!(s, host, port);
    }, t);
    afterAll(async () => {
      readinessProbe.tcp = realProbe;
      if (s) await s.driver.teardown?.(s.ctx).catch(() => undefined);
      await opts.cleanup?.();
    }, t);

    it('prepares, and preparing again changes nothing', async () => {
      await s.driver.prepare?.(s.ctx);
      await s.driver.prepare?.(s.ctx);
      expect(await s.driver.listMachines(s.ctx)).toEqual([]);
    }, t);

    it('creates a machine in a documented state, carrying its ownership tags, with a control address', async () => {
      first = await s.driver.createMachine(spec, s.ctx);
      expect(first.nativeId).toMatch(/\S/);
      expect(MACHINE_STATES).toContain(first.state);
      expect(first.tags).toMatchObject(spec.tags);
      expect(controlAddress(first.addresses)).toBeDefined();
      for (const a of first.addresses) expect([4, 6]).toContain(a.family);
      expect(first.loginUsers.length).toBeGreaterThan(0);
    }, t);

    it('classifies every address with the reason for its role', async () => {
      for (const a of first.addresses) expect(a.reason, `${a.address} (${a.role}) has no reason`).toMatch(/\S/);
    }, t);

    it('lists what create made among the resources it owns (listOwned), each tagged as Formwork\'s', async (c) => {
      if (!s.driver.listOwned) return c.skip();
      const owned = (await s.driver.listOwned(s.ctx)).filter((r) => r.tags[TAG_NODE_ID] === spec.nodeId);
      expect(owned.filter((r) => r.kind === 'machine').map((r) => r.id)).toEqual([first.nativeId]);
      for (const r of owned) expect(r.tags[TAG_MANAGED_BY]).toBe('formwork');
    }, t);

    it('waits for it through the readiness wait and makes it reachable; making it reachable again changes nothing', async () => {
      const before = await ownedBy(spec.nodeId);
      const ready = await awaitReadiness(s.driver, first, s.ctx, wait);
      expect(ready.state).toBe('running');
      expect(controlAddress(ready.addresses)).toBeDefined();
      for (const a of ready.addresses) expect(a.reason, `${a.address} (${a.role}) has no reason`).toMatch(/\S/);
      if (!s.driver.makeReachable) return;
      const made = await ownedBy(spec.nodeId);
      const again = await s.driver.makeReachable(ready, s.ctx);
      expect(again.addresses.map((a) => a.address).sort()).toEqual(ready.addresses.map((a) => a.address).sort());
      expect(await ownedBy(spec.nodeId)).toEqual(made);
      // Undone, twice, it leaves what create made and nothing more; made reachable again for what follows.
      await s.driver.undoReachable!(ready, s.ctx);
      await s.driver.undoReachable!(ready, s.ctx);
      if (s.driver.listOwned) expect(await ownedBy(spec.nodeId)).toEqual(before);
      first = await awaitReadiness(s.driver, first, s.ctx, wait);
    }, t);

    it('finds it by id and by tag: getMachine joins listMachines', async () => {
      const got = await s.driver.getMachine(first.nativeId, s.ctx);
      expect(got).toMatchObject({ nativeId: first.nativeId, tags: spec.tags });
      const listed = (await s.driver.listMachines(s.ctx)).filter((m) => m.tags[TAG_NODE_ID] === spec.nodeId);
      expect(listed.map((m) => m.nativeId)).toEqual([first.nativeId]);
    }, t);

    it('has no machine for an id it never made, without an error', async () => {
      expect(await s.driver.getMachine('never-made-0', s.ctx)).toBeUndefined();
    }, t);

    it('returns the same machine for a create retried with the same token', async () => {
      const again = await s.driver.createMachine(spec, s.ctx);
      expect(again.nativeId).toBe(first.nativeId);
      expect((await s.driver.listMachines(s.ctx)).filter((m) => m.tags[TAG_NODE_ID] === spec.nodeId)).toHaveLength(1);
    }, t);

    it('fails only with registered error codes', async () => {
      // A spec no driver can honour: an empty name.
      const bad = { ...contractSpec(''), idempotencyToken: 'contract-bad' };
      const e = await s.driver.createMachine(bad, s.ctx).then(
        (m) => m,
        (err: unknown) => err,
      );
      if (isFormworkError(e)) expect(Object.keys(ERROR_CODES)).toContain(e.code);
      else if (e instanceof Error) throw new Error(`the driver threw a ${e.name}, not a FormworkError: ${e.message}`);
      else await s.driver.deleteMachine((e as ProvisionedMachine).nativeId, s.ctx); // a driver that names machines itself may take it
    }, t);

    it('chooses from the catalog it lists, in normalized shapes, and creates what it chose', async (c) => {
      if (!s.driver.listSizes || !s.driver.listImages) return c.skip();
      for (const z of (await s.driver.listSizes(s.ctx))) expect(z).toMatchObject({ nativeId: expect.any(String), cpus: expect.any(Number), ramMiB: expect.any(Number) });
      for (const i of (await s.driver.listImages(s.ctx))) expect(i).toMatchObject({ nativeId: expect.any(String), name: expect.any(String), properties: expect.any(Object) });
      for (const n of (await s.driver.listNetworks?.(s.ctx)) ?? []) expect(n).toMatchObject({ id: expect.any(String), flags: expect.any(Object), evidence: expect.any(Array) });
      for (const z of (await s.driver.listZones?.(s.ctx)) ?? []) expect(z).toMatchObject({ name: expect.any(String), available: expect.any(Boolean) });
      const asked = { ...contractSpec('c-cat'), ...(opts.catalogRequest ?? { size: 'small', image: 'debian-12' }) };
      const { chosen, decisions } = await resolveCatalog(s.driver, asked, s.ctx, s.driver.type);
      expect(decisions.map((d) => d.subject)).toEqual(['size', 'image']);
      for (const d of decisions) expect(d.reason).toMatch(/\S/);
      const m = await s.driver.createMachine({ ...asked, chosen }, s.ctx);
      try {
        expect(m.size?.native).toBe(chosen.size!.nativeId);
        expect(m.image?.native).toBe(chosen.image!.nativeId);
      } finally {
        await releaseMachine(s.driver, m, s.ctx);
      }
      expect(await ownedBy(asked.nodeId)).toEqual([]);
    }, t);

    it('releases what made a machine reachable when its readiness fails, and leaves nothing once it is deleted', async (c) => {
      if (!opts.breakReadiness) return c.skip();
      opts.breakReadiness(s);
      const broken = contractSpec('c-broken');
      const m = await s.driver.createMachine(broken, s.ctx);
      const made = await ownedBy(broken.nodeId);
      await expect(awaitReadiness(s.driver, m, s.ctx, wait)).rejects.toMatchObject({ code: 'MACHINE_FAILED' });
      expect(await ownedBy(broken.nodeId)).toEqual(made);
      await releaseMachine(s.driver, m.nativeId, s.ctx);
      expect(await ownedBy(broken.nodeId)).toEqual([]);
    }, t);

    it('deletes it (released first, as provision and deletion do), and deleting again is no error; nothing it owned is left', async () => {
      await releaseMachine(s.driver, first, s.ctx);
      expect(await s.driver.getMachine(first.nativeId, s.ctx)).toBeUndefined();
      await releaseMachine(s.driver, first.nativeId, s.ctx);
      expect((await s.driver.listMachines(s.ctx)).map((m) => m.nativeId)).not.toContain(first.nativeId);
      expect(await ownedBy(spec.nodeId)).toEqual([]);
    }, t);

    it('tears down to nothing, twice', async () => {
      await s.driver.teardown?.(s.ctx);
      await s.driver.teardown?.(s.ctx);
      expect(await s.driver.listMachines(s.ctx)).toEqual([]);
      if (s.driver.listOwned) expect(await s.driver.listOwned(s.ctx)).toEqual([]);
    }, t);
  });
}
