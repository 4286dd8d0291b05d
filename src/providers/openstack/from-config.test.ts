import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createOpenStackClient } from './client/index.js';
import { loadCloudConfig } from './config/cloud-config.js';
import { startFakeCloud, type FakeCloud } from './testing/fake-cloud.js';

let cloud: FakeCloud;
let dir: string;
beforeEach(async () => {
  cloud = await startFakeCloud();
  dir = await mkdtemp(join(tmpdir(), 'fw-os-'));
});
afterEach(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

it('a cloud from clouds.yaml + secure.yaml drives the client: internal interface, region, secrets from secure.yaml', async () => {
  await writeFile(join(dir, 'clouds.yaml'), `clouds:\n  fake:\n    auth:\n      auth_url: ${cloud.url}/5000\n      username: admin\n      user_domain_name: Default\n      project_name: admin\n      project_domain_name: Default\n    region_name: regionOne\n    interface: internal\n`);
  await writeFile(join(dir, 'secure.yaml'), 'clouds:\n  fake:\n    auth:\n      password: secret-pw\n');
  const config = await loadCloudConfig('fake', { env: { OS_CLIENT_CONFIG_FILE: join(dir, 'clouds.yaml'), OS_CLIENT_SECURE_FILE: join(dir, 'secure.yaml') } });
  cloud.on('GET', '/9696/v2.0/networks', () => ({ body: { networks: [{ id: 'n1', name: 'private' }] } }));
  const client = createOpenStackClient({ auth: config.auth, region: config.region, interface: config.interface, endpointOverrides: config.endpointOverrides });
  expect((await client.network.listNetworks()).map((n) => n.name)).toEqual(['private']);
  // The fixture's internal network endpoint is http://controller:9696, rewritten to the fake cloud.
  expect(await client.session.baseUrl('network')).toBe(`${cloud.url}/9696/v2.0`);
});
