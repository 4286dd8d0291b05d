import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { controlAddress } from '../../core/addresses.js';
import { forgetCallPolicies } from '../api-calls.js';
import { resolveCatalog } from '../catalog/index.js';
import { MemoryBackend } from '../emulation/hosts.js';
import { parseFaults } from '../emulation/faults.js';
import { ownershipTags, type MachineSpec, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { awaitReadiness, bootPoll, readinessProbe, releaseMachine } from '../readiness.js';
import { providerProblems } from '../registry.js';
import { runProviderContract } from '../testing/contract-suite.js';
import { metalApi, metalError, PAGE_SIZE } from './api.js';
import { deleteConfirm, equinixDriver as driver } from './driver.js';
import { startEquinixEmulator, type EquinixEmulator } from './emulator/index.js';
import { ensureKey } from './shared.js';

bootPoll.ms = 5;
deleteConfirm.ms = 5_000;
const quiet = { info: () => undefined, warn: () => undefined };
/** Fast retries: the call policy's backoff is for real clouds. */
const FAST = { requestsPerSecond: 1000, concurrency: 8 };

function context(emu: EquinixEmulator, providerName = 'm1', settings: Record<string, unknown> = {}, token = emu.token): ProviderContext {
  const provider = emu.documents(providerName)[1] as { settings: Record<string, unknown> };
  return { dataDir: '/nonexistent', providerName, settings: { ...provider.settings, rateLimit: FAST, ...settings }, credentials: { apiToken: token }, publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFormworkKey formwork', log: quiet };
}

const probeOf = (backend: MemoryBackend) => async (host: string) => {
  if (!backend.reachable(host)) throw new Error(`${host}: connection refused`);
};

let contractEmu: EquinixEmulator | undefined;
let contractBackend: MemoryBackend;
runProviderContract(
  'equinix (emulator, memory hosts)',
  async () => {
    contractBackend = new MemoryBackend();
    contractEmu = await startEquinixEmulator({ backend: contractBackend, bootDelayMs: 0 });
    // The suite's specs carry provider tag "contract": the provider is named so.
    return { driver, ctx: context(contractEmu, 'contract') };
  },
  {
    probe: (_s, host) => probeOf(contractBackend)(host),
    breakReadiness: () => contractEmu!.neverBootNextDevice(),
    cleanup: async () => contractEmu?.close(),
  },
);

describe('equinix driver', () => {
  let backend: MemoryBackend;
  let emu: EquinixEmulator;
  const realProbe = readinessProbe.tcp;
  const spec = (nodeId: string, over: Partial<MachineSpec> = {}): MachineSpec => ({ name: `web-${nodeId}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('m1', nodeId), size: 'small', image: 'debian-12', ...over });
  const wait = { waitSeconds: 5, log: () => undefined };
  const instances = () => emu.resources().filter((r) => r.kind === 'instance');

  beforeEach(async () => {
    forgetCallPolicies();
    backend = new MemoryBackend();
    emu = await startEquinixEmulator({ backend, bootDelayMs: 0 });
    readinessProbe.tcp = probeOf(backend);
  });
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    PAGE_SIZE.value = 100;
    await emu.close();
  });

  it('checks its settings at apply: project and metro required, no unknown setting', () => {
    expect(providerProblems({ type: 'equinix', settings: { metro: 'da' } }).map((p) => p.message).join()).toMatch(/project/);
    expect(providerProblems({ type: 'equinix', settings: { project: 'p', metro: 'da', baseUrl: 'http://x/metal/v1', readinessTimeoutSeconds: 3600, rateLimit: { requestsPerSecond: 2 }, sizes: { small: 'c3.small.x86' } } })).toEqual([]);
    expect(providerProblems({ type: 'equinix', settings: { project: 'p', metro: 'da', facility: 'ewr1' } })[0].message).toContain('unknown equinix setting "facility"');
  });

  it('refuses at check, naming what to fix: a wrong token, an unknown project, an unknown metro, a malformed endpoint; a good one passes', async () => {
    await expect(driver.check!(context(emu, 'm1', {}, 'wrong-token'))).rejects.toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringMatching(/Invalid authentication token.*apiToken/) });
    await expect(driver.check!(context(emu, 'm1', { project: 'no-such-project' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('settings.project "no-such-project"') });
    await expect(driver.check!(context(emu, 'm1', { metro: 'zz' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/settings\.metro "zz" is not a Metal metro; the metros are: da, sv, am/) });
    await expect(driver.check!(context(emu, 'm1', { baseUrl: 'not a url' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('settings.baseUrl') });
    const e = await driver.check!(context(emu, 'm1', {}, 'wrong-token')).catch((x: Error) => x);
    expect(String((e as Error).message)).not.toContain(emu.token);
    await driver.check!(context(emu));
    expect(emu.resources()).toEqual([]);
  });

  it('makes a device with the tags, token, plan, OS, metro and project key asked; root logs in; the host is on the public side', async () => {
    const ctx = context(emu);
    await driver.prepare!(ctx);
    const { chosen } = await resolveCatalog(driver, spec('n1'), ctx, 'equinix');
    expect(chosen.size).toMatchObject({ nativeId: 'c3.small.x86', reason: expect.stringContaining('the cheapest (0.5/h)') });
    expect(chosen.image?.nativeId).toBe('debian_12');
    expect(chosen.loginUsers?.users[0]).toBe('root');
    const m = await driver.createMachine({ ...spec('n1'), chosen }, ctx);
    const rec = [...emu.state.devices.values()][0]!.device;
    expect(rec.tags).toEqual(expect.arrayContaining(['formwork.io/node-id=n1', 'formwork.io/provider=m1', 'formwork.io/idempotency-token=formwork-n1-0']));
    expect(rec.customdata).toMatchObject({ formwork: { idempotencyToken: 'formwork-n1-0', tags: spec('n1').tags } });
    expect(rec).toMatchObject({ plan: { slug: 'c3.small.x86' }, operating_system: { slug: 'debian_12' }, metro: { code: 'da' } });
    expect((rec as unknown as { ssh_keys: { href: string }[] }).ssh_keys).toHaveLength(1);
    expect([...backend.hosts.values()][0]!.request).toMatchObject({ side: 'public', onlyLoginUser: 'root', publicKey: expect.stringContaining('formwork') });
    const ready = await awaitReadiness(driver, m, ctx, wait);
    expect(ready).toMatchObject({ state: 'running', loginUsers: expect.arrayContaining(['root']), zone: 'da', size: { normalized: 'small', native: 'c3.small.x86' } });
    expect(ready.hostKey).toBeUndefined();
    expect(ready.decisions?.find((d) => d.subject === 'address')?.reason).toContain('ip_addresses[].public=true');
  });

  it('classifies addresses by their public/management flags, never by position: the public management IPv4 is the control address', async () => {
    const ctx = context(emu);
    const m = await driver.createMachine(spec('n2'), ctx);
    const d = [...emu.state.devices.values()][0]!.device;
    // Listed private first, then IPv6, then the public IPv4: the order must not matter.
    d.ip_addresses = [...(d.ip_addresses ?? [])].reverse();
    const got = (await driver.getMachine(m.nativeId, ctx))!;
    const pub = d.ip_addresses.find((a) => a.public && a.address_family === 4)!.address;
    expect(controlAddress(got.addresses)).toBe(pub);
    expect(got.addresses.find((a) => a.address === pub)).toMatchObject({ role: 'public', family: 4, reason: 'ip_addresses[].public=true (management IPv4)' });
    expect(got.addresses.find((a) => a.family === 6)).toMatchObject({ role: 'public' });
    expect(got.addresses.find((a) => a.role === 'private')).toMatchObject({ family: 4, reason: 'ip_addresses[].public=false (management IPv4)' });
    // A "public" 10.x (an API-compatible cloud's range) is still public: ranges are not evidence.
    d.ip_addresses = [{ address: '10.9.9.9', address_family: 4, public: true, management: true }, { address: '198.51.100.7', address_family: 4, public: false, management: true }];
    const odd = (await driver.getMachine(m.nativeId, ctx))!;
    expect(controlAddress(odd.addresses)).toBe('10.9.9.9');
  });

  it('uses the platform key already registered under another label, and finds a key whose create answer was lost; never registers it twice', async () => {
    const ctx = context(emu);
    const other = await fetch(`${emu.endpoint}/projects/${emu.projectId}/ssh-keys`, { method: 'POST', headers: { 'X-Auth-Token': emu.token, 'content-type': 'application/json' }, body: JSON.stringify({ label: 'someone', key: ctx.publicKey }) }).then((r) => r.json() as Promise<{ id: string }>);
    expect(await ensureKey(metalApi(ctx), ctx)).toBe(other.id);
    emu.state.keys.clear();
    // ensureKey's calls: the key list, then the POST, whose answer is lost.
    const next = emu.faults.next.bind(emu.faults);
    let calls = 0;
    emu.faults.next = () => (++calls === 2 ? 'lost' : next());
    const id = await ensureKey(metalApi(ctx), ctx);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect([...emu.state.keys.values()].map((k) => k.id)).toEqual([id]);
  });

  it('a create whose answer is lost is found by its token tag, never made twice', async () => {
    const ctx = context(emu);
    await driver.prepare!(ctx);
    let lostOnce = true;
    const next = emu.faults.next.bind(emu.faults);
    // The create's calls: the token lookup, the key lookup, then the POST: that one's answer is lost.
    let calls = 0;
    emu.faults.next = () => (++calls === 3 && lostOnce ? ((lostOnce = false), 'lost') : next());
    const m = await driver.createMachine(spec('n3', { chosen: { size: { nativeId: 'c3.small.x86', normalized: 'small', reason: 'test' }, image: { nativeId: 'debian_12', normalized: 'debian-12', reason: 'test' } } }), ctx);
    expect(lostOnce).toBe(false);
    expect(emu.resources().filter((r) => r.kind === 'instance')).toHaveLength(1);
    expect(emu.resources().find((r) => r.kind === 'instance')!.id).toBe(m.nativeId);
    const again = await driver.createMachine(spec('n3'), ctx);
    expect(again.nativeId).toBe(m.nativeId);
    expect(emu.state.devices.size).toBe(1);
  });

  it('a device answered queued with no address is read again until Metal assigns its addresses', async () => {
    await emu.close();
    backend = new MemoryBackend({ createDelayMs: 400 });
    emu = await startEquinixEmulator({ backend, bootDelayMs: 0 });
    const ctx = context(emu);
    const m = await driver.createMachine(spec('late'), ctx);
    expect(controlAddress(m.addresses)).toBe([...backend.hosts.values()][0]!.publicAddress);
  });

  it('lists machines across pages (page/per_page, meta.next), only its own', async () => {
    PAGE_SIZE.value = 2;
    const ctx = context(emu);
    const other = context(emu, 'm2');
    for (const n of ['p1', 'p2', 'p3', 'p4', 'p5']) await driver.createMachine(spec(n), ctx);
    await driver.createMachine({ ...spec('q1'), tags: ownershipTags('m2', 'q1') }, other);
    expect((await driver.listMachines(ctx)).map((m) => m.tags['formwork.io/node-id']).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect((await driver.listMachines(other)).map((m) => m.name)).toEqual(['web-q1']);
    const page = await fetch(`${emu.endpoint}/projects/${emu.projectId}/devices?page=2&per_page=2`, { headers: { 'X-Auth-Token': emu.token } }).then((r) => r.json() as Promise<{ meta: Record<string, unknown>; devices: unknown[] }>);
    expect(page.devices).toHaveLength(2);
    expect(page.meta).toMatchObject({ current_page: 2, last_page: 3, total: 6, next: { href: expect.stringContaining('page=3') } });
  });

  it('a failed build is deleted when seen and reported as error; a device moved away after it is gone', async () => {
    const ctx = context(emu);
    emu.failNextBuilds(1);
    const m = await driver.createMachine(spec('f1'), ctx);
    await expect(awaitReadiness(driver, m, ctx, wait)).rejects.toMatchObject({ code: 'MACHINE_FAILED', message: expect.stringContaining('went to error') });
    await emu.settled();
    expect(instances()).toEqual([]);
    expect(backend.hosts.size).toBe(0);
    emu.failNextBuilds(1, true);
    const moved = await driver.createMachine(spec('f2'), ctx);
    await expect(awaitReadiness(driver, moved, ctx, wait)).rejects.toMatchObject({ code: 'MACHINE_FAILED' });
    expect(await driver.getMachine(moved.nativeId, ctx)).toBeUndefined();
    await releaseMachine(driver, moved.nativeId, ctx);
    expect(instances()).toEqual([]);
  });

  it('a failed device moved away that answers 403 is gone for getMachine and deleteMachine; a 403 on the project is still PROVIDER_AUTH', async () => {
    const ctx = context(emu);
    emu.failNextBuilds(1, 'forbidden');
    const moved = await driver.createMachine(spec('f403'), ctx);
    await emu.settled();
    expect((await fetch(`${emu.endpoint}/devices/${moved.nativeId}`, { headers: { 'X-Auth-Token': emu.token } })).status).toBe(403);
    expect(await driver.getMachine(moved.nativeId, ctx)).toBeUndefined();
    await driver.deleteMachine(moved.nativeId, ctx);
    // Elsewhere (the project) a 403 still says the token lacks access.
    expect(metalError(403, { errors: ['You are not authorized to view this project'] }, null, 'GetProject').code).toBe('PROVIDER_AUTH');
  });

  it('a device Metal refuses to delete while provisioning (422) is deleted once its build ends', async () => {
    await emu.close();
    backend = new MemoryBackend();
    emu = await startEquinixEmulator({ backend, bootDelayMs: 300 });
    const ctx = context(emu);
    const m = await driver.createMachine(spec('busy'), ctx);
    expect(emu.state.devices.get(m.nativeId)!.device.state).toBe('provisioning');
    await driver.deleteMachine(m.nativeId, ctx);
    await emu.settled();
    expect(instances()).toEqual([]);
    expect(backend.hosts.size).toBe(0);
  });

  it('a build longer than the readiness wait is waited for again, never recreated; a timeout leaves it for its deletion', async () => {
    const ctx = context(emu, 'm1', { readinessTimeoutSeconds: 0.05 });
    emu.neverBootNextDevice();
    const m = await driver.createMachine(spec('slow'), ctx);
    await expect(awaitReadiness(driver, m, ctx, { ...wait, waitSeconds: 0.05 })).rejects.toMatchObject({ code: 'MACHINE_FAILED', message: expect.stringContaining('still booting') });
    expect((await driver.createMachine(spec('slow'), ctx)).nativeId).toBe(m.nativeId);
    await releaseMachine(driver, m, ctx);
    await emu.settled();
    expect(instances()).toEqual([]);
    expect(backend.hosts.size).toBe(0);
  });

  it('maps the API\'s errors: 422 names the refusal, an unknown plan or OS is PROVIDER_INVALID', async () => {
    const ctx = context(emu);
    await expect(driver.createMachine(spec('e1', { size: 'nope.x86' }), ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('settings.sizes') });
    await expect(driver.createMachine(spec('e2', { chosen: { size: { nativeId: 'nope.x86', normalized: 'nope', reason: 't' }, image: { nativeId: 'debian_12', normalized: 'debian-12', reason: 't' } } }), ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('Plan nope.x86 is not a valid plan') });
    await expect(driver.createMachine(spec('e3', { name: 'bad name!' }), ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID' });
    expect(emu.resources().filter((r) => r.kind === 'instance')).toEqual([]);
  });

  it('lists what it owns and deletes an orphan of each kind', async () => {
    const ctx = context(emu);
    await driver.prepare!(ctx);
    await driver.createMachine(spec('o1'), ctx);
    const owned = await driver.listOwned!(ctx);
    expect(owned.map((r) => r.kind).sort()).toEqual(['key-pair', 'machine']);
    for (const r of owned) await driver.deleteOwned!(r, ctx);
    await emu.settled();
    expect(emu.resources()).toEqual([]);
  });

  it('under 20% throttling, 5% errors and one never-boot, eight machines end ready or cleanly failed, and nothing is left after deletes', async () => {
    await emu.close();
    forgetCallPolicies();
    backend = new MemoryBackend();
    emu = await startEquinixEmulator({ backend, bootDelayMs: 5, faults: parseFaults('throttle=20%,error=5%,never-boot=1,retry-after=0,seed=11') });
    readinessProbe.tcp = probeOf(backend);
    const ctx = context(emu);
    await driver.prepare!(ctx);
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i): Promise<{ ok: true; m: ProvisionedMachine } | { ok: false; reason: string; id?: string }> => {
        let made: ProvisionedMachine | undefined;
        try {
          made = await driver.createMachine(spec(`z${i}`), ctx);
          return { ok: true, m: await awaitReadiness(driver, made, ctx, { ...wait, waitSeconds: 2 }) };
        } catch (e) {
          // As provision does on a failure: the machine made is released.
          if (made) await releaseMachine(driver, made, ctx);
          return { ok: false, reason: (e as Error).message, id: made?.nativeId };
        }
      }),
    );
    const failed = results.filter((r) => !r.ok);
    expect(failed.length).toBeGreaterThanOrEqual(1); // the never-boot one
    for (const f of failed) expect(f.reason).toMatch(/\S/);
    expect(emu.faults.injected.throttle).toBeGreaterThan(0);
    const ready = results.filter((r): r is { ok: true; m: ProvisionedMachine } => r.ok);
    for (const r of ready) expect(r.m.state).toBe('running');
    // Nothing of the failed ones is left; each ready one is there exactly once.
    const instances = emu.resources().filter((r) => r.kind === 'instance');
    expect(instances.map((r) => r.id).sort()).toEqual(ready.map((r) => r.m.nativeId).sort());
    for (const r of ready) await releaseMachine(driver, r.m, ctx);
    await driver.teardown!(ctx);
    await emu.settled();
    expect(emu.resources()).toEqual([]);
    expect(backend.hosts.size).toBe(0);
  }, 30_000);
});
