/**
 * Formwork's OpenStack client against a real OpenStack control plane (Debian 12's packages,
 * loopback only: scripts/openstack/start.sh), so the emulator's idea of the APIs is checked
 * against the real ones: Keystone login and catalog, flavors and image properties, networks
 * and routers, floating IPs created attached in one call and Neutron's refusal when no router
 * reaches the external network, a server booted on a named network. Everything it creates
 * carries this run's tag and is deleted in afterAll, confirmed by reading back.
 *
 * Needs FORMWORK_OPENSTACK_REAL_DIR (the folder start.sh wrote, with its clouds.yaml);
 * `npm run test:e2e:openstack` starts and stops the control plane around it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormworkError } from '../../../src/core/errors.js';
import { createOpenStackClient, type OpenStackClient } from '../../../src/providers/openstack/client/index.js';
import { imageProperties } from '../../../src/providers/openstack/client/glance.js';
import type { NeutronNetwork } from '../../../src/providers/openstack/client/neutron.js';
import { loadCloudConfig, type CloudConfig } from '../../../src/providers/openstack/config/cloud-config.js';

const DIR = process.env.FORMWORK_OPENSTACK_REAL_DIR;
const CLOUDS = DIR ? join(DIR, 'clouds.yaml') : undefined;
const skip = !CLOUDS ? 'FORMWORK_OPENSTACK_REAL_DIR is not set' : !existsSync(CLOUDS) ? `${CLOUDS} does not exist` : undefined;
if (skip) console.warn(`test/e2e/openstack/real.test.ts skipped: no real OpenStack control plane (${skip}); run \`npm run test:e2e:openstack\`, which starts one`);

/** This run's mark on everything it creates: a Neutron tag and a Nova metadata value. */
const RUN = `formwork-e2e-${randomBytes(4).toString('hex')}`;
const TAG = `formwork.io/test-run=${RUN}`;

async function cloud(name: string): Promise<CloudConfig> {
  // Only DIR is searched: never the developer's own ~/.config/openstack or /etc/openstack.
  return loadCloudConfig(name, { env: { OS_CLIENT_CONFIG_FILE: CLOUDS }, cwd: DIR, home: DIR, systemDir: DIR });
}

function clientFor(config: CloudConfig): OpenStackClient {
  return createOpenStackClient({ auth: config.auth, region: config.region, interface: config.interface, endpointOverrides: config.endpointOverrides });
}

/** Polls `read` until `done` holds for what it answers, or fails naming the last answer. */
async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function rejection(p: Promise<unknown>): Promise<FormworkError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof FormworkError) return e;
    throw e;
  }
  throw new Error('expected a refusal, got a success');
}

