import { afterEach, describe, expect, it } from 'vitest';
import { imageProperties } from '../client/glance.js';
import { profileScenario, scenarioNamed, SCENARIOS } from './scenarios.js';
import { emulate, until, type Emulated } from '../testing/emulated.js';

let e: Emulated;
afterEach(async () => {
  await e?.emu.close();
});

async function boot(networkName: string, name = 'web-1') {
  const { client } = e;
  const net = (await client.network.listNetworks({ name: networkName }))[0];
  const { id } = await client.compute.createServer({ name, imageRef: e.emu.scenario.images[0].id, flavorRef: e.emu.scenario.flavors[0].id, networks: [{ uuid: net.id }] });
  const server = await until(() => client.compute.getServer(id), (s) => s?.status === 'ACTIVE' || s?.status === 'ERROR');
  const ports = await client.network.listPorts({ device_id: id });
  return { id, server: server!, fixed: ports[0]?.fixed_ips[0].ip_address };
}

describe('scenarios', () => {
  it('floating-ip-required: the tenant network is not reachable; a floating IP from "public" is', async () => {
    e = await emulate('floating-ip-required');
    const { fixed } = await boot('private');
    expect(e.backend.reachable(fixed)).toBe(false);
    const port = (await e.client.network.listPorts({ device_owner: 'compute:nova' }))[0];
    const ext = (await e.client.network.listNetworks({ 'router:external': true }))[0];
    const fip = await e.client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id });
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(true);
  });

  it('naming-chaos: no m1.* flavors nor image names to go by; images are found by properties', async () => {
    e = await emulate('naming-chaos');
    const flavors = await e.client.compute.listFlavors();
    expect(flavors.map((f) => f.name)).toEqual(['c1.w1a-STD_1x2', ' GP.Medium ', 'highmem-Ⅱ/8']);
    const debian12 = await e.client.image.listImages({ os_distro: 'debian', os_version: '12' });
    expect(debian12.map((i) => i.name)).toEqual(['img-2026-11-07T0311Z-golden']);
    expect(imageProperties(debian12[0]).os_admin_user).toBe('debian');
    expect((await e.client.network.listNetworks()).map((n) => n.name)).toEqual(['ten-7f3c_int', 'net_ext_PROD-01']);
  });

  it('private-is-public: "private" is reachable on its fixed address, "public" is not, "external" refuses floating IPs', async () => {
    e = await emulate('private-is-public');
    const onPrivate = await boot('private', 'a');
    expect(e.backend.reachable(onPrivate.fixed)).toBe(true);
    expect(onPrivate.server.addresses.private[0]['OS-EXT-IPS:type']).toBe('fixed');
    const onPublic = await boot('public', 'b');
    expect(e.backend.reachable(onPublic.fixed)).toBe(false);
    const port = (await e.client.network.listPorts({ device_id: onPublic.id }))[0];
    const ext = (await e.client.network.listNetworks({ name: 'external' }))[0];
    expect(ext['router:external']).toBe(true);
    await expect(e.client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id })).rejects.toMatchObject({ details: expect.objectContaining({ cloudType: 'ExternalGatewayForFloatingIPNotFound' }) });
  });

  it('login-user: the image does not say who logs in, and the host lets only "debian" in', async () => {
    e = await emulate('login-user');
    const [image] = await e.client.image.listImages();
    expect(imageProperties(image)).toMatchObject({ os_distro: 'debian', os_version: '12' });
    expect(imageProperties(image).os_admin_user).toBeUndefined();
    await boot('private');
    expect([...e.backend.hosts.values()][0].request.onlyLoginUser).toBe('debian');
  });

  it('no-metadata: no router:external, no routers nor floating IPs, no OS-EXT-IPS:type; only a probe tells net-b is reachable', async () => {
    e = await emulate('no-metadata');
    expect((await e.client.network.listNetworks()).map((n) => n['router:external'])).toEqual([false, false]);
    expect(await e.client.network.listRouters()).toEqual([]); // Neutron's 404 for an extension it has not loaded, read by the client as none
    const a = await boot('net-a', 'a');
    const b = await boot('net-b', 'b');
    expect(a.server.addresses['net-a'][0]).toEqual({ version: 4, addr: a.fixed });
    expect([e.backend.reachable(a.fixed), e.backend.reachable(b.fixed)]).toEqual([false, true]);
  });

  it('half-provisioned: hosts are made with post-provisioning undone', async () => {
    e = await emulate('half-provisioned');
    await boot('private');
    expect([...e.backend.hosts.values()][0].request.halfProvisioned).toBe(true);
  });

  it('late-error: the first boot stays BUILD, then goes ERROR with a fault and no host; the next boot works', async () => {
    e = await emulate({ ...scenarioNamed('late-error'), lateErrorMs: 60 });
    const net = (await e.client.network.listNetworks({ name: 'private' }))[0];
    const spec = { name: 'x', imageRef: e.emu.scenario.images[0].id, flavorRef: '1', networks: [{ uuid: net.id }] };
    const { id } = await e.client.compute.createServer(spec);
    expect((await e.client.compute.getServer(id))?.status).toBe('BUILD');
    const failed = await until(() => e.client.compute.getServer(id), (s) => s?.status === 'ERROR');
    expect(failed?.fault).toMatchObject({ code: 500, message: expect.stringContaining('No valid host was found') });
    expect(e.backend.hosts.size).toBe(0);
    await e.client.compute.deleteServer(id);
    const again = await e.client.compute.createServer(spec);
    expect((await until(() => e.client.compute.getServer(again.id), (s) => s?.status !== 'BUILD'))?.status).toBe('ACTIVE');
  });

  it('several-externals: two router:external networks, only one routed to the tenant subnet', async () => {
    e = await emulate('several-externals');
    expect((await e.client.network.listNetworks({ 'router:external': true })).map((n) => n.name)).toEqual(['ext-unrouted', 'ext-routed']);
    expect((await e.client.network.listRouters()).map((r) => r.name)).toEqual(['router-ext-routed']);
  });

  it('no-neutron-fip: Neutron has no routers nor floating IPs, and the tenant network routes externally', async () => {
    e = await emulate('no-neutron-fip');
    expect(await e.client.network.listFloatingIps()).toEqual([]); // Neutron's 404 for an extension it has not loaded, read by the client as none
    const { fixed } = await boot('public-net');
    expect(e.backend.reachable(fixed)).toBe(true);
  });

  it('has one scenario per snowflake, and refuses an unknown one naming them', () => {
    expect(Object.keys(SCENARIOS)).toEqual(['floating-ip-required', 'naming-chaos', 'private-is-public', 'login-user', 'no-metadata', 'half-provisioned', 'late-error', 'several-externals', 'no-neutron-fip']);
    expect(() => scenarioNamed('nope')).toThrow(/scenarios are: floating-ip-required, naming-chaos/);
  });
});

