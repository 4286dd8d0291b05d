import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forgetCallPolicies } from '../api-calls.js';
import { ownershipTags, type MachineSpec } from '../provider.js';
import { awaitReadiness, bootPoll, readinessProbe } from '../readiness.js';
import { providerProblems } from '../registry.js';
import { runProviderContract } from '../testing/contract-suite.js';
import { MemoryBackend, type HostRequest } from '../emulation/hosts.js';
import { generateSshKeypair } from '../emulation/keys.js';
import { listPage } from './api.js';
import { forgetTokens } from './auth.js';
import { MACHINE_TYPES } from './emulator/index.js';
import { fingerprint } from './host-key.js';
import { tokenLabel } from './labels.js';
import { gceDriver as driver } from './driver.js';
import { forgetRefusals, refusalMemory } from './reachable.js';
import { emulatedGce, type EmulatedGce } from './testing/emulated.js';

bootPoll.ms = 5;

let contract: EmulatedGce | undefined;
let breakFrom: Set<string> | undefined;
runProviderContract(
  'gce (emulator, memory backend)',
  async () => {
    contract = await emulatedGce('contract');
    return { driver, ctx: contract.ctx };
  },
  {
    probe: async (_s, host) => {
      const { emu, backend } = contract!;
      const broken = breakFrom ? [...emu.state.instances.values()].filter((i) => !breakFrom!.has(i.json.name)) : [];
      const brokenHost = broken.some((i) => i.json.networkInterfaces.some((n) => n.networkIP === host || n.accessConfigs.some((a) => a.natIP === host)));
      if (brokenHost || !backend.reachable(host)) throw new Error(`${host}: connection refused`);
    },
    breakReadiness: () => void (breakFrom = new Set(contract!.emu.state.instances.keys())),
    cleanup: async () => contract?.emu.close(),
  },
);

