import { afterEach, describe, expect, it } from 'vitest';
import { createOpenStackClient } from '../client/index.js';
import { selectEndpoint } from '../client/catalog.js';
import { listAll } from '../client/pagination.js';
import { emulate, until, type Emulated } from '../testing/emulated.js';

let e: Emulated;
afterEach(async () => {
  await e?.emu.close();
});

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5u1p7JfQb3m0sT8Xn4d9GkM2bYz7q0r1w2e3t4y5u test@formwork';

async function raw(method: string, url: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method, headers: { 'x-auth-token': token, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function bootOn(networkName: string, name = 'web-1') {
  const { client } = e;
  const net = (await client.network.listNetworks({ name: networkName }))[0];
  const flavor = (await client.compute.listFlavors())[0];
  const image = (await client.image.listImages())[0];
  await client.compute.createKeypair(`k-${name}`, KEY);
  const { id } = await client.compute.createServer({ name, imageRef: image.id, flavorRef: flavor.id, networks: [{ uuid: net.id }], keyName: `k-${name}`, metadata: { 'formwork.io/node-id': name } });
  const server = await until(() => client.compute.getServer(id), (s) => s?.status === 'ACTIVE');
  const port = (await client.network.listPorts({ device_id: id }))[0];
  return { id, server: server!, port };
}

describe('Keystone', () => {
  it('logs in by password, application credential and token; the catalog points public endpoints at the emulator and the others elsewhere', async () => {
    e = await emulate('floating-ip-required');
    const token = await e.client.session.currentToken();
    expect(token.projectId).toBe(e.emu.state.identity.projectId);
    expect(selectEndpoint(token.catalog, { serviceType: 'compute', region: 'RegionOne' })).toBe(`${e.emu.url}/compute/v2.1`);
    expect(selectEndpoint(token.catalog, { serviceType: 'network', interface: 'internal', region: 'RegionOne' })).not.toContain(e.emu.url);
    expect((await e.client.compute.listFlavors()).map((f) => f.name)).toContain('m1.small');
    const app = createOpenStackClient({ auth: e.emu.applicationCredentialAuth() });
    expect((await app.network.listNetworks()).length).toBe(2);
    const byToken = createOpenStackClient({ auth: { method: 'token', authUrl: e.emu.authUrl, token: token.value, projectName: 'demo', projectDomainName: 'Default' } });
    expect((await byToken.image.listImages()).length).toBeGreaterThan(0);
  });

  it('refuses wrong secrets and unscoped logins as Keystone does, and renews a revoked token', async () => {
    e = await emulate('floating-ip-required');
    const bad = createOpenStackClient({ auth: { ...e.emu.passwordAuth(), password: 'wrong' } });
    await expect(bad.compute.listFlavors()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
    const otherProject = createOpenStackClient({ auth: { ...e.emu.passwordAuth(), projectName: 'nope' } });
    await expect(otherProject.compute.listFlavors()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
    const unscoped = createOpenStackClient({ auth: { ...e.emu.passwordAuth(), projectName: undefined, projectDomainName: undefined } });
    await expect(unscoped.compute.listFlavors()).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('without a service catalog') });
    await e.client.compute.listFlavors();
    e.emu.keystone.revokeAll();
    expect((await e.client.compute.listFlavors()).length).toBe(4); // a 401, a new login, the call again
  });

  it('lets tokens expire', async () => {
    e = await emulate('floating-ip-required', { tokenTtlMs: 50 });
    const token = await e.client.session.currentToken();
    expect((await raw('GET', `${e.emu.url}/network/v2.0/networks`, token.value)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 80));
    expect((await raw('GET', `${e.emu.url}/network/v2.0/networks`, token.value)).status).toBe(401);
  });
});

describe('Nova', () => {
  it('negotiates a microversion, answers it in both headers, and refuses one out of range with 406', async () => {
    e = await emulate('floating-ip-required');
    expect((await e.client.session.endpoint('compute')).microversion).toBe('2.79');
    const token = (await e.client.session.currentToken()).value;
    const ok = await raw('GET', `${e.emu.url}/compute/v2.1/flavors`, token, undefined, { 'openstack-api-version': 'compute 2.60' });
    expect(ok.headers.get('openstack-api-version')).toBe('compute 2.60');
    expect(ok.headers.get('x-openstack-nova-api-version')).toBe('2.60');
    expect((await raw('GET', `${e.emu.url}/compute/v2.1/flavors`, token, undefined, { 'openstack-api-version': 'compute 2.99' })).status).toBe(406);
  });

  it('boots BUILD → ACTIVE with fixed addresses, the flavor embedded, and deletes the server with its port', async () => {
    e = await emulate('floating-ip-required');
    const { id, server, port } = await bootOn('private');
    expect(server.addresses.private).toEqual([expect.objectContaining({ addr: port.fixed_ips[0].ip_address, 'OS-EXT-IPS:type': 'fixed', version: 4 })]);
    expect(server.flavor.original_name).toBe('m1.tiny');
    expect(server.metadata).toEqual({ 'formwork.io:node-id': 'web-1' });
    expect((await e.client.compute.listServers({ 'formwork.io/node-id': 'web-1' })).map((s) => s.id)).toEqual([id]);
    expect(await e.client.compute.deleteServer(id)).toBe(true);
    await until(() => e.client.compute.getServer(id), (s) => s === undefined);
    expect(await e.client.network.listPorts({ device_id: id })).toEqual([]);
    expect(e.backend.hosts.size).toBe(0);
  });

  it('refuses boots as Nova does: no network named with several visible, metadata keys with "/", unknown flavor or key', async () => {
    e = await emulate('private-is-public'); // two tenant networks: "private" and "public"
    const s = e.client.session;
    const flavorRef = '1';
    const imageRef = e.emu.scenario.images[0].id;
    const privateNet = (await e.client.network.listNetworks({ name: 'private' }))[0].id;
    await expect(s.request('compute', 'POST', '/servers', { body: { server: { name: 'a', flavorRef, imageRef } } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining("'networks' is a required property") });
    await expect(s.request('compute', 'POST', '/servers', { body: { server: { name: 'a', flavorRef, imageRef, networks: 'auto' } } })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('Multiple possible networks found') });
    const token = (await s.currentToken()).value;
    const old = await raw('POST', `${e.emu.url}/compute/v2.1/servers`, token, { server: { name: 'a', flavorRef, imageRef } }, { 'openstack-api-version': 'compute 2.36' });
    expect(old.status).toBe(409);
    await expect(s.request('compute', 'POST', '/servers', { body: { server: { name: 'a', flavorRef, imageRef, networks: [{ uuid: privateNet }], metadata: { 'formwork.io/node-id': 'n1' } } } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining("'formwork.io/node-id' was unexpected") });
    await expect(e.client.compute.createServer({ name: 'a', flavorRef: 'nope', imageRef, networks: [{ uuid: privateNet }] })).rejects.toMatchObject({ message: expect.stringContaining('Invalid flavorRef') });
    await expect(e.client.compute.createServer({ name: 'a', flavorRef, imageRef, networks: [{ uuid: privateNet }], keyName: 'nope' })).rejects.toMatchObject({ message: expect.stringContaining('Invalid key_name') });
    expect(e.emu.state.servers.size).toBe(0);
  });

  it('keeps keypairs: duplicates refused, a missing public key generated before 2.92 and refused from it', async () => {
    e = await emulate('floating-ip-required');
    const kp = await e.client.compute.createKeypair('k1', KEY);
    expect(kp.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    await expect(e.client.compute.createKeypair('k1', KEY)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await e.client.compute.getKeypair('k1'))?.public_key).toBe(KEY);
    expect((await e.client.compute.listKeypairs()).map((k) => k.name)).toEqual(['k1']);
    const token = (await e.client.session.currentToken()).value;
    const generated = await raw('POST', `${e.emu.url}/compute/v2.1/os-keypairs`, token, { keypair: { name: 'k2' } }, { 'openstack-api-version': 'compute 2.79' });
    expect((generated.body?.keypair as { private_key?: string }).private_key).toContain('PRIVATE KEY');
    expect((await raw('POST', `${e.emu.url}/compute/v2.1/os-keypairs`, token, { keypair: { name: 'k3' } }, { 'openstack-api-version': 'compute 2.92' })).status).toBe(400);
    expect(await e.client.compute.deleteKeypair('k1')).toBe(true);
    expect(await e.client.compute.deleteKeypair('k1')).toBe(false);
  });
});

describe('pagination', () => {
  it('pages Nova, Neutron and Glance lists by limit and marker, with each one\'s links', async () => {
    e = await emulate('naming-chaos');
    const s = e.client.session;
    const nets = await s.request('network', 'GET', '/networks', { query: { limit: 1 } });
    expect((nets.body as { networks_links: { rel: string; href: string }[] }).networks_links[0]).toMatchObject({ rel: 'next', href: expect.stringContaining('marker=') });
    expect((await listAll(s, 'network', '/networks', 'networks', { limit: 1 })).map((n) => (n as { name: string }).name)).toEqual(['ten-7f3c_int', 'net_ext_PROD-01']);
    const flavors = await s.request('compute', 'GET', '/flavors/detail', { query: { limit: 2 } });
    expect((flavors.body as { flavors_links: unknown[] }).flavors_links).toHaveLength(1);
    expect(await listAll(s, 'compute', '/flavors/detail', 'flavors', { limit: 2 })).toHaveLength(3);
    const images = await s.request('image', 'GET', '/images', { query: { limit: 1 } });
    expect((images.body as { next: string }).next).toMatch(/^\/v2\/images\?limit=1&marker=/);
    expect(await listAll(s, 'image', '/images', 'images', { limit: 1 })).toHaveLength(2);
  });
});
