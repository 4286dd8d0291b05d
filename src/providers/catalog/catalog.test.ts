import { describe, expect, it } from 'vitest';
import { isFormworkError } from '../../core/errors.js';
import { compileSchema } from '../../core/schema.js';
import { CATALOG_SETTINGS_PROPERTIES, chooseImage, chooseLoginUsers, chooseSize, parseOsRequest, resolveCatalog } from './index.js';
import { parseShapeName } from './sizes.js';
import type { CatalogImage, CatalogSize } from './types.js';
import { fakeDriver } from '../testing/fake-driver.js';

const sizes: CatalogSize[] = [
  { nativeId: 'm.tiny', cpus: 1, ramMiB: 1024, diskGiB: 10 },
  { nativeId: 'm.small', cpus: 2, ramMiB: 2048, diskGiB: 20, zones: ['a'] },
  { nativeId: 'm.small-b', cpus: 2, ramMiB: 2048, diskGiB: 40, zones: ['b'] },
  { nativeId: 'm.big', cpus: 8, ramMiB: 32768 },
];
const opts = { providerName: 'p' };
const thrown = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e as Error & { code: string; details: Record<string, unknown> };
  }
  throw new Error('did not throw');
};

describe('sizes', () => {
  it('takes the smallest that meets a catalog name when prices are unknown, and says why', () => {
    expect(chooseSize('small', sizes, opts)).toEqual({ nativeId: 'm.small', normalized: 'small', reason: 'the smallest of 3 sizes meeting small (2 cpus, 2048 MiB RAM, 20 GiB disk); prices unknown' });
  });
  it('takes the cheapest when every candidate has a price, even if it is bigger', () => {
    const priced = [{ nativeId: 'a', cpus: 2, ramMiB: 2048, price: 0.03 }, { nativeId: 'b', cpus: 4, ramMiB: 4096, price: 0.02 }, { nativeId: 'c', cpus: 1, ramMiB: 512, price: 0.001 }];
    expect(chooseSize({ cpus: 2, ramMiB: 2048 }, priced, opts)).toMatchObject({ nativeId: 'b', normalized: '2cpu-2048mib', reason: expect.stringMatching(/^the cheapest \(0.02\/h\) of 2 sizes/) });
  });
  it('a size without local disk (block storage at boot) meets any disk request; zones filter', () => {
    expect(chooseSize({ cpus: 4, ramMiB: 4096, diskGiB: 500 }, sizes, opts).nativeId).toBe('m.big');
    expect(chooseSize('small', sizes, { ...opts, zone: 'b' }).nativeId).toBe('m.small-b');
  });
  it('reads shape names back, and takes native ids and settings.sizes as they are', () => {
    expect(parseShapeName('2cpu-4096mib-20gib')).toEqual({ cpus: 2, ramMiB: 4096, diskGiB: 20 });
    expect(chooseSize('2cpu-4096mib', sizes, opts).nativeId).toBe('m.big');
    expect(chooseSize('m.tiny', sizes, opts)).toMatchObject({ nativeId: 'm.tiny', reason: 'the native size named m.tiny' });
    expect(chooseSize('large', sizes, { ...opts, overrides: { large: 'x.custom' } })).toMatchObject({ nativeId: 'x.custom', reason: 'settings.sizes.large of provider p' });
  });
  it('no match names what was asked, how many it looked at, and the setting', () => {
    const e = thrown(() => chooseSize({ cpus: 64, ramMiB: 1 << 20 }, sizes, opts));
    expect(isFormworkError(e) && e.code).toBe('PROVIDER_INVALID');
    expect(e.message).toMatch(/no size meets 64 cpus, 1048576 MiB RAM among the 4 sizes of provider p; .*settings\.sizes/);
    expect(thrown(() => chooseSize('huge', sizes, opts)).message).toMatch(/"huge" is neither a catalog size \(small, medium, large, xlarge\).*settings\.sizes\.huge/);
  });
});