describe.skipIf(!!skip)('OpenStack client against a real control plane', () => {
  let demo: OpenStackClient;
  let demoConfig: CloudConfig;
  let networks: Record<'public' | 'private' | 'isolated', NeutronNetwork>;

  /** What this run left behind: servers, floating IPs and ports carrying its mark. */
  async function leftovers(): Promise<string[]> {
    const servers = await demo.compute.listServers({ 'formwork.io/test-run': RUN });
    const fips = await demo.network.listFloatingIps({ tags: TAG });
    const ports = await demo.network.listPorts({ tags: TAG });
    return [...servers.map((s) => `server ${s.id}`), ...fips.map((f) => `floating IP ${f.id}`), ...ports.map((p) => `port ${p.id}`)];
  }

  beforeAll(async () => {
    demoConfig = await cloud('demo');
    demo = clientFor(demoConfig);
    const byName = async (name: string) => {
      const [net] = await demo.network.listNetworks({ name });
      if (!net) throw new Error(`network "${name}" missing: start.sh creates it`);
      return net;
    };
    networks = { public: await byName('public'), private: await byName('private'), isolated: await byName('isolated') };
  });

  afterAll(async () => {
    if (!demo) return;
    // Servers first (their ports go with them), then floating IPs, then the ports made here.
    for (const s of await demo.compute.listServers({ 'formwork.io/test-run': RUN })) await demo.compute.deleteServer(s.id);
    await until('servers gone', () => demo.compute.listServers({ 'formwork.io/test-run': RUN }), (l) => l.length === 0);
    for (const f of await demo.network.listFloatingIps({ tags: TAG })) await demo.network.deleteFloatingIp(f.id);
    for (const p of await demo.network.listPorts({ tags: TAG })) await demo.network.deletePort(p.id);
    expect(await leftovers()).toEqual([]);
  }, 180_000);

  it('logs in with a password from clouds.yaml and finds every service in the catalog, public endpoints on 127.0.0.1', async () => {
    const token = await demo.session.currentToken();
    expect(token.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(token.projectId).toMatch(/^[0-9a-f]{32}$/);
    const types = token.catalog.map((e) => e.type).sort();
    expect(types).toEqual(['compute', 'identity', 'image', 'network', 'placement']);
    for (const entry of token.catalog) for (const ep of entry.endpoints) expect(new URL(ep.url).hostname).toBe('127.0.0.1');
    // Version discovery on the real roots, and a Nova microversion negotiated within Formwork's range.
    expect(await demo.session.baseUrl('network')).toBe('http://127.0.0.1:9696/v2.0');
    expect(await demo.session.baseUrl('image')).toMatch(/^http:\/\/127\.0\.0\.1:9292\/v2(\.\d+)?$/);
    const compute = await demo.session.endpoint('compute');
    expect(compute.baseUrl).toBe('http://127.0.0.1:8774/v2.1');
    expect(compute.microversion).toBe('2.79');
  });

  it('logs in with a token, rescoped to the project, and refuses a wrong password as PROVIDER_AUTH', async () => {
    const { value } = await demo.session.currentToken();
    const auth = demoConfig.auth;
    const viaToken = createOpenStackClient({ auth: { method: 'token', authUrl: auth.authUrl, token: value, projectName: 'demo', projectDomainName: 'Default' }, region: 'RegionOne' });
    expect((await viaToken.compute.listFlavors()).length).toBeGreaterThanOrEqual(3);
    if (auth.method !== 'password') throw new Error('clouds.yaml demo uses a password');
    const wrong = createOpenStackClient({ auth: { ...auth, password: 'not-the-password' }, region: 'RegionOne' });
    const err = await rejection(wrong.session.currentToken());
    expect(err.code).toBe('PROVIDER_AUTH');
    expect(err.message).not.toContain('not-the-password');
  });

  it('lists flavors with their resources and images with their properties', async () => {
    const flavors = await demo.compute.listFlavors();
    const tiny = flavors.find((f) => f.name === 'm1.tiny');
    expect(tiny).toMatchObject({ vcpus: 1, ram: 512, disk: 1 });
    expect(flavors.map((f) => f.name)).toEqual(expect.arrayContaining(['m1.tiny', 'm1.small', 'm1.medium']));
    const images = await demo.image.listImages({ os_distro: 'debian' });
    const image = images.find((i) => i.name === 'debian-12-tiny');
    expect(image?.status).toBe('active');
    expect(imageProperties(image!)).toMatchObject({ os_distro: 'debian', os_version: '12', os_admin_user: 'debian' });
    expect(await demo.image.getImage(image!.id)).toMatchObject({ id: image!.id, os_admin_user: 'debian' });
  });

  it('reads networks, subnets and routers: the external network, and which subnet a router reaches it from', async () => {
    const external = await demo.network.listNetworks({ 'router:external': true });
    expect(external.map((n) => n.id)).toEqual([networks.public.id]);
    // A project sees the external network but not its subnets (they belong to the admin and are not shared).
    expect(await demo.network.listSubnets({ network_id: networks.public.id })).toEqual([]);
    const admin = clientFor(await cloud('admin'));
    const [publicSubnet] = await admin.network.listSubnets({ network_id: networks.public.id });
    expect(publicSubnet.cidr).toBe('198.19.254.0/24');
    const [privateSubnet] = await demo.network.listSubnets({ network_id: networks.private.id });
    expect(privateSubnet.gateway_ip).toBe('10.10.0.1');
    const routers = await demo.network.listRouters();
    const router = routers.find((r) => r.name === 'router1');
    expect(router?.external_gateway_info?.network_id).toBe(networks.public.id);
    const interfaces = await demo.network.listPorts({ device_id: router!.id, device_owner: 'network:router_interface' });
    expect(interfaces.flatMap((p) => p.fixed_ips.map((ip) => ip.subnet_id))).toEqual([privateSubnet.id]);
  });

  it('creates a floating IP attached to a port in one call; it turns ACTIVE, and its delete is confirmed by reading back', async () => {
    const port = await demo.network.createPort({ network_id: networks.private.id, name: `${RUN}-fip` });
    await demo.network.setTags('ports', port.id, [TAG]);
    const fip = await demo.network.createFloatingIp({ floatingNetworkId: networks.public.id, portId: port.id, description: RUN, tags: [TAG] });
    expect(fip.port_id).toBe(port.id);
    expect(fip.fixed_ip_address).toBe(port.fixed_ips[0].ip_address);
    expect(fip.floating_ip_address).toMatch(/^198\.19\.254\.\d+$/);
    await until('floating IP ACTIVE', () => demo.network.getFloatingIp(fip.id), (f) => f?.status === 'ACTIVE', 30_000);
    expect((await demo.network.listFloatingIps({ tags: TAG })).map((f) => f.id)).toEqual([fip.id]);
    expect(await demo.network.deleteFloatingIp(fip.id)).toBe(true);
    expect(await demo.network.getFloatingIp(fip.id)).toBeUndefined();
    expect(await demo.network.deleteFloatingIp(fip.id)).toBe(false);
    expect(await demo.network.deletePort(port.id)).toBe(true);
  });

  it("refuses a floating IP for a port whose subnet has no router to the external network, with Neutron's reason", async () => {
    const port = await demo.network.createPort({ network_id: networks.isolated.id, name: `${RUN}-isolated` });
    await demo.network.setTags('ports', port.id, [TAG]);
    const err = await rejection(demo.network.createFloatingIp({ floatingNetworkId: networks.public.id, portId: port.id, tags: [TAG] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.details).toMatchObject({ service: 'network', status: 404, cloudType: 'ExternalGatewayForFloatingIPNotFound' });
    expect(String(err.details?.cloudMessage)).toMatch(/External network .* is not reachable from subnet/);
    expect(err.message).toContain(String(err.details?.cloudMessage));
    // Refused in one call: nothing was allocated.
    expect(await demo.network.listFloatingIps({ port_id: port.id })).toEqual([]);
    expect(await demo.network.deletePort(port.id)).toBe(true);
  });

  it('boots a server on a named network to ACTIVE with an address, then deletes it and confirms it is gone', async () => {
    const [flavor] = (await demo.compute.listFlavors()).filter((f) => f.name === 'm1.tiny');
    const [image] = await demo.image.listImages({ name: 'debian-12-tiny' });
    const { id } = await demo.compute.createServer({
      name: `${RUN}-server`,
      flavorRef: flavor.id,
      imageRef: image.id,
      networks: [{ uuid: networks.private.id }],
      metadata: { 'formwork.io/test-run': RUN },
    });
    const server = await until('server ACTIVE', () => demo.compute.getServer(id), (s) => s?.status === 'ACTIVE' || s?.status === 'ERROR');
    expect(server?.status, JSON.stringify(server?.fault)).toBe('ACTIVE');
    const addresses = server!.addresses.private ?? [];
    expect(addresses[0]?.addr).toMatch(/^10\.10\.0\.\d+$/);
    expect(addresses[0]?.['OS-EXT-IPS:type']).toBe('fixed');
    expect(server!.flavor.original_name).toBe('m1.tiny');
    const ports = await demo.network.listPorts({ device_id: id });
    expect(ports.map((p) => p.status)).toEqual(['ACTIVE']);
    expect(await demo.compute.deleteServer(id)).toBe(true);
    await until('server gone', () => demo.compute.getServer(id), (s) => s === undefined);
    await until('its port gone', () => demo.network.listPorts({ device_id: id }), (l) => l.length === 0, 30_000);
  });
});
