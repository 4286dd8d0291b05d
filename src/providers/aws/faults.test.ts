import { afterEach, describe, expect, it } from 'vitest';
import { toFormworkError } from '../../core/errors.js';
import { ownershipTags, type MachineSpec, type ProvisionedMachine } from '../provider.js';
import { awaitReadiness, readinessProbe, releaseMachine } from '../readiness.js';
import { awsDriver as driver } from './driver.js';
import { awsContext, fastPolls, forgetAll, probeFor, startTestEmulator } from './testing.js';

fastPolls();

/**
 * Issue 14's fault injection on the aws driver: 20 % of the API calls throttled, 5 % failing,
 * one instance that never boots, eight machines made the way `provision` makes them (a
 * create retried with the same token, the readiness wait, a release on failure): every
 * machine ends ready or cleanly failed with its reason, and the emulator holds nothing of
 * the failed ones, and nothing at all once the rest are deleted and the provider torn down.
 */
describe('aws driver under faults', () => {
  const realProbe = readinessProbe.tcp;
  afterEach(() => {
    readinessProbe.tcp = realProbe;
    forgetAll();
  });

  it('20% throttled, 5% failing, one never boots: every machine ready or cleanly failed, nothing leaked', async () => {
    const emu = await startTestEmulator({ faults: 'throttle=20%,error=5%,never-boot=1,retry-after=0,seed=14', bootDelayMs: 10 });
    try {
      readinessProbe.tcp = probeFor(emu.backend);
      const ctx = awsContext(emu, 'aws-faults');
      for (let i = 0; i < 5; i++) if (await driver.prepare!(ctx).then(() => true, () => false)) break;
      const spec = (n: number): MachineSpec => ({ name: `node-${n}`, nodeId: `f${n}`, idempotencyToken: `formwork-f${n}-0`, tags: ownershipTags('aws-faults', `f${n}`), size: 'small', image: 'debian-12' });
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, async (_, n): Promise<{ n: number; ready?: ProvisionedMachine; error?: string }> => {
          let made: ProvisionedMachine | undefined;
          let last: unknown;
          // The engine retries a failed node-role; here: up to three tries of the create, same token.
          for (let attempt = 0; attempt < 3 && !made; attempt++) made = await driver.createMachine(spec(n), ctx).catch((e: unknown) => void (last = e));
          if (!made) return { n, error: toFormworkError(last).code };
          try {
            return { n, ready: await awaitReadiness(driver, made, ctx, { waitSeconds: 2, log: () => undefined }) };
          } catch (e) {
            const code = toFormworkError(e).code;
            for (let attempt = 0; attempt < 3; attempt++) if (await releaseMachine(driver, made.nativeId, ctx).then(() => true, () => false)) break;
            return { n, error: code };
          }
        }),
      );
      const failed = outcomes.filter((o) => o.error);
      const ready = outcomes.filter((o) => o.ready);
      expect(ready.length + failed.length).toBe(8);
      expect(failed.length).toBeGreaterThanOrEqual(1); // the one that never booted
      expect(failed.map((f) => f.error)).toContain('MACHINE_FAILED');
      for (const r of ready) expect(r.ready!.addresses.some((a) => a.role === 'public' && emu.backend.reachable(a.address))).toBe(true);
      await emu.settled();
      const failedNodes = new Set(failed.map((f) => `f${f.n}`));
      expect(emu.resources().filter((r) => failedNodes.has(r.tags['formwork.io/node-id']))).toEqual([]);
      expect(emu.faults.injected.throttle).toBeGreaterThan(5);
      expect(emu.faults.injected.neverBoot).toBe(1);
      for (const r of ready) for (let attempt = 0; attempt < 3; attempt++) if (await releaseMachine(driver, r.ready!, ctx).then(() => true, () => false)) break;
      for (let attempt = 0; attempt < 3; attempt++) if (await driver.teardown!(ctx).then(() => true, () => false)) break;
      await emu.settled();
      expect(emu.resources()).toEqual([]);
    } finally {
      await emu.close();
    }
  }, 60_000);

  it('throttling while polling never orphans a machine: a machine whose getMachine was throttled is still found and deleted', async () => {
    const emu = await startTestEmulator({ faults: 'throttle=50%,retry-after=0,seed=3', bootDelayMs: 10 });
    try {
      readinessProbe.tcp = probeFor(emu.backend);
      const ctx = awsContext(emu, 'aws-poll');
      const spec: MachineSpec = { name: 'p', nodeId: 'p1', idempotencyToken: 'formwork-p1-0', tags: ownershipTags('aws-poll', 'p1') };
      let m: ProvisionedMachine | undefined;
      for (let i = 0; i < 5 && !m; i++) m = await driver.createMachine(spec, ctx).catch(() => undefined);
      expect(m).toBeDefined();
      const ready = await awaitReadiness(driver, m!, ctx, { waitSeconds: 5, log: () => undefined });
      expect(emu.state.instances.size).toBe(1);
      for (let i = 0; i < 5; i++) if (await releaseMachine(driver, ready, ctx).then(() => true, () => false)) break;
      await emu.settled();
      expect(emu.resources().filter((r) => r.tags['formwork.io/node-id'])).toEqual([]);
    } finally {
      await emu.close();
    }
  }, 60_000);
});
