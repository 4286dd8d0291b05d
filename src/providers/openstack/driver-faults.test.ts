/**
 * The openstack driver on an emulated cloud that throttles and fails a share of its calls
 * and has instances that never boot or are never reached: every machine is ready or failed
 * with its reason, and once released nothing of ours is left (server, floating IP, port).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isFormworkError } from '../../core/errors.js';
import { forgetCallPolicies } from '../api-calls.js';
import { parseFaults } from '../emulation/faults.js';
import { ownershipTags, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { awaitReadiness, bootPoll, readinessProbe, releaseMachine } from '../readiness.js';
import { forgetConnections } from './connect.js';
import { openstackDriver as driver } from './driver.js';
import { emulate, type Emulated } from './testing/emulated.js';

bootPoll.ms = 5;
const quiet = { info: () => undefined, warn: () => undefined };
let e: Emulated | undefined;
const realProbe = readinessProbe.tcp;
afterEach(async () => {
  readinessProbe.tcp = realProbe;
  forgetConnections();
  forgetCallPolicies();
  await e?.emu.close();
});

function context(em: Emulated): ProviderContext {
  const a = em.emu.passwordAuth();
  return {
    dataDir: '/nonexistent', providerName: 'faulty', log: quiet, publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5u1p7JfQb3m0sT8Xn4d9GkM2bYz7q0r1w2e3t4y5u formwork',
    settings: { auth: { auth_url: a.authUrl, username: a.username, user_domain_name: 'Default', project_name: a.projectName, project_domain_name: 'Default' }, network: 'private', rateLimit: { requestsPerSecond: 500, concurrency: 8 } },
    credentials: { password: a.password },
  };
}

describe('the openstack driver under injected faults', () => {
  it('20 % of calls throttled or failing, one server never booting, one never reached: the rest are ready, the two fail with their reason, and nothing is left once released', async () => {
    e = await emulate('floating-ip-required', { faults: parseFaults('throttle=12%,error=8%,never-boot=1,unreachable=1,retry-after=0,seed=11') });
    const em = e;
    readinessProbe.tcp = async (host) => {
      if (!em.backend.reachable(host)) throw new Error(`${host}:22: connection timed out`);
    };
    const ctx = context(em);
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const nodeId = `n${i}`;
        let m: ProvisionedMachine | undefined;
        // As the engine runs provision: a retryable failure is tried again (the machine found by its id, else made).
        for (let attempt = 1; ; attempt++) {
          try {
            m = (m && (await driver.getMachine(m.nativeId, ctx))) || (await driver.createMachine({ name: `web-${i}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('faulty', nodeId), size: 'small', image: 'debian-12' }, ctx));
            const ready = await awaitReadiness(driver, m, ctx, { waitSeconds: 2, log: () => undefined });
            return { ok: true as const, machine: ready, attempts: attempt };
          } catch (err) {
            if (!isFormworkError(err) || !err.retryable || attempt === 4) return { ok: false as const, machine: m, reason: err instanceof Error ? err.message : String(err) };
          }
        }
      }),
    );
    const failed = outcomes.filter((o) => !o.ok);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(4);
    expect(failed).toHaveLength(2);
    for (const f of failed) expect(f.reason).toMatch(/did not answer within|still booting after/);
    expect(em.emu.faults.injected.throttle + em.emu.faults.injected.error).toBeGreaterThan(0);
    // A failed wait released its floating IP already; the machines are released like provision's failure path does.
    for (const o of outcomes) if (o.machine) await releaseMachine(driver, o.machine, ctx);
    await em.emu.settled();
    const s = em.emu.state;
    expect({ servers: s.servers.size, floatingips: [...s.floatingips.values()].length, computePorts: [...s.ports.values()].filter((p) => String(p.device_owner ?? '').startsWith('compute:')).length }).toEqual({ servers: 0, floatingips: 0, computePorts: 0 });
  }, 60_000);
});
