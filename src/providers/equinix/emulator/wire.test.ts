import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../emulation/hosts.js';
import { EMULATOR_STATE_PATH, parseFaults } from '../../emulation/faults.js';
import { classifyAddresses, toMachine } from '../machines.js';
import { planSize } from '../catalog.js';
import type { MetalDevice, MetalPlan } from '../wire.js';
import { startEquinixEmulator, type EquinixEmulator } from './index.js';

/** The recorded responses of the real API (libcloud's fixtures). */
const FIXTURES = join(import.meta.dirname, '../testing/fixtures/libcloud/equinixmetal');
const fixture = <T = Record<string, unknown>>(name: string): T => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
const keys = (o: object) => Object.keys(o).sort();

let emu: EquinixEmulator;
const call = async (method: string, path: string, body?: unknown, token = emu.token) => {
  const res = await fetch(`${emu.endpoint}${path}`, { method, headers: { 'X-Auth-Token': token, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, headers: res.headers, body: res.status === 204 ? undefined : ((await res.json()) as Record<string, any>) };
};

beforeAll(async () => {
  emu = await startEquinixEmulator({ backend: new MemoryBackend(), bootDelayMs: 0 });
});
afterAll(async () => emu?.close());

describe('the Equinix Metal emulator speaks the recorded wire format', () => {
  it('answers devices with every field the recorded device has, ip_addresses entries included', async () => {
    const key = await call('POST', `/projects/${emu.projectId}/ssh-keys`, { label: 'k', key: 'ssh-ed25519 AAAAC3Nza test' });
    expect(key.status).toBe(201);
    const recordedKey = fixture<{ ssh_keys: object[] }>('sshkeys.json').ssh_keys[0];
    for (const k of keys(recordedKey).filter((k) => k !== 'user')) expect(key.body).toHaveProperty(k);
    const made = await call('POST', `/projects/${emu.projectId}/devices`, { hostname: 'shape-1', plan: 'c3.small.x86', metro: 'da', operating_system: 'debian_12', tags: ['a=b'], customdata: { x: 1 }, project_ssh_keys: [key.body!.id] });
    expect(made.status).toBe(201);
    await emu.settled();
    const got = (await call('GET', `/devices/${made.body!.id}`)).body!;
    const recorded = fixture<{ devices: Record<string, unknown>[] }>('devices_for_project.json').devices[0];
    const wanted = ['id', 'short_id', 'hostname', 'description', 'state', 'tags', 'billing_cycle', 'user', 'locked', 'created_at', 'updated_at', 'customdata', 'operating_system', 'facility', 'project', 'ssh_keys', 'ip_addresses', 'plan', 'href'];
    for (const k of wanted) {
      expect(recorded).toHaveProperty(k);
      expect(got).toHaveProperty(k);
    }
    expect(got).toMatchObject({ state: 'active', tags: ['a=b'], customdata: { x: 1 }, user: 'root' });
    const recordedIp = (recorded.ip_addresses as Record<string, unknown>[])[0];
    for (const k of ['id', 'address_family', 'netmask', 'public', 'cidr', 'management', 'manageable', 'enabled', 'network', 'address', 'gateway', 'href', 'assigned_to']) {
      expect(recordedIp).toHaveProperty(k);
      for (const ip of got.ip_addresses) expect(ip).toHaveProperty(k);
    }
    expect(got.ip_addresses.map((a: { public: boolean; address_family: number }) => `${a.public}/${a.address_family}`)).toEqual(['true/4', 'true/6', 'false/4']);
    for (const k of keys(fixture<{ operating_systems: object[] }>('operatingsystems.json').operating_systems[0])) expect(got.operating_system).toHaveProperty(k);
    for (const k of ['id', 'slug', 'name', 'line', 'specs', 'pricing']) expect(got.plan).toHaveProperty(k);
    expect(await call('DELETE', `/devices/${made.body!.id}`)).toMatchObject({ status: 204 });
    expect((await call('GET', `/devices/${made.body!.id}`)).status).toBe(404);
    expect((await call('DELETE', `/ssh-keys/${key.body!.id}`)).status).toBe(204);
  });

  it('pages like the recorded meta, lists plans, operating systems and metros in their shapes', async () => {
    const list = await call('GET', `/projects/${emu.projectId}/devices?page=1`);
    const recordedMeta = fixture<{ meta: object }>('devices_for_project.json').meta;
    expect(keys(list.body!.meta)).toEqual(keys(recordedMeta));
    const plans = (await call('GET', '/plans')).body!.plans as MetalPlan[];
    for (const k of keys(fixture<{ plans: object[] }>('plans.json').plans[0]).filter((k) => k !== 'description')) expect(plans[0]).toHaveProperty(k);
    expect((await call('GET', '/operating-systems')).body!.operating_systems.map((o: { slug: string }) => o.slug)).toContain('debian_12');
    expect((await call('GET', '/locations/metros')).body!.metros.map((m: { code: string }) => m.code)).toEqual(['da', 'sv', 'am']);
  });

  it('refuses in Metal\'s error format: a bad token, an unknown project, an invalid device', async () => {
    expect(await call('GET', '/projects', undefined, 'bad')).toMatchObject({ status: 401, body: { errors: ['Invalid authentication token'] } });
    expect(await call('GET', '/projects/nope')).toMatchObject({ status: 404, body: { errors: ['Not found'] } });
    expect(await call('POST', `/projects/${emu.projectId}/devices`, { hostname: '', plan: 'c3.small.x86', metro: 'da', operating_system: 'debian_12' })).toMatchObject({ status: 422, body: { errors: ["Hostname can't be blank"] } });
    const state = await fetch(`${emu.endpoint.replace(/\/metal\/v1$/, '')}${EMULATOR_STATE_PATH}`).then((r) => r.json());
    expect(state).toEqual({ resources: [] });
  });

  it('throttles with 429 and Retry-After, fails with 5xx, and a lost create is made all the same', async () => {
    const faulty = await startEquinixEmulator({ backend: new MemoryBackend(), bootDelayMs: 0, faults: parseFaults('throttle=100%,retry-after=3') });
    const res = await fetch(`${faulty.endpoint}/plans`, { headers: { 'X-Auth-Token': faulty.token } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.json()).toEqual({ errors: [expect.stringContaining('Rate limit')] });
    await faulty.close();
    const lossy = await startEquinixEmulator({ backend: new MemoryBackend(), bootDelayMs: 0, faults: parseFaults('lost=100%') });
    const lost = await fetch(`${lossy.endpoint}/projects/${lossy.projectId}/devices`, { method: 'POST', headers: { 'X-Auth-Token': lossy.token }, body: JSON.stringify({ hostname: 'l1', plan: 'c3.small.x86', metro: 'da', operating_system: 'debian_12' }) });
    expect(lost.status).toBe(500);
    expect(lossy.resources().filter((r) => r.kind === 'instance')).toHaveLength(1);
    await lossy.close();
    expect(lossy.resources()).toEqual([]);
  });
});

describe('the driver reads the recorded responses', () => {
  it('classifies the recorded device\'s addresses by their flags and maps its state', () => {
    const d = fixture<{ devices: MetalDevice[] }>('devices_for_project.json').devices[0];
    const m = toMachine(d);
    expect(m).toMatchObject({ nativeId: d.id, state: 'running', size: { native: 'baremetal_1' } });
    expect(m.addresses[0]).toMatchObject({ address: '147.75.102.193', family: 4, role: 'public', reason: 'ip_addresses[].public=true (management IPv4)' });
    expect(m.addresses.find((a) => a.role === 'private')?.family).toBe(4);
    const created = toMachine(fixture<MetalDevice>('device_create.json'));
    expect(created).toMatchObject({ state: 'booting', addresses: [] });
    expect(classifyAddresses(fixture<{ devices: MetalDevice[] }>('devices.json').devices[0].ip_addresses).map((a) => a.role)).toEqual(['public', 'public', 'private']);
  });

  it('reads the recorded plans as sizes', () => {
    const sizes = fixture<{ plans: MetalPlan[] }>('plans.json').plans.map(planSize);
    expect(sizes[0]).toMatchObject({ nativeId: 'baremetal_1', cpus: 1, ramMiB: 16384, diskGiB: 240, price: 0.4 });
    expect(sizes[1]).toMatchObject({ ramMiB: 2 * 1024 * 1024 });
  });
});
