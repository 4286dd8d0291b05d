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
import { MACHINE_STATES, ownershipTags, TAG_NODE_ID, type MachineSpec, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from '../provider.js';

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

    beforeAll(async () => {
      s = await setup();
    }, t);
    afterAll(async () => {
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

    it('deletes it, and deleting again is no error', async () => {
      await s.driver.deleteMachine(first.nativeId, s.ctx);
      expect(await s.driver.getMachine(first.nativeId, s.ctx)).toBeUndefined();
      await s.driver.deleteMachine(first.nativeId, s.ctx);
      expect((await s.driver.listMachines(s.ctx)).map((m) => m.nativeId)).not.toContain(first.nativeId);
    }, t);

    it('tears down to nothing, twice', async () => {
      await s.driver.teardown?.(s.ctx);
      await s.driver.teardown?.(s.ctx);
      expect(await s.driver.listMachines(s.ctx)).toEqual([]);
    }, t);
  });
}