const images: CatalogImage[] = [
  { nativeId: 'ami-old', name: 'debian-12-amd64-20240101', properties: {}, owner: '136693071363', region: 'r1', createdAt: '2024-01-01' },
  { nativeId: 'ami-new', name: 'debian-12-amd64-20250101', properties: {}, owner: '136693071363', region: 'r1', createdAt: '2025-01-01' },
  { nativeId: 'ami-fake', name: 'debian-12-amd64-20250601', properties: {}, owner: '999', region: 'r1', createdAt: '2025-06-01' },
  { nativeId: 'ami-r2', name: 'debian-12-amd64-20250101', properties: {}, owner: '136693071363', region: 'r2', createdAt: '2025-01-01' },
  { nativeId: 'g-1', name: 'Bookworm server', properties: { os_distro: 'Debian', os_version: '12.4', os_admin_user: 'sysadmin' } },
  { nativeId: 'u-1', name: 'ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server', properties: {}, osFamily: 'ubuntu', osVersion: '24.04' },
  { nativeId: 'd-11', name: 'debian-11-amd64-20241212', properties: {} },
];

describe('images', () => {
  it('parses OS requests', () => {
    expect(parseOsRequest('debian-12')).toEqual({ family: 'debian', version: '12' });
    expect(parseOsRequest('fedora-coreos-40')).toEqual({ family: 'fedora-coreos', version: '40' });
    expect(parseOsRequest('ubuntu')).toEqual({ family: 'ubuntu', version: undefined });
    expect(parseOsRequest('ami-0a1b2c')).toEqual({ family: 'ami', version: '0a1b2c' });
  });
  it('trusts metadata before names (os_distro/os_version, a version prefix)', () => {
    expect(chooseImage('debian-12', images, opts)).toMatchObject({ nativeId: 'g-1', reason: expect.stringMatching(/^properties os_distro=debian, os_version=12 \(the newest of 1 matching, among 7 images\)/) });
    expect(chooseImage('ubuntu-24.04', images, opts)).toMatchObject({ nativeId: 'u-1', reason: expect.stringMatching(/OS family ubuntu and version 24.04/) });
  });
  it('by name pattern: per region, of the allowed owners, the newest; never a version that merely contains the digits', () => {
    const noMeta = images.filter((i) => i.nativeId !== 'g-1');
    expect(chooseImage('debian-12', noMeta, { ...opts, region: 'r1' }).nativeId).toBe('ami-fake');
    expect(chooseImage('debian-12', noMeta, { ...opts, region: 'r1', owners: ['136693071363'] })).toMatchObject({ nativeId: 'ami-new', reason: expect.stringMatching(/its name matches debian-12, owner 136693071363/) });
    expect(chooseImage('debian-12', noMeta, { ...opts, region: 'r2' }).nativeId).toBe('ami-r2');
    expect(chooseImage('debian-11', noMeta, opts).nativeId).toBe('d-11');
    expect(chooseImage('debian-12', [{ nativeId: 'x', name: 'Debian bookworm', properties: {} }], opts).nativeId).toBe('x');
  });
  it('native ids, names and settings.images (also per region) win', () => {
    expect(chooseImage('d-11', images, opts)).toMatchObject({ nativeId: 'd-11', reason: 'the native image with id d-11' });
    expect(chooseImage('debian-12', images, { ...opts, overrides: { 'debian-12': 'ami-mine' } })).toMatchObject({ nativeId: 'ami-mine', reason: 'settings.images.debian-12 of provider p' });
    expect(chooseImage('debian-12', images, { ...opts, region: 'r2', overrides: { 'debian-12': { r2: 'ami-r2x' } } }).reason).toBe('settings.images.debian-12.r2 of provider p');
  });
  it('no match names the request, the candidates and the setting', () => {
    const e = thrown(() => chooseImage('rocky-9', images, { ...opts, region: 'r1', owners: ['1'] }));
    expect(e.code).toBe('PROVIDER_INVALID');
    expect(e.message).toBe('no image matches "rocky-9" by properties os_distro/os_version, OS family and name among the 7 images of provider p, 6 in region r1, 0 of owners 1; name a native image id, or map it in settings.images.rocky-9');
    expect(e.details).toMatchObject({ image: 'rocky-9', candidates: 0, setting: 'settings.images.rocky-9' });
  });
});

