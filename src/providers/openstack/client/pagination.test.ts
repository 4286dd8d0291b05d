import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeCloud, fixture, type FakeCloud } from '../testing/fake-cloud.js';
import { createOpenStackClient, type OpenStackClient } from './index.js';
import { resolveNext } from './pagination.js';

let cloud: FakeCloud;
let client: OpenStackClient;
beforeEach(async () => {
  cloud = await startFakeCloud();
  client = createOpenStackClient({ auth: cloud.passwordAuth() });
});
afterEach(async () => {
  await cloud.close();
});

type Page = Record<string, unknown>;
const queriesOf = (path: string) => cloud.requests.filter((r) => r.path === path).map((r) => Object.fromEntries(r.query));

describe('pagination across three pages', () => {
  it("follows Nova's servers_links (an internal host in them rebased on the endpoint) and filters by metadata", async () => {
    const libcloud = fixture<{ servers: Page[] }>('libcloud/openstack_v1.1/_servers_detail.json').servers;
    const jclouds = fixture<{ servers: Page[] }>('jclouds/openstack-nova/server_list_details.json').servers;
    // Stored as a real Nova stores it (no '/' in metadata keys); asked for as Formwork writes it.
    const mine = { ...libcloud[0], id: 'mine', metadata: { 'formwork.io:provider': 'os1' } };
    cloud.on('GET', '/8774/v2.1/servers/detail', (req) => {
      const marker = req.query.get('marker');
      if (!marker) return { body: { servers: libcloud, servers_links: [{ rel: 'next', href: `http://nova-internal:8774/v2.1/servers/detail?limit=2&marker=${String(libcloud[1].id)}` }] } };
      if (marker === String(libcloud[1].id)) return { body: { servers: jclouds, servers_links: [{ rel: 'next', href: `http://nova-internal:8774/v2.1/servers/detail?limit=2&marker=${String(jclouds[jclouds.length - 1].id)}` }] } };
      return { body: { servers: [mine] } };
    });
    const found = await client.compute.listServers({ 'formwork.io/provider': 'os1' });
    expect(found.map((s) => s.id)).toEqual(['mine']);
    expect(queriesOf('/8774/v2.1/servers/detail')).toEqual([{ limit: '200' }, { limit: '2', marker: String(libcloud[1].id) }, { limit: '2', marker: String(jclouds[jclouds.length - 1].id) }]);
  });

  it("follows Neutron's ports_links", async () => {
    // Five of the six, so the last page is not full (a full page without a link is followed by marker).
    const ports = fixture<{ ports: Page[] }>('libcloud/openstack_v1.1/_ports_v2.json').ports.slice(0, 5);
    cloud.on('GET', '/9696/v2.0/ports', (req) => {
      const at = req.query.get('marker') ? ports.findIndex((p) => p.id === req.query.get('marker')) + 1 : 0;
      const page = ports.slice(at, at + 2);
      const more = at + 2 < ports.length;
      return { body: { ports: page, ...(more ? { ports_links: [{ rel: 'next', href: `${cloud.url}/9696/v2.0/ports?limit=2&marker=${String(page[1].id)}&device_owner=compute%3Anova` }] } : {}) } };
    });
    const all = await client.network.listPorts({ device_owner: 'compute:nova' }, { limit: 2 });
    expect(all.map((p) => p.id)).toEqual(ports.map((p) => p.id));
    expect(queriesOf('/9696/v2.0/ports')).toHaveLength(3);
    expect(queriesOf('/9696/v2.0/ports')[0]).toEqual({ device_owner: 'compute:nova', limit: '2' });
  });

  it("follows Glance's next (a path relative to the endpoint's root) and stops on a link that repeats", async () => {
    const first = fixture<Page>('libcloud/openstack_v1.1/_images_v2.json');
    const last = fixture<Page>('libcloud/openstack_v1.1/_images_v2_page2.json');
    const middle = { images: [{ id: 'middle-1', name: 'debian-12', status: 'active', os_distro: 'debian', os_version: '12' }], next: '/v2/images?marker=middle-1' };
    cloud.on('GET', '/9292/v2/images', (req) => ({ body: !req.query.get('marker') ? first : req.query.get('marker') === 'middle-1' ? last : middle }));
    const images = await client.image.listImages();
    expect(images.map((i) => i.id)).toEqual(['f24a3c1b-d52a-4116-91da-25b3eee8f55e', '4bd743f8-7e7d-4568-8f31-b3f06b90e70a', 'middle-1', 'f24a3c1b-d52a-4116-91da-25b3eee8f55c']);

    const loop = fixture<Page>('libcloud/openstack_v1.1/_images_v2_invalid_next.json');
    cloud.on('GET', '/9292/v2/images', () => ({ body: loop }));
    cloud.requests.length = 0;
    await client.image.listImages();
    expect(cloud.requests.filter((r) => r.path === '/9292/v2/images').length).toBeLessThanOrEqual(2);
  });

  it('asks with marker when a full page came without a link', async () => {
    cloud.on('GET', '/9696/v2.0/networks', (req) => ({ body: { networks: req.query.get('marker') ? [] : [{ id: 'a' }, { id: 'b' }] } }));
    expect((await client.network.listNetworks(undefined)).map((n) => n.id)).toEqual(['a', 'b']);
    const all = await createOpenStackClient({ auth: cloud.passwordAuth() }).network.listPorts(undefined, { limit: 2 }).catch(() => []);
    expect(all).toEqual([]); // no ports route: a 404 is an error, not an empty list
  });
});

describe('resolveNext', () => {
  it('keeps the endpoint prefix and host', () => {
    expect(resolveNext('/v2/images?marker=b', 'http://x/image/v2')).toBe('http://x/image/v2/images?marker=b');
    expect(resolveNext('http://internal:9696/v2.0/ports?marker=c', 'https://net.example.com/v2.0')).toBe('https://net.example.com/v2.0/ports?marker=c');
  });
});
