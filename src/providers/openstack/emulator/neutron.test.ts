import { afterEach, describe, expect, it } from 'vitest';
import { emulate, until, type Emulated } from '../testing/emulated.js';

let e: Emulated;
afterEach(async () => {
  await e?.emu.close();
});

async function boot(networkName: string, name = 'web-1') {
  const { client } = e;
  const net = (await client.network.listNetworks({ name: networkName }))[0];
  const { id } = await client.compute.createServer({ name, imageRef: e.emu.scenario.images[0].id, flavorRef: e.emu.scenario.flavors[0].id, networks: [{ uuid: net.id }] });
  await until(() => client.compute.getServer(id), (s) => s?.status === 'ACTIVE');
  const port = (await client.network.listPorts({ device_id: id }))[0];
  return { id, port, fixed: port.fixed_ips[0].ip_address };
}

const external = async (name: string) => (await e.client.network.listNetworks({ name, 'router:external': true }))[0];

describe('floating IPs', () => {
  it('attach in one call to a routed port: the host becomes reachable on it, and the server shows it as floating', async () => {
    e = await emulate('floating-ip-required');
    const { id, port, fixed } = await boot('private');
    expect(e.backend.reachable(fixed)).toBe(false);
    const fip = await e.client.network.createFloatingIp({ floatingNetworkId: (await external('public')).id, portId: port.id, tags: ['formwork.io/node-id=web-1'] });
    expect(fip).toMatchObject({ port_id: port.id, fixed_ip_address: fixed, status: 'ACTIVE' });
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(true);
    expect((await e.client.network.listFloatingIps({ tags: 'formwork.io/node-id=web-1' })).map((f) => f.id)).toEqual([fip.id]);
    expect((await e.client.network.listFloatingIps({ tags: 'formwork.io/node-id=other' }))).toEqual([]);
    const server = await e.client.compute.getServer(id);
    expect(server?.addresses.private.map((a) => a['OS-EXT-IPS:type'])).toEqual(['fixed', 'floating']);
    expect(await e.client.network.deleteFloatingIp(fip.id)).toBe(true);
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(false);
    expect(await e.client.network.getFloatingIp(fip.id)).toBeUndefined();
  });

  it("refuses as Neutron does: no router to that external network (404), a second one on the fixed IP (409), a network that is not external (400) — and allocates nothing then", async () => {
    e = await emulate('several-externals');
    const { port } = await boot('private');
    await expect(e.client.network.createFloatingIp({ floatingNetworkId: (await external('ext-unrouted')).id, portId: port.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      details: expect.objectContaining({ cloudType: 'ExternalGatewayForFloatingIPNotFound', cloudMessage: expect.stringContaining('is not reachable from subnet') }),
    });
    expect(await e.client.network.listFloatingIps()).toEqual([]);
    const routed = (await external('ext-routed')).id;
    await e.client.network.createFloatingIp({ floatingNetworkId: routed, portId: port.id });
    await expect(e.client.network.createFloatingIp({ floatingNetworkId: routed, portId: port.id })).rejects.toMatchObject({ code: 'CONFLICT', details: expect.objectContaining({ cloudType: 'FloatingIPPortAlreadyAssociated' }) });
    expect(await e.client.network.listSubnets({ network_id: routed })).toEqual([]); // the operator's, as on a real cloud
    const tenant = (await e.client.network.listNetworks({ name: 'private' }))[0].id;
    await expect(e.client.network.createFloatingIp({ floatingNetworkId: tenant })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('is not a valid external network') });
    expect(await e.client.network.listFloatingIps()).toHaveLength(1);
  });

  it('moves with PUT port_id, and a deleted server leaves its floating IP allocated but detached', async () => {
    e = await emulate('floating-ip-required');
    const { id, port } = await boot('private');
    const fip = await e.client.network.createFloatingIp({ floatingNetworkId: (await external('public')).id });
    expect(fip.status).toBe('DOWN');
    await e.client.session.request('network', 'PUT', `/floatingips/${fip.id}`, { body: { floatingip: { port_id: port.id } } });
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(true);
    await e.client.compute.deleteServer(id);
    await until(() => e.client.compute.getServer(id), (s) => s === undefined);
    expect(await e.client.network.getFloatingIp(fip.id)).toMatchObject({ port_id: null, status: 'DOWN' });
  });
});

