import { afterEach, describe, expect, it } from 'vitest';
import { isFormworkError } from '../../core/errors.js';
import { forgetCallPolicies } from '../api-calls.js';
import { resolveCatalog } from '../catalog/index.js';
import { ownershipTags, type MachineSpec, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { awaitReadiness, bootPoll, readinessProbe, releaseMachine } from '../readiness.js';
import { gceDriver as driver } from './driver.js';
import { emulatedGce, type EmulatedGce } from './testing/emulated.js';

bootPoll.ms = 100; // a poll every 100 ms, as a (fast) cloud is polled: not thousands of reads while one instance never boots

/** What the provision role does for one node, with the engine's retry of a retryable failure (the same token). */
async function provisionLike(spec: MachineSpec, ctx: ProviderContext): Promise<{ ok: true; machine: ProvisionedMachine } | { ok: false; code: string; message: string }> {
  for (let attempt = 1; ; attempt++) {
    let made: ProvisionedMachine | undefined;
    try {
      const { chosen } = await resolveCatalog(driver, spec, ctx, 'gce');
      made = await driver.createMachine({ ...spec, chosen }, ctx);
      return { ok: true, machine: await awaitReadiness(driver, made, ctx, { waitSeconds: 4, log: () => undefined }) };
    } catch (e) {
      if (made) await releaseMachine(driver, made.nativeId, ctx);
      const retry = isFormworkError(e) && e.retryable && e.code !== 'MACHINE_FAILED' && attempt < 3;
      if (!retry) return { ok: false, code: isFormworkError(e) ? e.code : 'UNKNOWN', message: e instanceof Error ? e.message : String(e) };
    }
  }
}

describe('gce under faults', () => {
  let g: EmulatedGce | undefined;
  const realProbe = readinessProbe.tcp;
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    forgetCallPolicies();
    await g?.emu.close();
  });

  it('20% of calls throttled, 5% failing, one instance that never boots: every machine ready or cleanly failed, nothing leaked', async () => {
    g = await emulatedGce('gce-faults', { faults: 'throttle=20%,error=5%,never-boot=1,retry-after=0,seed=14' });
    const { emu, backend, ctx } = g;
    readinessProbe.tcp = async (host) => {
      if (!backend.reachable(host)) throw new Error(`${host}: connection refused`);
    };
    await driver.prepare!(ctx);
    const specs = Array.from({ length: 8 }, (_, i): MachineSpec => ({ name: `web-${i}`, nodeId: `node-${i}`, idempotencyToken: `formwork-node-${i}-0`, tags: ownershipTags('gce-faults', `node-${i}`), size: 'small', image: 'debian-12' }));
    const results = await Promise.all(specs.map((s) => provisionLike(s, ctx)));
    const failed = results.filter((r) => !r.ok);
    // The instance that never boots fails its node (still booting); a node may also get a new instance when a retry of its create finds none left.
    expect(failed.length).toBeLessThanOrEqual(1);
    for (const f of failed) expect(f).toEqual({ ok: false, code: 'MACHINE_FAILED', message: expect.stringMatching(/still booting|did not answer/) });
    expect(emu.faults.injected.throttle).toBeGreaterThan(0);
    expect(emu.faults.injected.error).toBeGreaterThan(0);
    expect(emu.faults.injected.neverBoot).toBe(1);
    // Nothing of the failed node is left; the others are there, each with its one external address.
    const instances = emu.resources().filter((r) => r.kind === 'instance');
    expect(instances).toHaveLength(8 - failed.length);
    expect(emu.resources().filter((r) => r.kind === 'access-config')).toHaveLength(8 - failed.length);
    for (const r of results) if (r.ok) expect(r.machine.addresses.find((a) => a.role === 'public')?.reason).toContain('TCP/22 answered');
    for (const r of results) if (r.ok) await releaseMachine(driver, r.machine, ctx);
    await driver.teardown!(ctx);
    expect(emu.resources()).toEqual([]);
    expect(backend.hosts.size).toBe(0);
  }, 60_000);

  it('a readiness timeout leaves nothing behind', async () => {
    g = await emulatedGce('gce-timeout');
    const { emu, ctx } = g;
    readinessProbe.tcp = async (host) => {
      throw new Error(`${host}: connection refused`);
    };
    const r = await provisionLike({ name: 'late', nodeId: 'late', idempotencyToken: 'formwork-late-0', tags: ownershipTags('gce-timeout', 'late'), size: 'small', image: 'debian-12' }, { ...ctx, settings: { ...ctx.settings, readinessTimeoutSeconds: 1 } });
    expect(r).toMatchObject({ ok: false, code: 'MACHINE_FAILED' });
    expect(emu.resources()).toEqual([]);
  }, 30_000);
});
