import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeCloud, fixture, type FakeCloud } from '../testing/fake-cloud.js';
import { imageProperties, type GlanceImage } from './glance.js';
import { createOpenStackClient, type OpenStackClient } from './index.js';
import { hasMetadata, NOVA_METADATA_KEY_CHARS, novaMetadataKey } from './nova.js';

let cloud: FakeCloud;
let client: OpenStackClient;
beforeEach(async () => {
  cloud = await startFakeCloud();
  client = createOpenStackClient({ auth: cloud.passwordAuth() });
});
afterEach(async () => {
  await cloud.close();
});

const sent = (method: string, path: string) => cloud.requests.filter((r) => r.method === method && r.path === path);

describe('Nova', () => {
  it('creates a server with networks, keypair, base64 user data and metadata', async () => {
    cloud.on('POST', '/8774/v2.1/servers', () => ({ status: 202, body: fixture('libcloud/openstack_v1.1/_servers_create.json') }));
    const created = await client.compute.createServer({ name: 'web-1', imageRef: 'img', flavorRef: 'fl', networks: [{ uuid: 'net-1' }], keyName: 'formwork-n1', userData: '#cloud-config\n', metadata: { 'formwork.io/node-id': 'n1' }, securityGroups: ['formwork-ssh'] });
    expect(created.id).toBe(fixture<{ server: { id: string } }>('libcloud/openstack_v1.1/_servers_create.json').server.id);
    expect(sent('POST', '/8774/v2.1/servers')[0].body).toEqual({
      server: { name: 'web-1', imageRef: 'img', flavorRef: 'fl', networks: [{ uuid: 'net-1' }], key_name: 'formwork-n1', user_data: Buffer.from('#cloud-config\n').toString('base64'), metadata: { 'formwork.io:node-id': 'n1' }, security_groups: [{ name: 'formwork-ssh' }] },
    });
  });

  it("spells metadata keys as Nova accepts them (a real Nova refuses '/'), and refuses lengths Nova would refuse before sending", async () => {
    expect(novaMetadataKey('formwork.io/node-id')).toBe('formwork.io:node-id');
    expect(novaMetadataKey('ok-key_1:a.b c')).toBe('ok-key_1:a.b c');
    expect(NOVA_METADATA_KEY_CHARS.test(novaMetadataKey('a/b,c=d'))).toBe(true);
    expect(hasMetadata({ 'formwork.io:node-id': 'n1' }, { 'formwork.io/node-id': 'n1' })).toBe(true);
    expect(hasMetadata({ 'formwork.io:node-id': 'n2' }, { 'formwork.io/node-id': 'n1' })).toBe(false);
    const base = { name: 'web-1', flavorRef: 'fl', networks: [{ uuid: 'net-1' }] };
    await expect(client.compute.createServer({ ...base, metadata: { k: 'v'.repeat(256) } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('at most 255') });
    await expect(client.compute.createServer({ ...base, metadata: { ['k'.repeat(256)]: 'v' } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID' });
    expect(sent('POST', '/8774/v2.1/servers')).toEqual([]);
  });

  it('reads servers (boot-from-volume ones have no image), deletes them, lists flavors and keypairs', async () => {
    cloud.on('GET', '/8774/v2.1/servers/s1', () => ({ body: fixture('jclouds/openstack-nova/server_details_without_image.json') }));
    cloud.on('DELETE', '/8774/v2.1/servers/s1', () => ({ status: 204 }));
    cloud.on('GET', '/8774/v2.1/flavors/detail', () => ({ body: fixture('jclouds/openstack-nova/flavor_list_detail.json') }));
    cloud.on('GET', '/8774/v2.1/os-keypairs', () => ({ body: fixture('libcloud/openstack_v1.1/_os_keypairs.json') }));
    cloud.on('POST', '/8774/v2.1/os-keypairs', () => ({ body: fixture('libcloud/openstack_v1.1/_os_keypairs_create_import.json') }));
    const server = await client.compute.getServer('s1');
    expect(server?.image === '' || typeof server?.image === 'object').toBe(true);
    expect(await client.compute.deleteServer('s1')).toBe(true);
    expect((await client.compute.listFlavors()).length).toBe(6);
    expect(sent('GET', '/8774/v2.1/flavors/detail')[0].query.get('is_public')).toBe('None');
    expect((await client.compute.listKeypairs()).map((k) => k.name)).toEqual(['key1', 'key2']);
    await client.compute.createKeypair('key3', 'ssh-ed25519 AAAA test');
    expect(sent('POST', '/8774/v2.1/os-keypairs')[0].body).toEqual({ keypair: { name: 'key3', public_key: 'ssh-ed25519 AAAA test' } });
  });
});

describe('Neutron', () => {
  it('creates a floating IP on its port in one call, then tags it', async () => {
    cloud.on('POST', '/9696/v2.0/floatingips', () => ({ status: 201, body: fixture('libcloud/openstack_v1.1/_v2_0__floatingip.json') }));
    const id = fixture<{ floatingip: { id: string } }>('libcloud/openstack_v1.1/_v2_0__floatingip.json').floatingip.id;
    cloud.on('PUT', `/9696/v2.0/floatingips/${id}/tags`, (req) => ({ body: req.body }));
    const fip = await client.network.createFloatingIp({ floatingNetworkId: 'ext', portId: 'p1', description: 'formwork node n1', tags: ['formwork.io/node-id=n1'] });
    expect(fip.tags).toEqual(['formwork.io/node-id=n1']);
    expect(sent('POST', '/9696/v2.0/floatingips')[0].body).toEqual({ floatingip: { floating_network_id: 'ext', port_id: 'p1', description: 'formwork node n1' } });
    expect(sent('PUT', `/9696/v2.0/floatingips/${id}/tags`)[0].body).toEqual({ tags: ['formwork.io/node-id=n1'] });
  });

  it('releases a floating IP it could not tag, and reports the tagging error', async () => {
    cloud.on('POST', '/9696/v2.0/floatingips', () => ({ status: 201, body: { floatingip: { id: 'f1', floating_ip_address: '203.0.113.5' } } }));
    cloud.on('PUT', '/9696/v2.0/floatingips/f1/tags', () => ({ status: 400, body: { NeutronError: { type: 'InvalidInput', message: 'Invalid input for tags.', detail: '' } } }));
    cloud.on('DELETE', '/9696/v2.0/floatingips/f1', () => ({ status: 204 }));
    await expect(client.network.createFloatingIp({ floatingNetworkId: 'ext', portId: 'p1', tags: ['bad,tag'] })).rejects.toMatchObject({ code: 'PROVIDER_INVALID' });
    expect(sent('DELETE', '/9696/v2.0/floatingips/f1')).toHaveLength(1);
  });

  it('lists networks, subnets, routers and security groups with server-side filters', async () => {
    cloud.on('GET', '/9696/v2.0/networks', () => ({ body: fixture('libcloud/openstack_v1.1/_v2_0__networks.json') }));
    cloud.on('GET', '/9696/v2.0/subnets', () => ({ body: fixture('libcloud/openstack_v1.1/_v2_0__subnets.json') }));
    cloud.on('GET', '/9696/v2.0/routers', () => ({ body: fixture('libcloud/openstack_v1.1/_v2_0__routers.json') }));
    cloud.on('GET', '/9696/v2.0/security-groups', () => ({ body: fixture('libcloud/openstack_v1.1/_v2_0__security_groups.json') }));
    expect((await client.network.listNetworks({ 'router:external': true })).length).toBe(2);
    expect(sent('GET', '/9696/v2.0/networks')[0].query.get('router:external')).toBe('true');
    expect((await client.network.listSubnets({ network_id: 'n1' })).length).toBe(2);
    expect((await client.network.listRouters()).every((r) => 'external_gateway_info' in r)).toBe(true);
    expect((await client.network.listSecurityGroups()).length).toBe(2);
  });

  it('reads a cloud without L3 (Neutron answers 404 for the routers and floatingips collections) as having none', async () => {
    const noExtension = () => ({ status: 404, body: { NeutronError: { type: 'HTTPNotFound', message: 'The resource could not be found.', detail: '' } } });
    cloud.on('GET', '/9696/v2.0/routers', noExtension);
    cloud.on('GET', '/9696/v2.0/floatingips', noExtension);
    expect(await client.network.listRouters()).toEqual([]);
    expect(await client.network.listFloatingIps({ tags: 'formwork.io/provider=p' })).toEqual([]);
  });
});

describe('Glance', () => {
  it('lists images and separates their properties from their fields', async () => {
    cloud.on('GET', '/9292/v2/images', () => ({ body: fixture('libcloud/openstack_v1.1/_images_v2_page2.json') }));
    const [image] = await client.image.listImages({ status: 'active' });
    expect(sent('GET', '/9292/v2/images')[0].query.get('status')).toBe('active');
    const props = imageProperties(image);
    expect(props).not.toHaveProperty('id');
    expect(props).not.toHaveProperty('status');
    expect(imageProperties({ id: 'i', name: 'Debian 12', status: 'active', os_distro: 'debian', os_version: '12', os_admin_user: 'debian' } as GlanceImage)).toEqual({ os_distro: 'debian', os_version: '12', os_admin_user: 'debian' });
  });
});
