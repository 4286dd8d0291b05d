import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { cloudConfigLocations, connect, forgetConnections } from './connect.js';

let dir = '';
const realLocations = cloudConfigLocations.get;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fw-os-connect-'));
  cloudConfigLocations.get = () => ({ env: { OS_CLIENT_CONFIG_FILE: join(dir, 'clouds.yaml') }, cwd: dir, home: dir, systemDir: dir });
});
afterEach(async () => {
  cloudConfigLocations.get = realLocations;
  forgetConnections();
  await rm(dir, { recursive: true, force: true });
});

const clouds = (authUrl: string) => `clouds:\n  lab:\n    auth:\n      auth_url: ${authUrl}\n      username: demo\n      password: pw\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n`;

it('reads clouds.yaml on every connect: an edited file gets a client of its own, an unchanged one keeps its client', async () => {
  const ctx = { providerName: 'os1', settings: { cloud: 'lab' }, log: { info: () => undefined, warn: () => undefined } };
  await writeFile(join(dir, 'clouds.yaml'), clouds('http://127.0.0.1:5001/v3'));
  const a = await connect(ctx);
  expect((await connect(ctx)).client).toBe(a.client);
  await writeFile(join(dir, 'clouds.yaml'), clouds('http://127.0.0.1:5002/v3'));
  const b = await connect(ctx);
  expect(b.client).not.toBe(a.client);
  expect(b.config.auth.authUrl).toContain('5002');
});
