import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createOpenStackClient } from '../../../providers/openstack/client/index.js';
import { loadCloudConfig } from '../../../providers/openstack/config/cloud-config.js';
import { startEmulate } from './testing.js';

const start = (args: string[]) => startEmulate('openstack', args);

describe('formwork emulate openstack', () => {
  it('prints a Provider document whose clouds.yaml logs our client in; Ctrl-C stops it', async () => {
    const run = await start(['--scenario', 'several-externals', '--subnet-index', '41']);
    const doc = parse(run.out()) as { kind: string; type: string; settings: { cloud: string } };
    expect(doc).toEqual({ kind: 'Provider', name: 'openstack-emulator-41', type: 'openstack', settings: { cloud: 'openstack-emulator-41' } });
    const cloudsFile = /# clouds\.yaml: (\S+)/.exec(run.out())![1];
    expect(cloudsFile).toBe(path.join(run.dataDir, 'openstack-emulator-41', 'clouds.yaml'));
    expect(fs.statSync(cloudsFile).mode & 0o777).toBe(0o600);
    const config = await loadCloudConfig(doc.settings.cloud, { env: { OS_CLIENT_CONFIG_FILE: cloudsFile }, cwd: run.dataDir, home: run.dataDir });
    const client = createOpenStackClient({ auth: config.auth, region: config.region, interface: config.interface });
    expect((await client.network.listNetworks({ 'router:external': true })).map((n) => n.name)).toEqual(['ext-unrouted', 'ext-routed']);
    expect(await run.stop()).toBe(0);
    expect(run.err()).toContain('emulator stopped.');
    expect(fs.existsSync(cloudsFile)).toBe(false);
  });

  it('names the vendor profile in clouds.yaml, and refuses an unknown scenario naming the known ones', async () => {
    const run = await start(['--profile', 'citycloud']);
    const cloudsFile = /# clouds\.yaml: (\S+)/.exec(run.out())![1];
    const config = await loadCloudConfig('openstack-emulator-40', { env: { OS_CLIENT_CONFIG_FILE: cloudsFile }, cwd: run.dataDir, home: run.dataDir });
    expect(config).toMatchObject({ vendor: 'citycloud', region: 'Buf1', requiresFloatingIp: true });
    expect(config.auth.authUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/identity\/v3$/);
    expect(await run.stop()).toBe(0);
    const bad = await start(['--scenario', 'nope']);
    expect(await bad.stop()).not.toBe(0);
    expect(bad.err()).toMatch(/no emulator scenario is named "nope"; the scenarios are: floating-ip-required/);
  });
});
