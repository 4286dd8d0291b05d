import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownershipTags, type MachineSpec, type ProviderContext } from '../provider.js';
import { awaitReadiness, bootPoll, readinessProbe } from '../readiness.js';
import { providerProblems } from '../registry.js';
import { runProviderContract } from '../testing/contract-suite.js';
import { cloudConfigLocations, forgetConnections } from './connect.js';
import { openstackDriver as driver } from './driver.js';
import { fixedAddressProbe } from './reachable.js';
import { startFakeOpenStack, type FakeOpenStack } from './testing/fake-openstack.js';

bootPoll.ms = 5;
fixedAddressProbe.ms = 50;
const quiet = { info: () => undefined, warn: () => undefined };
const auth = (os: FakeOpenStack) => ({ auth_url: `${os.cloud.url}/5000`, username: 'admin', user_domain_name: 'Default', project_name: 'admin', project_domain_name: 'Default' });
const context = (os: FakeOpenStack, settings: Record<string, unknown> = {}, password = 'secret-pw'): ProviderContext => ({
  dataDir: '/nonexistent', providerName: 'os1', settings: { auth: auth(os), network: 'private', rateLimit: { requestsPerSecond: 1000, concurrency: 16 }, ...settings }, credentials: { password }, publicKey: 'ssh-ed25519 AAAAC3Nza formwork', log: quiet,
});
/** TCP/22 answers on floating IPs of servers not marked unreachable: the fake's servers have no sockets. */
function probeFor(os: FakeOpenStack, unreachable: Set<string>) {
  return async (host: string) => {
    const fip = [...os.state.floatingIps.values()].find((f) => f.floating_ip_address === host && f.port_id);
    const server = fip && os.state.ports.get(String(fip.port_id))?.device_id;
    if (!server || unreachable.has(String(server))) throw new Error(`${host}: connection refused`);
  };
}

let contractCloud: FakeOpenStack | undefined;
const brokenAfter = new Set<string>();
let breakFrom: Set<string> | undefined;
runProviderContract(
  'openstack (fake cloud)',
  async () => {
    contractCloud = await startFakeOpenStack();
    // The suite's specs carry provider tag "contract": the provider is named so.
    return { driver, ctx: { ...context(contractCloud), providerName: 'contract' } };
  },
  {
    probe: async (_s, host) => {
      const os = contractCloud!;
      if (breakFrom) for (const id of os.state.servers.keys()) if (!breakFrom.has(id)) brokenAfter.add(id);
      return probeFor(os, brokenAfter)(host);
    },
    breakReadiness: () => void (breakFrom = new Set(contractCloud!.state.servers.keys())),
    cleanup: async () => contractCloud?.close(),
  },
);

