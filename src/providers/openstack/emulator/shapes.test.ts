import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../testing/fake-cloud.js';
import { emulate, until, type Emulated } from '../testing/emulated.js';

/** The emulator's documents carry every field the recorded responses of real clouds have (their values are the emulator's own). */
let e: Emulated;
const docs: Record<string, Record<string, unknown>> = {};
beforeAll(async () => {
  e = await emulate('floating-ip-required');
  const { client, emu } = e;
  const net = (await client.network.listNetworks({ name: 'private' }))[0];
  const { id } = await client.compute.createServer({ name: 'shape', imageRef: emu.scenario.images[0].id, flavorRef: '1', networks: [{ uuid: net.id }] });
  docs.server = (await until(() => client.compute.getServer(id), (s) => s?.status === 'ACTIVE'))!;
  const port = (await client.network.listPorts({ device_id: id }))[0];
  docs.port = port;
  const ext = (await client.network.listNetworks({ 'router:external': true }))[0];
  docs.floatingip = await client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id });
  docs.network = net;
  docs.subnet = (await client.network.listSubnets({ network_id: net.id }))[0];
  docs.router = (await client.network.listRouters())[0];
  docs.flavor = (await client.compute.listFlavors())[0];
  docs.image = (await client.image.listImages())[0];
});
afterAll(async () => {
  await e?.emu.close();
});

const keysOf = (o: Record<string, unknown>) => Object.keys(o).sort();
const first = (path: string, key: string) => (fixture(path)[key] as Record<string, unknown>[])[0];

describe('document shapes against the recorded fixtures', () => {
  it.each([
    ['network', () => first('libcloud/openstack_v1.1/_v2_0__networks.json', 'networks'), []],
    ['subnet', () => first('libcloud/openstack_v1.1/_v2_0__subnets.json', 'subnets'), []],
    ['router', () => first('libcloud/openstack_v1.1/_v2_0__routers.json', 'routers'), []],
    ['port', () => first('libcloud/openstack_v1.1/_ports_v2.json', 'ports'), []],
    ['floatingip', () => fixture('libcloud/openstack_v1.1/_v2_0__floatingip.json').floatingip as Record<string, unknown>, []],
    ['server', () => first('jclouds/openstack-nova/server_list_details.json', 'servers'), []],
    ['server', () => first('libcloud/openstack_v1.1/_servers_detail.json', 'servers'), ['uuid', 'fault']],
    // jclouds' flavors are from a Rackspace-era Nova: rxtx_cap/rxtx_quota are gone from today's.
    ['flavor', () => first('jclouds/openstack-nova/flavor_list_detail.json', 'flavors'), ['rxtx_cap', 'rxtx_quota']],
    // libcloud's image is a snapshot with its cloud's own properties; Glance's own fields must all be there.
    ['image', () => first('libcloud/openstack_v1.1/_images_v2.json', 'images'), ['base_image_ref', 'direct_url', 'image_location', 'image_state', 'image_type', 'instance_uuid', 'kernel_id', 'locations', 'os_distro', 'os_type', 'owner_id', 'ramdisk_id', 'user_id']],
  ] as const)('%s', (name, recorded, notExpected) => {
    const missing = keysOf(recorded()).filter((k) => !(k in docs[name]) && !(notExpected as readonly string[]).includes(k));
    expect(missing).toEqual([]);
  });
});