describe('vendor profiles', () => {
  it('requires_floating_ip (citycloud): its first region, a private tenant network and a routed pool; the clouds.yaml names the profile', async () => {
    const s = profileScenario('citycloud');
    expect(s).toMatchObject({ region: 'Buf1', profile: 'citycloud', l3: true });
    e = await emulate(s);
    expect((await e.client.network.listNetworks()).map((n) => [n.name, n['router:external']])).toEqual([['private', false], ['public', true]]);
  });

  it('floating_ip_source None (rackspace): no L3, a tenant network that routes externally', async () => {
    const s = profileScenario('rackspace');
    expect(s.l3).toBe(false);
    expect(s.networks).toEqual([expect.objectContaining({ kind: 'tenant-public' })]);
  });

  it("per-network flags (limestonenetworks): routes_externally reachable, nat_source a routed pool to the nat_destination's subnet", async () => {
    e = await emulate(profileScenario('limestonenetworks'));
    const nets = await e.client.network.listNetworks();
    expect(nets.map((n) => n.name)).toEqual(['Public Internet', 'DDoS Protected', 'Private Network (10.0.0.0/8 only)', 'Private Network (Floating Public)']);
    expect(nets.map((n) => n['router:external'])).toEqual([true, false, false, false]);
    const direct = await boot('Public Internet', 'a');
    expect(e.backend.reachable(direct.fixed)).toBe(true);
    const behind = await boot('Private Network (Floating Public)', 'b');
    const port = (await e.client.network.listPorts({ device_id: behind.id }))[0];
    const fip = await e.client.network.createFloatingIp({ floatingNetworkId: nets[0].id, portId: port.id });
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(true);
  });

  it('refuses a cloud that has shut down, and an unknown vendor', () => {
    expect(() => profileScenario('betacloud')).toThrow(/shut down/);
    expect(() => profileScenario('nope')).toThrow(/no vendor profile is named "nope"/);
  });
});