describe("a project's own network", () => {
  it('routes through a router the project makes: no floating IP before the interface, one after', async () => {
    e = await emulate('floating-ip-required');
    const s = e.client.session;
    const net = (await s.request('network', 'POST', '/networks', { body: { network: { name: 'mine' } } })).body as { network: { id: string } };
    const subnet = (await s.request('network', 'POST', '/subnets', { body: { subnet: { network_id: net.network.id, cidr: '10.99.0.0/24', ip_version: 4 } } })).body as { subnet: { id: string; gateway_ip: string } };
    expect(subnet.subnet.gateway_ip).toBe('10.99.0.1');
    const { port } = await boot('mine');
    const ext = await external('public');
    await expect(e.client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id })).rejects.toMatchObject({ details: expect.objectContaining({ cloudType: 'ExternalGatewayForFloatingIPNotFound' }) });
    const router = (await s.request('network', 'POST', '/routers', { body: { router: { name: 'r', external_gateway_info: { network_id: ext.id } } } })).body as { router: { id: string } };
    await s.request('network', 'PUT', `/routers/${router.router.id}/add_router_interface`, { body: { subnet_id: subnet.subnet.id } });
    const fip = await e.client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id });
    expect(e.backend.reachable(fip.floating_ip_address)).toBe(true);
    await expect(s.request('network', 'POST', '/networks', { body: { network: { name: 'x', 'router:external': true } } })).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
  });
});

describe('deletes out of order', () => {
  it('refuses a network with ports (NetworkInUse), a router with interfaces (RouterInUse), a router interface through the port API', async () => {
    e = await emulate('floating-ip-required');
    const { id } = await boot('private');
    const net = (await e.client.network.listNetworks({ name: 'private' }))[0];
    await expect(e.client.session.request('network', 'DELETE', `/networks/${net.id}`)).rejects.toMatchObject({ code: 'CONFLICT', details: expect.objectContaining({ cloudType: 'NetworkInUse' }) });
    const router = (await e.client.network.listRouters())[0];
    expect(router.external_gateway_info?.network_id).toBe((await external('public')).id);
    await expect(e.client.session.request('network', 'DELETE', `/routers/${router.id}`)).rejects.toMatchObject({ code: 'CONFLICT', details: expect.objectContaining({ cloudType: 'RouterInUse' }) });
    const iface = (await e.client.network.listPorts({ device_owner: 'network:router_interface' }))[0];
    await expect(e.client.network.deletePort(iface.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    await e.client.compute.deleteServer(id);
    await until(() => e.client.compute.getServer(id), (s) => s === undefined);
    await e.client.session.request('network', 'PUT', `/routers/${router.id}/remove_router_interface`, { body: { subnet_id: net.subnets[0] } });
    await e.client.session.request('network', 'DELETE', `/routers/${router.id}`);
    await e.client.session.request('network', 'DELETE', `/networks/${net.id}`);
    expect(await e.client.network.getNetwork(net.id)).toBeUndefined();
  });

  it('keeps security groups: the default one cannot go, rules are not duplicated', async () => {
    e = await emulate('floating-ip-required');
    const sg = await e.client.network.createSecurityGroup('formwork-ssh', 'SSH');
    const rule = { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0', ethertype: 'IPv4' };
    await e.client.network.createSecurityGroupRule(rule);
    await expect(e.client.network.createSecurityGroupRule(rule)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await e.client.network.listSecurityGroups({ name: 'formwork-ssh' }))[0].security_group_rules).toHaveLength(1);
    const def = (await e.client.network.listSecurityGroups({ name: 'default' }))[0];
    await expect(e.client.network.deleteSecurityGroup(def.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await e.client.network.deleteSecurityGroup(sg.id)).toBe(true);
  });
});
