/**
 * The `openstack` driver against a real OpenStack control plane (scripts/openstack/start.sh):
 * a machine is created, reaches ACTIVE, is given a floating IP inside the readiness wait, and
 * the wait times out (the fake compute driver's servers answer nothing); afterwards no
 * floating IP, port, keypair, security group or server of the provider is left. And what the
 * provider's `prepare` refuses when it is applied: a wrong password, an unknown cloud, an
 * unknown region.
 *
 * Needs FORMWORK_OPENSTACK_REAL_DIR (the folder start.sh wrote, with its clouds.yaml);
 * `bash scripts/openstack/run-e2e.sh` starts and stops the control plane around it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePlatformKey } from '../../../src/engine/executors/target.js';
import { ownershipTags, type ProviderContext } from '../../../src/providers/provider.js';
import { awaitReadiness, readinessProbe, releaseMachine } from '../../../src/providers/readiness.js';
import { createOpenStackClient } from '../../../src/providers/openstack/client/index.js';
import { loadCloudConfig } from '../../../src/providers/openstack/config/cloud-config.js';
import { cloudConfigLocations } from '../../../src/providers/openstack/connect.js';
import { openstackDriver as driver } from '../../../src/providers/openstack/driver.js';

const DIR = process.env.FORMWORK_OPENSTACK_REAL_DIR;
const CLOUDS = DIR ? join(DIR, 'clouds.yaml') : undefined;
const skip = !CLOUDS ? 'FORMWORK_OPENSTACK_REAL_DIR is not set' : !existsSync(CLOUDS) ? `${CLOUDS} does not exist` : undefined;
if (skip) console.warn(`test/e2e/openstack/driver.test.ts skipped: no real OpenStack control plane (${skip}); run \`bash scripts/openstack/run-e2e.sh\`, which starts one`);

const PROVIDER = `e2e-${randomBytes(3).toString('hex')}`;
const lines: string[] = [];
// Nova parses the public key it imports: a real one, made for this run.
const KEY_DIR = mkdtempSync(join(tmpdir(), 'fw-os-e2e-'));
const log = { info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(`warning: ${m}`) };
const context = (settings: Record<string, unknown>, credentials?: Record<string, string>): ProviderContext => ({
  dataDir: '/nonexistent', providerName: PROVIDER, settings, ...(credentials ? { credentials } : {}), publicKey: ensurePlatformKey(KEY_DIR).publicKey, log,
});

describe.skipIf(!!skip)('openstack driver against a real control plane', () => {
  const ctx = context({ cloud: 'demo', network: 'private', readinessTimeoutSeconds: 40 });

  const realProbe = readinessProbe.tcp;
  beforeAll(() => {
    // Only DIR is searched: never the developer's own ~/.config/openstack or /etc/openstack.
    cloudConfigLocations.get = () => ({ env: { OS_CLIENT_CONFIG_FILE: CLOUDS }, cwd: DIR, home: DIR, systemDir: DIR });
    // The fake compute driver's servers answer nothing, and their floating IPs (198.19.254.0/24)
    // are on no interface of this machine: a real probe would go out by the default route.
    // So the probe sends nothing and never answers, as on a cloud whose servers are unreachable.
    readinessProbe.tcp = async (host, port, deadlineMs) => {
      await new Promise((r) => setTimeout(r, Math.max(0, deadlineMs - Date.now())));
      throw new Error(`${host}:${port}: no answer (the fake compute driver's servers have no network)`);
    };
  });

  afterAll(async () => {
    readinessProbe.tcp = realProbe;
    // A safety net: whatever a failed test left is deleted, machines first.
    const owned = await driver.listOwned!(ctx).catch(() => []);
    for (const r of owned.sort((a, b) => Number(b.kind === 'machine') - Number(a.kind === 'machine'))) await driver.deleteOwned!(r, ctx).catch(() => undefined);
    await driver.teardown!(ctx).catch(() => undefined);
    rmSync(KEY_DIR, { recursive: true, force: true });
  }, 300_000);

  it('creates a machine that reaches ACTIVE, times out its readiness, and leaves no floating IP, port, keypair, security group or server', async () => {
    await driver.prepare!(ctx);
    const nodeId = `node-${randomBytes(4).toString('hex')}`;
    const m = await driver.createMachine({ name: `${PROVIDER}-1`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags(PROVIDER, nodeId), size: 'small', image: 'debian-12' }, ctx);
    expect(m.decisions).toEqual(expect.arrayContaining([expect.objectContaining({ subject: 'network', reason: 'settings.network "private"' })]));
    expect(m.loginUsers[0]).toBe('debian'); // the image's os_admin_user
    const waitLog: string[] = [];
    const err = await awaitReadiness(driver, m, ctx, { waitSeconds: 40, log: (l) => void waitLog.push(l) }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'MACHINE_FAILED', message: expect.stringMatching(/TCP\/22 on 198\.19\.254\.\d+ did not answer/) });
    const text = waitLog.join('');
    expect(text).toMatch(/made reachable: 198\.19\.254\.\d+ \(public: floating IP \S+ on external network public, attached to port \S+\)/);
    expect(text).toContain('what made it reachable is released');

    const demo = await loadCloudConfig('demo', cloudConfigLocations.get());
    const client = createOpenStackClient({ auth: demo.auth, region: demo.region, interface: demo.interface, endpointOverrides: demo.endpointOverrides });
    const tagged = { tags: `formwork.io/provider=${PROVIDER}` };
    expect(await client.network.listFloatingIps(tagged)).toEqual([]);
    await releaseMachine(driver, m.nativeId, ctx);
    expect(await driver.getMachine(m.nativeId, ctx)).toBeUndefined();
    await driver.teardown!(ctx);

    expect(await driver.listOwned!(ctx)).toEqual([]);
    expect(await client.compute.listServers({ 'formwork.io/provider': PROVIDER })).toEqual([]);
    expect(await client.network.listFloatingIps(tagged)).toEqual([]);
    expect(await client.network.listPorts(tagged)).toEqual([]);
    expect(await client.network.listSecurityGroups(tagged)).toEqual([]);
    expect(await client.compute.getKeypair(`formwork-${PROVIDER}`)).toBeUndefined();
    // Nova's own port for the server went with it.
    for (let i = 0; i < 60 && (await client.network.listPorts({ device_id: m.nativeId })).length > 0; i++) await new Promise((r) => setTimeout(r, 500));
    expect(await client.network.listPorts({ device_id: m.nativeId })).toEqual([]);
  }, 300_000);

  it('refuses at apply (prepare), naming what to fix: a wrong password, an unknown cloud, an unknown region', async () => {
    const demo = await loadCloudConfig('demo', cloudConfigLocations.get());
    if (demo.auth.method !== 'password') throw new Error('clouds.yaml demo uses a password');
    const auth = { auth_url: demo.auth.authUrl, username: demo.auth.username, user_domain_name: demo.auth.userDomainName ?? 'Default', project_name: demo.auth.projectName, project_domain_name: demo.auth.projectDomainName ?? 'Default' };
    const wrong = driver.prepare!(context({ auth, network: 'private' }, { password: 'not-the-password' }));
    await expect(wrong).rejects.toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringContaining("refused user demo: fix the provider's credentialsSecret (password)") });
    await expect(wrong.catch((e: Error) => e.message)).resolves.not.toContain('not-the-password');
    await expect(driver.prepare!(context({ cloud: 'nope' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/has no cloud "nope"; its clouds are: .*demo/) });
    await expect(driver.prepare!(context({ cloud: 'demo', region: 'RegionTwo', network: 'private' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('region "RegionTwo"') });
  }, 120_000);
});
