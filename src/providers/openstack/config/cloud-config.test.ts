import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../../../core/errors.js';
import { loadCloudConfig, resolveCloudEntry } from './cloud-config.js';
import { candidatePaths } from './files.js';

let root: string;
let loc: { env: Record<string, string>; cwd: string; home: string; systemDir: string };
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fw-clouds-'));
  loc = { env: {}, cwd: join(root, 'work'), home: join(root, 'home'), systemDir: join(root, 'etc') };
  for (const d of [loc.cwd, join(loc.home, '.config', 'openstack'), loc.systemDir]) await mkdir(d, { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const CLOUDS = `clouds:
  lab:
    auth:
      auth_url: https://keystone.lab.example/v3
      username: demo
      user_domain_name: Default
      project_name: demo
      project_domain_name: Default
    region_name: RegionOne
  auro:
    profile: auro
    auth:
      username: me
      project_name: p1
  lime:
    profile: limestonenetworks
    region_name: us-slc
    auth:
      username: me
      password: pw
      user_domain_name: Default
      project_id: p1
`;
const SECURE = `clouds:
  lab:
    auth:
      password: s3cret-pass
  auro:
    auth:
      password: other-pass
`;

describe('finding clouds.yaml', () => {
  it('looks where openstacksdk looks, OS_CLIENT_CONFIG_FILE first', () => {
    expect(candidatePaths('clouds', { env: { OS_CLIENT_CONFIG_FILE: '/x/c.yaml' }, cwd: '/w', home: '/h' })).toEqual([
      '/x/c.yaml', '/w/clouds.yaml', '/w/clouds.yml', '/w/clouds.json', '/h/.config/openstack/clouds.yaml', '/h/.config/openstack/clouds.yml', '/h/.config/openstack/clouds.json',
      '/etc/openstack/clouds.yaml', '/etc/openstack/clouds.yml', '/etc/openstack/clouds.json',
    ]);
  });

  it('reads ~/.config/openstack with secure.yaml merged, and the working directory before it', async () => {
    await writeFile(join(loc.home, '.config', 'openstack', 'clouds.yaml'), CLOUDS);
    await writeFile(join(loc.home, '.config', 'openstack', 'secure.yaml'), SECURE);
    const lab = await loadCloudConfig('lab', loc);
    expect(lab.auth).toMatchObject({ method: 'password', authUrl: 'https://keystone.lab.example/v3', username: 'demo', password: 's3cret-pass', projectName: 'demo', projectDomainName: 'Default' });
    expect(lab.region).toBe('RegionOne');
    expect(lab.interface).toBe('public');

    await writeFile(join(loc.cwd, 'clouds.yaml'), 'clouds:\n  here:\n    auth: { auth_url: "https://cwd.example/v3", application_credential_id: a1, application_credential_secret: s }\n');
    const here = await loadCloudConfig('here', loc);
    expect(here.auth).toMatchObject({ method: 'application_credential', applicationCredentialId: 'a1' });
    await expect(loadCloudConfig('lab', loc)).rejects.toThrow(/work\/clouds.yaml has no cloud "lab"; its clouds are: here/);
  });

  it('takes OS_CLIENT_CONFIG_FILE and OS_CLIENT_SECURE_FILE over the folders', async () => {
    await writeFile(join(loc.cwd, 'clouds.yaml'), 'clouds: {}\n');
    await writeFile(join(root, 'mine.yaml'), CLOUDS);
    await writeFile(join(root, 'mine-secure.yaml'), SECURE);
    loc.env = { OS_CLIENT_CONFIG_FILE: join(root, 'mine.yaml'), OS_CLIENT_SECURE_FILE: join(root, 'mine-secure.yaml') };
    expect((await loadCloudConfig('lab', loc)).auth).toMatchObject({ password: 's3cret-pass' });
  });

  it('says where it looked when there is no clouds.yaml, and names a file that does not parse', async () => {
    await expect(loadCloudConfig('lab', loc)).rejects.toThrow(/no clouds.yaml found \(looked at .*work\/clouds.yaml.*\); write one, or set OS_CLIENT_CONFIG_FILE/);
    await writeFile(join(loc.cwd, 'clouds.yaml'), 'clouds:\n  lab: [unclosed\n');
    await expect(loadCloudConfig('lab', loc)).rejects.toThrow(/clouds.yaml is not valid YAML/);
  });
});

describe('resolving a cloud', () => {
  it("merges the vendor profile under the cloud's own settings", async () => {
    await writeFile(join(loc.cwd, 'clouds.yaml'), CLOUDS);
    await writeFile(join(loc.cwd, 'secure.yaml'), SECURE);
    const auro = await loadCloudConfig('auro', loc);
    expect(auro.vendor).toBe('auro');
    expect(auro.auth).toMatchObject({ authUrl: 'https://api.van2.auro.io:5000/v3', username: 'me', userDomainName: 'Default', projectDomainName: 'Default', password: 'other-pass' });
    expect(auro.region).toBe('RegionOne');
    expect(auro.requiresFloatingIp).toBe(true);
  });

  it("applies a region's own values (limestone's per-network flags)", async () => {
    await writeFile(join(loc.cwd, 'clouds.yaml'), CLOUDS);
    const lime = await loadCloudConfig('lime', loc);
    expect(lime.region).toBe('us-slc');
    expect(lime.networks.map((n) => n.name)).toEqual(['Public Internet', 'Private Network (10.0.0.0/8 only)', 'Private Network (Floating Public)']);
    expect(lime.networks.find((n) => n.nat_destination)?.name).toBe('Private Network (Floating Public)');
    await expect(loadCloudConfig('lime', loc, { region: 'us-nowhere' })).rejects.toThrow(/region "us-nowhere" is not one of the cloud's regions \(us-dfw-1, us-slc\); set region_name/);
  });

  it('fills {region_name} into URLs and takes endpoint overrides; picks the first region when none is given, saying so', () => {
    const c = resolveCloudEntry('cc', { profile: 'citycloud', auth: { username: 'u', password: 'p', user_domain_id: 'd', project_id: 'p1' }, network_endpoint_override: 'https://net.{region_name}.example' });
    expect(c.region).toBe('Buf1');
    expect(c.auth.authUrl).toBe('https://Buf1.citycloud.com:5000/v3/');
    expect(c.endpointOverrides).toEqual({ network: 'https://net.Buf1.example' });
    expect(c.warnings.join('\n')).toMatch(/no region_name given; using "Buf1", the first of Buf1, Fra1/);
  });

  it('refuses what cannot work, naming the fix and never a secret', () => {
    const fail = (entry: Record<string, unknown>) => {
      try {
        resolveCloudEntry('x', entry);
      } catch (e) {
        expect(e).toBeInstanceOf(FormworkError);
        expect((e as FormworkError).code).toBe('PROVIDER_INVALID');
        expect((e as FormworkError).message).not.toContain('hunter22');
        return (e as FormworkError).message;
      }
      throw new Error('expected a refusal');
    };
    expect(fail({ profile: 'ovh', auth: { username: 'u', password: 'hunter22' } })).toMatch(/vendor profile "ovh" only points to https:\/\/ovhcloud.com.*give auth.auth_url and region_name/);
    expect(fail({ profile: 'otc-swiss', auth: { username: 'u', password: 'hunter22' } })).toMatch(/auth.auth_url "iam-pub.eu-ch2.sc.otc.t-systems.com\/v3" has no scheme: write https:\/\/iam-pub/);
    expect(fail({ profile: 'ultimum', auth: { password: 'hunter22' } })).toMatch(/shut down/);
    expect(fail({ profile: 'rackspace', auth: { password: 'hunter22' } })).toMatch(/identity_api_version is 2.0: Formwork speaks Keystone v3 only/);
    expect(fail({ profile: 'bluebox', auth: { password: 'hunter22' } })).toMatch(/no auth.auth_url: give the Keystone URL/);
    expect(fail({ auth: { auth_url: 'https://k/v3', username: 'u' } })).toMatch(/no auth.password: put it in secure.yaml/);
    expect(fail({ auth_type: 'v3oidcpassword', auth: { auth_url: 'https://k/v3', password: 'hunter22' } })).toMatch(/auth_type "v3oidcpassword" is not one Formwork speaks/);
    expect(fail({ profile: 'nope', auth: {} })).toMatch(/no vendor profile is named "nope"/);
  });

  it("reads a misspelled key as openstacksdk does, and reports unknown ones", () => {
    const c = resolveCloudEntry('x', { 'region-name': 'R1', regin: 1, auth: { auth_url: 'https://k/v3', user_id: 'u', password: 'p', project_id: 'p1' } });
    expect(c.region).toBe('R1');
    expect(c.warnings.join('\n')).toMatch(/key "region-name" is read as "region_name"/);
    expect(c.warnings.join('\n')).toMatch(/unknown key "regin" is ignored/);
  });

  it("uses users' profiles from clouds-public.yaml", async () => {
    await writeFile(join(loc.cwd, 'clouds.yaml'), 'clouds:\n  p:\n    profile: privcloud\n    auth: { username: u, password: pw, user_domain_name: D, project_id: p1 }\n');
    await writeFile(join(loc.cwd, 'clouds-public.yaml'), 'public-clouds:\n  privcloud:\n    profile:\n      auth: { auth_url: "https://keystone.priv.example/v3" }\n      regions: [north, south]\n      floating_ip_source: None\n');
    const p = await loadCloudConfig('p', loc, { region: 'south' });
    expect(p).toMatchObject({ vendor: 'privcloud', region: 'south', floatingIpSource: 'None' });
    expect(p.auth.authUrl).toBe('https://keystone.priv.example/v3');
  });
});