describe('login users', () => {
  const debian: CatalogImage = { nativeId: 'i', name: 'debian-12', osFamily: 'debian', osVersion: '12', properties: {} };
  it('the same distro has different users on different clouds', () => {
    expect(chooseLoginUsers({ providerType: 'aws', image: debian })).toMatchObject({ users: expect.arrayContaining(['admin']), reason: 'the aws table for debian' });
    expect(chooseLoginUsers({ providerType: 'aws', image: debian }).users[0]).toBe('admin');
    expect(chooseLoginUsers({ providerType: 'openstack', image: debian }).users[0]).toBe('debian');
    expect(chooseLoginUsers({ providerType: 'equinix', image: debian }).users[0]).toBe('root');
    expect(chooseLoginUsers({ providerType: 'aws', osFamily: 'centos', osVersion: '8' }).users[0]).toBe('centos');
    expect(chooseLoginUsers({ providerType: 'aws', osFamily: 'centos', osVersion: '9' }).users[0]).toBe('ec2-user');
  });
  it('explicit setting, then os_admin_user, then settings.loginUsers, then the table; the bounded list last, no duplicates', () => {
    const img = { ...debian, properties: { os_admin_user: 'sysadmin' } };
    expect(chooseLoginUsers({ providerType: 'openstack', image: img, settings: { loginUser: 'ops' } })).toMatchObject({ users: ['ops', 'sysadmin', 'debian', 'root', 'admin', 'ubuntu', 'ec2-user', 'cloud-user', 'fedora', 'core'], reason: 'settings.loginUser' });
    expect(chooseLoginUsers({ providerType: 'openstack', image: img }).reason).toBe('image property os_admin_user of i');
    expect(chooseLoginUsers({ providerType: 'openstack', image: debian, settings: { loginUsers: { debian: 'deb' } } }).users[0]).toBe('deb');
    expect(chooseLoginUsers({ providerType: 'x' })).toMatchObject({ users: ['root', 'admin', 'debian', 'ubuntu', 'ec2-user', 'cloud-user', 'fedora', 'core'], reason: expect.stringMatching(/nothing names a user/) });
  });
});

describe('resolveCatalog', () => {
  const ctx = { dataDir: '/x', providerName: 'fk', settings: {}, publicKey: 'k', log: { info: () => undefined, warn: () => undefined } };
  it('chooses only what the driver lists, and only what was asked', async () => {
    const driver = fakeDriver();
    expect(await resolveCatalog(driver, { name: 'a', nodeId: 'n', idempotencyToken: 't', tags: {} }, ctx, 'fake')).toEqual({ chosen: {}, decisions: [] });
    const r = await resolveCatalog(driver, { name: 'a', nodeId: 'n', idempotencyToken: 't', tags: {}, size: 'medium', image: 'ubuntu-24.04' }, ctx, 'fake');
    expect(r.chosen).toMatchObject({ size: { nativeId: 'fake.medium' }, image: { nativeId: 'fake-ubuntu-2404' }, loginUsers: { reason: 'image property os_admin_user of fake-ubuntu-2404' } });
    expect(r.decisions.map((d) => d.subject)).toEqual(['size', 'image']);
    const { listSizes: _s, listImages: _i, ...plain } = driver;
    expect((await resolveCatalog(plain, { name: 'a', nodeId: 'n', idempotencyToken: 't', tags: {}, size: 'medium' }, ctx, 'lab')).chosen).toEqual({});
  });
});

describe('catalog settings', () => {
  it('a driver schema spreading them accepts the overrides and refuses nonsense', () => {
    const compiled = compileSchema({ type: 'object', additionalProperties: false, properties: { ...CATALOG_SETTINGS_PROPERTIES } });
    if ('error' in compiled) throw new Error(compiled.error);
    const validate = compiled.validate;
    expect(validate({ sizes: { small: 't3.small' }, images: { 'debian-12': 'ami-1', 'ubuntu-24.04': { 'eu-west-1': 'ami-2' } }, imageOwners: ['1'], loginUser: 'ops', loginUsers: { debian: 'deb' }, readinessTimeoutSeconds: 600 })).toBe(true);
    expect(validate({ readinessTimeoutSeconds: 0 })).toBe(false);
    expect(validate({ images: { 'debian-12': 5 } })).toBe(false);
  });
});
