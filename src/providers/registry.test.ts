import { describe, expect, it } from 'vitest';
import { descriptorFor, loadDriver, providerProblems, providerTypes } from './registry.js';

describe('the provider registry', () => {
  it('knows lab, openstack, static and the clouds, and refuses another type naming them', async () => {
    expect(providerTypes()).toEqual(expect.arrayContaining(['gce', 'lab', 'openstack', 'static']));
    expect(() => descriptorFor('nope')).toThrow(`unknown provider type "nope"; known: ${providerTypes().join(', ')}`);
    await expect(loadDriver('nope')).rejects.toMatchObject({ code: 'VALIDATION', details: { known: providerTypes() } });
  });

  it('loads a driver once, of the type asked for', async () => {
    const a = await loadDriver('static');
    expect(a.type).toBe('static');
    expect(await loadDriver('static')).toBe(a);
  });

  it("checks settings against the type's schema, naming each setting at fault", () => {
    expect(providerProblems({ type: 'lab', settings: { subnetIndex: 3 } })).toEqual([]);
    expect(providerProblems({ type: 'lab' })).toEqual([]);
    expect(providerProblems({ type: 'lab', settings: { subnetIndex: '3', mirorr: 'x' } })).toEqual([
      { path: '/settings/mirorr', message: 'unknown lab setting "mirorr"; known: subnetIndex, baseDir, mirror, bootTimeoutMs, stopTimeoutMs' },
      { path: '/settings/subnetIndex', message: 'lab setting subnetIndex must be integer' },
    ]);
    expect(providerProblems({ type: 'static', settings: { machines: [{ name: 'h1', address: 'not-an-ip', user: 'root' }] } }).map((p) => p.path)).toContain('/settings/machines/0/address');
    expect(providerProblems({ type: 'static', settings: {} })).toEqual([{ path: '/settings/machines', message: 'static setting machines field "machines" is required' }]);
  });
});