describe('gce driver', () => {
  let g: EmulatedGce;
  const realProbe = readinessProbe.tcp;
  const spec = (nodeId: string, over: Partial<MachineSpec> = {}): MachineSpec => ({ name: `web-${nodeId}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('gce1', nodeId), size: 'small', image: 'debian-12', ...over });
  const wait = { waitSeconds: 5, log: () => undefined };
  beforeEach(async () => {
    g = await emulatedGce('gce1');
    readinessProbe.tcp = async (host) => {
      if (!g.backend.reachable(host)) throw new Error(`${host}: connection refused`);
    };
  });
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    forgetRefusals();
    forgetCallPolicies();
    forgetTokens();
    await g.emu.close();
  });

  it('checks its settings at apply: project and zone required, no unknown setting', () => {
    expect(providerProblems({ type: 'gce', settings: { zone: 'us-central1-a' } })[0].message).toContain('project');
    expect(providerProblems({ type: 'gce', settings: { project: 'p', zone: 'z', network: 'n', externalAccess: 'none', rateLimit: { requestsPerSecond: 2 }, sizes: { small: 'e2-small' }, readinessTimeoutSeconds: 60 } })).toEqual([]);
    expect(providerProblems({ type: 'gce', settings: { project: 'p', zone: 'z', region: 'r' } })[0].message).toContain('unknown gce setting "region"');
  });

  it('check() refuses a wrong key, an unknown project or zone and a malformed endpoint, naming the setting; never the key', async () => {
    await driver.check!(g.ctx);
    const other = await emulatedGce('other');
    try {
      const wrong = { ...g.ctx, credentials: { serviceAccountJson: other.emu.serviceAccountJson.replace(other.emu.endpoint.replace('/compute/v1', ''), g.emu.endpoint.replace('/compute/v1', '')) } };
      const e = await driver.check!(wrong).catch((x: Error) => x);
      expect(e).toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringMatching(/refused service account formwork@formwork-emulated.iam.gserviceaccount.com \(invalid_grant: Invalid JWT Signature.\): fix the credentialsSecret's serviceAccountJson/) });
      expect((e as Error).message).not.toContain('PRIVATE KEY');
    } finally {
      await other.emu.close();
    }
    await expect(driver.check!({ ...g.ctx, credentials: { serviceAccountJson: '{"nope": 1}' } })).rejects.toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringContaining('no private_key or client_email') });
    await expect(driver.check!({ ...g.ctx, settings: { ...g.ctx.settings, project: 'nope' } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('fix settings.project') });
    await expect(driver.check!({ ...g.ctx, settings: { ...g.ctx.settings, zone: 'moon-1a' } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('settings.zone "moon-1a" is not a zone of project formwork-emulated') });
    await expect(driver.check!({ ...g.ctx, settings: { ...g.ctx.settings, apiEndpoint: 'not a url' } })).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('settings.apiEndpoint "not a url" is not a URL') });
  });

  it('inserts with ssh-keys, enable-oslogin FALSE, labels, the firewall tag and a requestId; finds it again by token; records its decisions', async () => {
    await driver.prepare!(g.ctx);
    const m = await driver.createMachine(spec('n1'), g.ctx);
    const inst = g.emu.state.instances.get(m.nativeId)!;
    const items = Object.fromEntries(inst.json.metadata.items.map((i) => [i.key, i.value]));
    expect(items['ssh-keys']).toBe(`formwork:${g.ctx.publicKey}`);
    expect(items['enable-oslogin']).toBe('FALSE');
    expect(inst.json.labels).toMatchObject({ 'formwork-managed-by': 'formwork', 'formwork-provider': 'gce1', 'formwork-node-id': 'n1' });
    expect(inst.json.tags.items).toEqual(['formwork-ssh']);
    expect(inst.json.machineType).toMatch(/machineTypes\/e2-small$/);
    expect(m).toMatchObject({ loginUsers: expect.arrayContaining(['formwork']), image: { normalized: 'debian-12', native: 'projects/debian-cloud/global/images/debian-12-bookworm-v20240110' }, tags: ownershipTags('gce1', 'n1') });
    expect(m.addresses).toEqual([expect.objectContaining({ role: 'private', reason: expect.stringContaining('networkInterfaces[0].networkIP') })]);
    expect(m.decisions?.map((d) => d.subject)).toEqual(['login-users', 'ssh-key', 'network', 'firewall', 'address-path']);
    expect((await driver.createMachine(spec('n1'), g.ctx)).nativeId).toBe(m.nativeId);
    expect(g.emu.state.instances.size).toBe(1);
    const ready = await awaitReadiness(driver, m, g.ctx, wait);
    expect(ready.addresses.find((a) => a.role === 'public')?.reason).toMatch(/^networkInterfaces\[0\]\.accessConfigs\[0\]\.natIP \(ONE_TO_ONE_NAT access config "External NAT"\); TCP\/22 answered/);
    expect(g.emu.state.firewalls.get('formwork-gce1-ssh')).toMatchObject({ allowed: [{ IPProtocol: 'tcp', ports: ['22'] }], targetTags: ['formwork-ssh'] });
  });

  it('a create whose insert answer is lost is the same insert (requestId), and the machine is found by token before another', async () => {
    const lossy = await emulatedGce('gce1', { faults: 'lost=100%' });
    try {
      lossy.emu.faults.spec.lost = 0;
      const s = spec('n2');
      // The 8th call of a create is its insert (after the token, the lookup by token, the project and the catalog): done, then answered 503.
      const realNext = lossy.emu.faults.next.bind(lossy.emu.faults);
      let calls = 0;
      let lostInserts = 0;
      lossy.emu.faults.next = () => (++calls === 8 ? (lostInserts++, 'lost') : realNext());
      const m = await driver.createMachine(s, lossy.ctx);
      expect(lostInserts).toBe(1);
      expect([...lossy.emu.state.operations.values()].filter((o) => o.operationType === 'insert')).toHaveLength(1);
      expect(lossy.emu.state.instances.size).toBe(1);
      expect((await driver.createMachine(s, lossy.ctx)).nativeId).toBe(m.nativeId);
      expect(lossy.emu.state.instances.size).toBe(1);
    } finally {
      await lossy.emu.close();
    }
  });

  it('a create retried after a failed attempt deleted its instance makes it again, though Compute answers the old requestId with the old operation', async () => {
    const first = await driver.createMachine(spec('n2b'), g.ctx);
    await driver.deleteMachine(first.nativeId, g.ctx);
    const again = await driver.createMachine(spec('n2b'), g.ctx);
    expect(again).toMatchObject({ nativeId: first.nativeId, state: 'running' });
    expect([...g.emu.state.operations.values()].filter((o) => o.operationType === 'insert')).toHaveLength(2);
  });

  it('lists with the documented filter form and re-checks every label: an endpoint ignoring the filter never hands a create another node\'s instance', async () => {
    const realFetch = globalThis.fetch;
    const filters: string[] = [];
    globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const filter = url.pathname.endsWith('/instances') ? url.searchParams.get('filter') : null;
      if (filter !== null) filters.push(filter);
      url.searchParams.delete('filter');
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      const first = await driver.createMachine(spec('f1'), g.ctx);
      const second = await driver.createMachine(spec('f2'), g.ctx);
      expect(second.nativeId).not.toBe(first.nativeId);
      expect(g.emu.state.instances.size).toBe(2);
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(filters[0]).toBe(`(labels.formwork-managed-by = "formwork") (labels.formwork-provider = "gce1") (labels.formwork-token = "${tokenLabel('formwork-f1-0')}")`);
    expect(await driver.listMachines(g.ctx)).toHaveLength(2); // the emulator reads the documented form
  });

  it('ZONE_RESOURCE_POOL_EXHAUSTED on the insert operation is a late failure: the instance is deleted and the reason given', async () => {
    g.emu.policy.exhaustZoneAfterInsert = 1;
    await expect(driver.createMachine(spec('n3'), g.ctx)).rejects.toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, message: expect.stringMatching(/ZONE_RESOURCE_POOL_EXHAUSTED.*settings\.zone/) });
    expect(g.emu.resources().filter((r) => r.kind === 'instance')).toEqual([]);
    expect(g.backend.hosts.size).toBe(0);
  });

  it('a create retried after a late ZONE_RESOURCE_POOL_EXHAUSTED inserts again with a requestId derived from the failed operation', async () => {
    g.emu.policy.exhaustZoneAfterInsert = 2;
    await expect(driver.createMachine(spec('n3b'), g.ctx)).rejects.toMatchObject({ message: expect.stringContaining('ZONE_RESOURCE_POOL_EXHAUSTED') });
    await expect(driver.createMachine(spec('n3b'), g.ctx)).rejects.toMatchObject({ message: expect.stringContaining('ZONE_RESOURCE_POOL_EXHAUSTED') });
    const m = await driver.createMachine(spec('n3b'), g.ctx);
    expect(m.state).toBe('running');
    expect([...g.emu.state.operations.values()].filter((o) => o.operationType === 'insert').map((o) => o.error ? 'failed' : 'done')).toEqual(['failed', 'failed', 'done']);
  });

  it('an organisation policy refusing external addresses: a clear refusal, nothing left attached, and the next create refused before launch', async () => {
    g.emu.policy.noExternalIp = true;
    const m = await driver.createMachine(spec('n4'), g.ctx);
    await expect(awaitReadiness(driver, m, g.ctx, wait)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/no public path: the organisation policy constraints\/compute.vmExternalIpAccess.*settings.externalAccess: none/) });
    await driver.deleteMachine(m.nativeId, g.ctx);
    const before = g.emu.state.operations.size;
    await expect(driver.createMachine(spec('n5'), g.ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('decided before launch') });
    expect(g.emu.state.operations.size).toBe(before);
    expect(g.emu.resources()).toEqual([]);
    // Once the policy is lifted, a launch after the refusal is forgotten gets its external address.
    g.emu.policy.noExternalIp = false;
    refusalMemory.ms = 0;
    await new Promise((r) => setTimeout(r, 2));
    try {
      const ready = await awaitReadiness(driver, await driver.createMachine(spec('n5'), g.ctx), g.ctx, wait);
      expect(ready.addresses.some((a) => a.role === 'public')).toBe(true);
    } finally {
      refusalMemory.ms = 15 * 60_000;
    }
  });

  it('externalAccess none: no access config; the VPC address is the control address, proved by TCP/22', async () => {
    const ctx = { ...g.ctx, settings: { ...g.ctx.settings, externalAccess: 'none' } };
    readinessProbe.tcp = async () => undefined; // the control plane inside the VPC
    const ready = await awaitReadiness(driver, await driver.createMachine(spec('n6'), ctx), ctx, wait);
    expect(ready.addresses).toEqual([expect.objectContaining({ role: 'private', reason: expect.stringContaining('TCP/22 answered') })]);
    expect(ready.decisions?.find((d) => d.subject === 'address')?.reason).toContain('settings.externalAccess is none');
    expect(g.emu.resources().filter((r) => r.kind === 'access-config')).toEqual([]);
  });

  it('OS Login: a project turning it on is overridden on the instance; one requiring it is refused naming the fix', async () => {
    g.emu.state.commonInstanceMetadata.push({ key: 'enable-oslogin', value: 'TRUE' }, { key: 'block-project-ssh-keys', value: 'TRUE' });
    const m = await driver.createMachine(spec('n7'), g.ctx);
    expect(g.backend.hosts.get([...g.backend.hosts.keys()][0]!)?.request).toMatchObject({ onlyLoginUser: 'formwork', publicKey: g.ctx.publicKey.split(' ').slice(0, 2).join(' ') });
    expect(m.decisions?.find((d) => d.subject === 'ssh-key')?.reason).toMatch(/over the project's enable-oslogin TRUE; instance keys are not blocked/);
    g.emu.policy.requireOsLogin = true;
    await expect(driver.createMachine(spec('n8'), g.ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/requires OS Login \(constraints\/compute.requireOsLogin\).*lift the constraint.*effectiveInstanceMetadata/) });
    expect(g.emu.state.instances.size).toBe(1);
  });

  it('OS Login: check and prepare say that a project\'s enable-oslogin TRUE ignores metadata keys; the constraint, which refuses no insert, refuses the create', async () => {
    const warnings: string[] = [];
    const ctx = { ...g.ctx, log: { info: () => undefined, warn: (m: string) => void warnings.push(m) } };
    await driver.check!(ctx);
    expect(warnings).toEqual([]);
    g.emu.policy.requireOsLogin = true; // the project then reads enable-oslogin TRUE
    await driver.check!(ctx);
    await driver.prepare!(ctx);
    expect(warnings).toEqual([expect.stringMatching(/enable-oslogin TRUE.*ssh-keys metadata Formwork logs in with is ignored.*constraints\/compute.requireOsLogin/), expect.any(String)]);
    await expect(driver.createMachine(spec('n10'), ctx)).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('requires OS Login') });
    expect(g.emu.state.instances.size).toBe(0);
  });

  it('maps throttling to PROVIDER_THROTTLED with Retry-After, and retries it', async () => {
    const t = await emulatedGce('gce1', { faults: 'throttle=100%,retry-after=0' });
    try {
      const { gceApi } = await import('./api.js');
      t.emu.faults.spec.throttle = 0;
      await driver.check!(t.ctx); // logged in
      t.emu.faults.spec.throttle = 1;
      await expect(gceApi(t.ctx).call('get', 'GET', '')).rejects.toMatchObject({ code: 'PROVIDER_THROTTLED', nextDelayMs: 0, message: expect.stringContaining('rateLimitExceeded') });
      expect(t.emu.faults.injected.throttle).toBeGreaterThanOrEqual(6);
    } finally {
      await t.emu.close();
    }
  });

  it('reads the host key from the guest attributes (hostkeys/), else from the serial console, else has none', async () => {
    const hostKey = generateSshKeypair('root@host').publicKey;
    class KeyedBackend extends MemoryBackend {
      override async create(req: HostRequest) {
        return { ...(await super.create(req)), hostPublicKey: hostKey };
      }
    }
    const k = await emulatedGce('gce1', { backend: new KeyedBackend() });
    try {
      readinessProbe.tcp = async (host) => {
        if (!k.backend.reachable(host)) throw new Error(`${host}: connection refused`);
      };
      const ready = await awaitReadiness(driver, await driver.createMachine(spec('k1'), k.ctx), k.ctx, wait);
      expect(ready.hostKey).toBe(fingerprint(hostKey));
      expect(ready.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      await k.emu.close();
    }
    readinessProbe.tcp = async (host) => {
      if (!g.backend.reachable(host)) throw new Error(`${host}: connection refused`);
    };
    const plain = await awaitReadiness(driver, await driver.createMachine(spec('k2'), g.ctx), g.ctx, wait);
    expect(plain.hostKey).toBeUndefined();
  });

  it('lists its catalog: machine types, images by family (deprecated left out), zones and networks; lists follow nextPageToken', async () => {
    listPage.size = 3;
    try {
      expect((await driver.listSizes!(g.ctx)).map((s) => s.nativeId)).toEqual(Object.keys(MACHINE_TYPES));
      for (const i of [1, 2, 3, 4]) await driver.createMachine(spec(`p${i}`), g.ctx);
      expect(await driver.listMachines(g.ctx)).toHaveLength(4);
    } finally {
      listPage.size = 500;
    }
    const sizes = await driver.listSizes!(g.ctx);
    expect(sizes.find((s) => s.nativeId === 'e2-small')).toEqual({ nativeId: 'e2-small', cpus: 2, ramMiB: 2048, zones: ['us-central1-a'] });
    const images = await driver.listImages!(g.ctx);
    expect(images.map((i) => i.name)).not.toContain('debian-12-bookworm-v20231010');
    expect(images.find((i) => i.name.startsWith('ubuntu'))).toMatchObject({ osFamily: 'ubuntu', osVersion: '22.04', owner: 'ubuntu-os-cloud' });
    expect(await driver.listZones!(g.ctx)).toContainEqual({ name: 'us-central1-a', region: 'us-central1', available: true });
    expect(await driver.listNetworks!(g.ctx)).toEqual([{ id: '5000', name: 'default', flags: { default_interface: true }, evidence: ['settings.network (default "default")'] }]);
  });

  it('the firewall rule allows TCP/22 from settings.sshSourceRanges (default anywhere); a changed setting patches the rule', async () => {
    expect(providerProblems({ type: 'gce', settings: { project: 'p', zone: 'z', sshSourceRanges: ['203.0.113.0/24'] } })).toEqual([]);
    expect(providerProblems({ type: 'gce', settings: { project: 'p', zone: 'z', sshSourceRanges: ['anywhere'] } })).not.toEqual([]);
    await driver.prepare!(g.ctx);
    expect(g.emu.state.firewalls.get('formwork-gce1-ssh')).toMatchObject({ sourceRanges: ['0.0.0.0/0'], allowed: [{ IPProtocol: 'tcp', ports: ['22'] }] });
    const narrowed = { ...g.ctx, settings: { ...g.ctx.settings, sshSourceRanges: ['203.0.113.0/24', '198.51.100.7/32'] } };
    await driver.prepare!(narrowed);
    expect(g.emu.state.firewalls.get('formwork-gce1-ssh')).toMatchObject({ sourceRanges: ['203.0.113.0/24', '198.51.100.7/32'], targetTags: ['formwork-ssh'] });
    const patches = () => [...g.emu.state.operations.values()].filter((o) => o.operationType === 'patch').length;
    await driver.prepare!(narrowed);
    expect(patches()).toBe(1);
  });

  it('lists what it owns (instances, firewall) and deletes an orphan of each kind', async () => {
    await driver.prepare!(g.ctx);
    await driver.createMachine(spec('n9'), g.ctx);
    const owned = await driver.listOwned!(g.ctx);
    expect(owned.map((r) => r.kind).sort()).toEqual(['firewall', 'machine']);
    for (const r of owned) await driver.deleteOwned!(r, g.ctx);
    expect(g.emu.resources()).toEqual([]);
  });
});