describe('openstack driver', () => {
  let os: FakeOpenStack;
  const realProbe = readinessProbe.tcp;
  const spec = (nodeId: string, over: Partial<MachineSpec> = {}): MachineSpec => ({ name: `web-${nodeId}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('os1', nodeId), size: 'small', image: 'debian-12', ...over });
  beforeEach(async () => {
    os = await startFakeOpenStack();
    readinessProbe.tcp = probeFor(os, new Set());
  });
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    forgetConnections();
    await os.close();
  });
  afterAll(() => void (cloudConfigLocations.get = () => ({})));

  it('checks its settings at apply: a cloud or an auth block, no secret inline, no unknown setting', () => {
    expect(providerProblems({ type: 'openstack', settings: { network: 'x' } })).toEqual([{ path: '/settings', message: 'openstack settings need one of: cloud, or auth' }]);
    expect(providerProblems({ type: 'openstack', settings: { cloud: 'prod', region: 'r1', network: 'private', reuseFloatingIps: true, sizes: { small: 'm1.small' } } })).toEqual([]);
    const secret = providerProblems({ type: 'openstack', settings: { auth: { auth_url: 'https://k/v3', password: 'pw' } } });
    expect(secret.map((p) => p.path)).toContain('/settings/auth/password');
    expect(providerProblems({ type: 'openstack', settings: { cloud: 'prod', flavor: 'x' } })[0].message).toContain('unknown openstack setting "flavor"');
  });

  it('refuses at prepare, naming what to fix: a wrong password, an unknown cloud, an unknown region, several networks and none chosen', async () => {
    await expect(driver.prepare!(context(os, {}, 'wrong'))).rejects.toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringMatching(/refused user admin: fix the provider's credentialsSecret \(password\)/) });
    const dir = await mkdtemp(join(tmpdir(), 'fw-os-driver-'));
    try {
      await writeFile(join(dir, 'clouds.yaml'), `clouds:\n  fake:\n    auth:\n      auth_url: ${os.cloud.url}/5000\n      username: admin\n      password: secret-pw\n      user_domain_name: Default\n      project_name: admin\n      project_domain_name: Default\n`);
      cloudConfigLocations.get = () => ({ env: { OS_CLIENT_CONFIG_FILE: join(dir, 'clouds.yaml') }, cwd: dir, home: dir, systemDir: dir });
      const cloudCtx = (settings: Record<string, unknown>) => ({ ...context(os), settings, credentials: {} });
      await expect(driver.prepare!(cloudCtx({ cloud: 'nope' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('has no cloud "nope"; its clouds are: fake') });
      await expect(driver.prepare!(cloudCtx({ cloud: 'fake', region: 'moon-1', network: 'private' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('region "moon-1" has no compute endpoint; the cloud\'s regions are: regionOne') });
      await expect(driver.prepare!(cloudCtx({ cloud: 'fake' }))).rejects.toMatchObject({ message: expect.stringMatching(/sees 2 networks to boot on: private \(net-private\), isolated \(net-isolated\); name one in settings.network/) });
      await driver.prepare!(cloudCtx({ cloud: 'fake', network: 'private' }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prepares a keypair and one tagged security group allowing TCP/22, and tears them down', async () => {
    const ctx = context(os);
    await driver.prepare!(ctx);
    await driver.prepare!(ctx);
    expect([...os.state.keypairs.keys()]).toEqual(['formwork-os1']);
    const groups = [...os.state.securityGroups.values()];
    expect(groups).toHaveLength(1);
    expect(groups[0].tags).toEqual(['formwork.io/managed-by=formwork', 'formwork.io/provider=os1']);
    expect(groups[0].security_group_rules).toEqual(expect.arrayContaining([expect.objectContaining({ protocol: 'tcp', port_range_min: 22, direction: 'ingress', ethertype: 'IPv4' })]));
    await driver.teardown!(ctx);
    expect(os.state.keypairs.size + os.state.securityGroups.size).toBe(0);
  });

  it('boots on the named network with metadata Nova accepts, records its decisions, and a retried create returns the same server', async () => {
    os.bootReads = 3;
    const ctx = context(os);
    const m = await driver.createMachine(spec('n1'), ctx);
    expect(m.state).toBe('booting');
    const [server] = os.state.servers.values();
    const sent = os.cloud.requests.find((r) => r.method === 'POST' && r.path.endsWith('/servers'))!.body as { server: Record<string, unknown> };
    expect(sent.server.networks).toEqual([{ uuid: 'net-private' }]);
    expect(sent.server.flavorRef).toBe('3'); // m1.medium: the smallest with 2 CPUs and 2 GiB
    expect(sent.server.key_name).toBe('formwork-os1');
    for (const k of Object.keys(sent.server.metadata as object)) expect(k).not.toContain('/');
    expect(m.loginUsers[0]).toBe('debian');
    expect(m.decisions).toEqual(expect.arrayContaining([
      { subject: 'network', chosen: 'net-private', reason: 'settings.network "private"' },
      expect.objectContaining({ subject: 'login-users', reason: 'image property os_admin_user of img-debian-12' }),
    ]));
    expect((await driver.createMachine(spec('n1'), ctx)).nativeId).toBe(server.id);
    expect(os.state.servers.size).toBe(1);
    const running = await awaitReadiness(driver, m, ctx, { waitSeconds: 5, log: () => undefined });
    expect(running.state).toBe('running');
    const pub = running.addresses.find((a) => a.role === 'public')!;
    expect(pub.reason).toMatch(/^floating IP fip-\d+ on external network public, attached to port port-\d+; TCP\/22 answered from the control plane$/);
    expect(running.addresses.find((a) => a.role === 'private')?.reason).toMatch(/router router1 connects it to external network public/);
    expect(running.decisions?.find((d) => d.subject === 'external-network')?.reason).toMatch(/router:external, and router router1 connects subnet sub-private to it/);
    const [fip] = os.state.floatingIps.values();
    expect(fip.tags).toEqual(['formwork.io/managed-by=formwork', 'formwork.io/provider=os1', 'formwork.io/node-id=n1']);
    await driver.undoReachable!(running, ctx);
    await driver.deleteMachine(m.nativeId, ctx);
    expect(os.state.floatingIps.size + os.state.servers.size + os.state.ports.size).toBe(1); // the router's interface only
  });

  it('maps ERROR with its fault, and ACTIVE without an address, to error', async () => {
    os.bootReads = 0;
    os.failNextBoot('No valid host was found.');
    const failed = await driver.createMachine(spec('n2'), context(os));
    expect(failed).toMatchObject({ state: 'error', inventory: { fault: 'No valid host was found.' } });
    os.noAddressNextBoot();
    const bare = await driver.createMachine(spec('n3'), context(os));
    expect(bare).toMatchObject({ state: 'error', inventory: { fault: expect.stringContaining('ACTIVE with no address') } });
  });

  it('refuses a floating IP, before allocating one, when no router connects the subnet to the external network', async () => {
    const ctx = context(os, { network: 'isolated' });
    const m = await driver.createMachine(spec('n4'), ctx);
    await expect(driver.makeReachable!(m, ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', retryable: true, message: expect.stringMatching(/no router connects subnet sub-isolated to external network public.*did not answer TCP\/22 either/) });
    expect(os.cloud.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/floatingips'))).toEqual([]);
  });

  it('with no router to the external network, a fixed address that answers TCP/22 needs no floating IP (the "private" network that is public)', async () => {
    const ctx = context(os, { network: 'isolated' });
    const m = await driver.createMachine(spec('n5'), ctx);
    const fixed = ([...os.state.ports.values()].find((p) => p.device_id === m.nativeId)!.fixed_ips as { ip_address: string }[])[0].ip_address;
    readinessProbe.tcp = async (host: string) => {
      if (host !== fixed) throw new Error(`${host}: connection refused`);
    };
    const reachable = await driver.makeReachable!(m, ctx);
    expect(reachable.decisions?.find((d) => d.subject === 'floating-ip')).toMatchObject({ chosen: 'none', reason: expect.stringMatching(new RegExp(`not needed: ${fixed.replaceAll('.', '\\.')} answered TCP/22 from the control plane \\(no router connects subnet sub-isolated`)) });
    expect(reachable.addresses).toEqual(expect.arrayContaining([expect.objectContaining({ address: fixed, role: 'private' }), expect.objectContaining({ address: fixed, role: 'public', reason: expect.stringContaining('TCP/22 answered') })]));
    expect(os.cloud.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/floatingips'))).toEqual([]);
  });

  it('floating_ip_source None: the fixed address is public once it answers TCP/22, and is waited for until then', async () => {
    const connectSettings = context(os);
    const m = await driver.createMachine(spec('n6'), connectSettings);
    const fixed = m.addresses[0].address;
    const { connect } = await import('./connect.js');
    (await connect(connectSettings)).config.floatingIpSource = 'None'; // as a profile saying so resolves
    readinessProbe.tcp = async (host: string) => {
      throw new Error(`${host}: connection refused`);
    };
    await expect(driver.makeReachable!(m, connectSettings)).rejects.toMatchObject({ code: 'MACHINE_FAILED', retryable: true, message: expect.stringContaining('floating_ip_source is None') });
    readinessProbe.tcp = async () => undefined;
    const reachable = await driver.makeReachable!(m, connectSettings);
    expect(reachable.decisions?.find((d) => d.subject === 'floating-ip')).toMatchObject({ chosen: 'none', reason: expect.stringContaining(`${fixed} answered TCP/22`) });
    expect(reachable.addresses).toEqual(expect.arrayContaining([expect.objectContaining({ address: fixed, role: 'public' })]));
  });

  it('never takes an unattached floating IP it did not make, unless reuseFloatingIps; one taken is given back by detaching it', async () => {
    os.state.floatingIps.set('fip-foreign', { id: 'fip-foreign', floating_ip_address: '198.18.0.200', floating_network_id: 'net-public', port_id: null, fixed_ip_address: null, status: 'DOWN', tags: [] });
    const ctx = context(os);
    const m = await driver.makeReachable!(await driver.createMachine(spec('n5'), ctx), ctx);
    expect(m.addresses.map((a) => a.address)).not.toContain('198.18.0.200');
    await driver.undoReachable!(m, ctx);
    const reuse = context(os, { reuseFloatingIps: true });
    forgetConnections();
    const taken = await driver.makeReachable!(m, reuse);
    expect(taken.addresses.find((a) => a.role === 'public')?.address).toBe('198.18.0.200');
    await driver.undoReachable!(taken, reuse);
    expect(os.state.floatingIps.get('fip-foreign')).toMatchObject({ port_id: null, tags: [] });
  });

  it('lists networks with the evidence of what each is', async () => {
    const nets = await driver.listNetworks!(context(os));
    expect(nets.find((n) => n.name === 'public')).toMatchObject({ flags: { external: true }, evidence: ['router:external=true', 'gateway of router router1'] });
    expect(nets.find((n) => n.name === 'isolated')).toMatchObject({ flags: {}, evidence: [] });
  });

  it('lists what it owns and deletes an orphan of each kind', async () => {
    const ctx = context(os);
    await driver.prepare!(ctx);
    const m = await driver.makeReachable!(await driver.createMachine(spec('n6'), ctx), ctx);
    const owned = await driver.listOwned!(ctx);
    expect(owned.map((r) => r.kind).sort()).toEqual(['address', 'key-pair', 'machine', 'security-group']);
    for (const r of owned.filter((x) => x.tags['formwork.io/node-id'] === 'n6')) await driver.deleteOwned!(r, ctx);
    expect(os.state.servers.size + os.state.floatingIps.size).toBe(0);
    expect(m.nativeId).toMatch(/^srv-/);
  });
});
