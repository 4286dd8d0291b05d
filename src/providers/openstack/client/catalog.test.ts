import { describe, expect, it } from 'vitest';
import { fixture } from '../testing/fake-cloud.js';
import { selectEndpoint, type CatalogEntry } from './catalog.js';
import { negotiateMicroversion, parseVersions, pickVersion, unversionedRoot, versionedBase } from './discovery.js';

const catalog = fixture<{ token: { catalog: CatalogEntry[] } }>('libcloud/openstack/_v3__auth.json').token.catalog;
const twoRegions: CatalogEntry[] = [...catalog, { type: 'network', endpoints: [{ url: 'https://net.r2.example.com', interface: 'public', region: 'RegionTwo' }] }];

describe('selectEndpoint', () => {
  it('chooses by interface and region', () => {
    expect(selectEndpoint(catalog, { serviceType: 'compute' })).toBe('http://192.168.18.100:8774/v2/9c4693dce56b493b9b83197d900f7fba');
    expect(selectEndpoint(catalog, { serviceType: 'compute', interface: 'internal', region: 'regionOne' })).toBe('http://controller:8774/v2/9c4693dce56b493b9b83197d900f7fba');
    expect(selectEndpoint(catalog, { serviceType: 'image', interface: 'internal' })).toBe('http://192.168.200.1:9292');
    expect(selectEndpoint(twoRegions, { serviceType: 'network', region: 'RegionTwo' })).toBe('https://net.r2.example.com');
    expect(selectEndpoint(catalog, { serviceType: 'block-storage' })).toBe('http://192.168.18.100:8776/v2/9c4693dce56b493b9b83197d900f7fba');
  });

  it('says what the catalog has when the choice finds nothing', () => {
    expect(() => selectEndpoint(twoRegions, { serviceType: 'network' })).toThrow(/several regions \(regionOne, RegionTwo\): set region_name/);
    expect(() => selectEndpoint(catalog, { serviceType: 'dns' })).toThrow(/no dns service \(it lists: compute, identity, image, network, volume, volumev2\)/);
    expect(() => selectEndpoint([{ type: 'compute', endpoints: [{ url: 'u', interface: 'public', region: 'r' }] }], { serviceType: 'compute', interface: 'admin' })).toThrow(/no admin endpoint.*it has: public/);
  });

  it('takes an override with the region filled in', () => {
    expect(selectEndpoint(catalog, { serviceType: 'network', region: 'dfw', override: 'https://{region_name}.net.example.com' })).toBe('https://dfw.net.example.com');
  });
});

describe('discovery', () => {
  const compute = parseVersions(fixture('openstacksdk/unit-fixtures/compute-version.json'));
  it('reads every recorded version document', () => {
    expect(pickVersion(compute, 2)).toMatchObject({ id: 'v2.1', minMicroversion: '2.10', maxMicroversion: '2.53' });
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/discovery.json')), 3)?.id).toBe('v3.6');
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/image-version.json')), 2)?.id).toBe('v2.3');
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/image-version-v1.json')), 2)).toBeUndefined();
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/old-compute-version.json')), 2)?.maxMicroversion).toBe('2.50');
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/old-compute-version.json')), 2)?.id).toBe('v2.1');
    expect(pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/bad-glance-version.json')), 2)).toBeUndefined();
  });

  it("keeps the catalog's host and the endpoint's prefix, taking only the version segment from self links", () => {
    const broken = pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/image-version-broken.json')), 2)!;
    expect(versionedBase('https://image.cloud.example', broken)).toBe('https://image.cloud.example/v2');
    const suburl = pickVersion(parseVersions(fixture('openstacksdk/unit-fixtures/image-version-suburl.json')), 2)!;
    expect(versionedBase(unversionedRoot('https://cloud.example/image/v2'), suburl)).toBe('https://cloud.example/image/v2');
    expect(unversionedRoot('http://192.168.18.100:8774/v2/9c46')).toBe('http://192.168.18.100:8774');
  });

  it('negotiates the highest microversion both sides accept', () => {
    const v21 = pickVersion(compute, 2)!;
    expect(negotiateMicroversion(v21, { min: '2.1', max: '2.79' })).toBe('2.53');
    expect(negotiateMicroversion(v21, { min: '2.1', max: '2.20' })).toBe('2.20');
    expect(negotiateMicroversion({ minMicroversion: '2.1', maxMicroversion: '2.95' }, { min: '2.1', max: '2.79' })).toBe('2.79');
    expect(negotiateMicroversion({}, { min: '2.1', max: '2.79' })).toBeUndefined();
    expect(() => negotiateMicroversion({ minMicroversion: '2.80', maxMicroversion: '2.95' }, { min: '2.1', max: '2.79' })).toThrow(/2.80–2.95/);
  });
});
