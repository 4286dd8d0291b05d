import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SHIPPED_VENDOR_PROFILES } from '../vendors/index.js';
import { checkVendorProfile, loadVendorProfileFile, requireVendorProfile, shippedVendorNames } from './vendors.js';

// The originals, in the project's shared fixtures beside the repository (absent elsewhere: the
// copy check is then skipped; the shipped profiles are checked below all the same).
const RECORDED = join(process.cwd(), '..', 'shared', 'fixtures', 'openstacksdk', 'config');
const haveOriginals = existsSync(join(RECORDED, 'vendors'));
if (!haveOriginals) console.warn(`vendor profiles: the originals are not at ${RECORDED}; their copy is not compared`);

describe('the shipped vendor profiles', () => {
  it.skipIf(!haveOriginals)('are every recorded profile, unchanged, with the schema', async () => {
    const files = (await readdir(join(RECORDED, 'vendors'))).sort();
    expect(shippedVendorNames()).toEqual(files.map((f) => f.replace(/\.(json|yaml)$/, '')).sort());
    for (const f of files) {
      const original = parseYaml(await readFile(join(RECORDED, 'vendors', f), 'utf8')) as unknown;
      expect(SHIPPED_VENDOR_PROFILES[f.replace(/\.(json|yaml)$/, '')], f).toEqual(original);
    }
    const shippedSchema = JSON.parse(await readFile(new URL('../vendors/vendor-schema.json', import.meta.url), 'utf8')) as unknown;
    expect(shippedSchema).toEqual(JSON.parse(await readFile(join(RECORDED, 'vendor-schema.json'), 'utf8')));
  });

  it.each(shippedVendorNames())('%s loads, or says clearly why not', (name) => {
    const check = checkVendorProfile(SHIPPED_VENDOR_PROFILES[name], name);
    if (check.profile) {
      expect(check.errors).toEqual([]);
      expect(check.profile.name).toBe(name);
    } else {
      expect(check.errors.length).toBeGreaterThan(0);
      for (const e of check.errors) expect(e).toMatch(new RegExp(`vendor profile "${name}".*(choose another cloud|does not match)`));
    }
    for (const w of check.warnings) expect(w).toMatch(new RegExp(`^vendor profile "${name}"`));
  });

  it('explain each oddity of the recorded profiles', () => {
    const msgs = (name: string) => {
      const c = checkVendorProfile(SHIPPED_VENDOR_PROFILES[name], name);
      return [...c.errors, ...c.warnings].join('\n');
    };
    expect(msgs('ovh')).toMatch(/only points to https:\/\/ovhcloud.com.*clouds.yaml must give auth.auth_url and region_name/);
    expect(msgs('ultimum')).toMatch(/key "region-name" is read as "region_name"/);
    expect(msgs('ultimum')).toMatch(/has shut down \(ultimum-cloud.com has ceased business\)/);
    expect(msgs('otc-swiss')).toMatch(/auth_url "iam-pub.eu-ch2.sc.otc.t-systems.com\/v3" has no scheme; set auth.auth_url to https:\/\/iam-pub/);
    expect(msgs('fuga')).toMatch(/deprecated \(the API Endpoint is no longer responsive\)/);
    expect(msgs('rackspace')).toMatch(/Keystone v2.0; Formwork speaks v3 only/);
    expect(checkVendorProfile(SHIPPED_VENDOR_PROFILES.limestonenetworks, 'l').profile?.profile.regions).toHaveLength(2);
  });

  it('refuses unknown names (listing the known ones) and unusable profiles', () => {
    expect(() => requireVendorProfile('nosuchcloud')).toThrow(/no vendor profile is named "nosuchcloud"; known profiles: .*auro.*zetta/);
    expect(() => requireVendorProfile('betacloud')).toThrow(/betacloud.*shut down.*ceased business/);
    expect(requireVendorProfile('auro').profile.profile.requires_floating_ip).toBe(true);
  });
});

describe("users' own profiles", () => {
  it('load from files in the same format, and bad ones give a message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fw-vendors-'));
    try {
      await writeFile(join(dir, 'mine.yaml'), 'name: mine\nprofile:\n  auth:\n    auth_url: https://keystone.mine.example/v3\n  regions: [r1]\n  floating_ip_source: None\n');
      await writeFile(join(dir, 'bad.yaml'), 'name: bad\nprofile:\n  interface: outside\n');
      await writeFile(join(dir, 'broken.yaml'), 'name: [unclosed\n');
      expect((await loadVendorProfileFile(join(dir, 'mine.yaml'))).profile?.profile.floating_ip_source).toBe('None');
      expect((await loadVendorProfileFile(join(dir, 'bad.yaml'))).errors[0]).toMatch(/does not match openstacksdk's vendor schema: \/profile\/interface must be equal to one of the allowed values/);
      expect((await loadVendorProfileFile(join(dir, 'broken.yaml'))).errors[0]).toMatch(/broken.yaml cannot be read/);
      expect((await loadVendorProfileFile(join(dir, 'missing.yaml'))).errors[0]).toMatch(/missing.yaml cannot be read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('take precedence over shipped ones by name', () => {
    const { profile } = requireVendorProfile('auro', { auro: { profile: { auth: { auth_url: 'https://private.example/v3' } } } });
    expect((profile.profile.auth as { auth_url: string }).auth_url).toBe('https://private.example/v3');
  });
});
