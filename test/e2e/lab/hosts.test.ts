/**
 * End-to-end: real lab hosts on this machine (root only). Builds or reuses the base image,
 * creates two hosts in parallel, logs in over SSH as `debian`, checks sudo, the private network
 * and per-host identity, deletes them and tears the provider down, and asserts nothing is left.
 *
 * The base image is cached across runs in $FORMWORK_LAB_CACHE (default /var/tmp/formwork-lab-cache,
 * as `<cache>/lab/base`); the first run builds it with debootstrap (about 2 minutes).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ownershipTags, type MachineSpec, type ProviderContext, type ProvisionedMachine } from '../../../src/providers/provider.js';
import {
  ensureBaseImage,
  isAlive,
  labConfig,
  labDriver,
  labLeftovers,
  listLinks,
  missingTools,
  netnsPids,
  procRef,
  type ProcRef,
} from '../../../src/providers/lab/index.js';

const pexec = promisify(execFile);
/** A spec as the provision role makes one (node id, token and tags from the name). */
const spec = (name: string, more: Partial<MachineSpec> = {}): MachineSpec => ({ name, nodeId: `id-${name}`, idempotencyToken: `tok-${name}`, tags: ownershipTags('e2e', `id-${name}`), ...more });
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot
  ? 'lab e2e skipped: must run as root (creates network namespaces, bridges, mounts)'
  : missing.length > 0
    ? `lab e2e skipped: missing tools: ${missing.map((m) => `${m.tool} (apt-get install ${m.pkg})`).join(', ')}`
    : '';
if (skipReason) console.warn(skipReason);

const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';

describe.skipIf(!!skipReason)(`lab provider: real hosts${skipReason ? ` (${skipReason})` : ''}`, () => {
  let dir = '';
  let ctx: ProviderContext;
  let key = '';
  const logs: string[] = [];
  let machines: ProvisionedMachine[] = [];

  const pub = (m: ProvisionedMachine) => m.addresses.find((a) => a.role === 'public')!.address;
  const priv = (m: ProvisionedMachine) => m.addresses.find((a) => a.role === 'private')!.address;
  async function ssh(user: string, host: string, command: string): Promise<string> {
    const { stdout } = await pexec(
      'ssh',
      ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', `${user}@${host}`, command],
      { timeout: 30_000 },
    );
    return stdout.trim();
  }

  beforeAll(async () => {
    const t0 = Date.now();
    const base = await ensureBaseImage(CACHE, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
    console.log(`lab e2e: base image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${base}`);
    dir = await mkdtemp(join(tmpdir(), 'fw-lab-e2e-'));
    key = join(dir, 'id_ed25519');
    await pexec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'formwork-e2e', '-f', key]);
    ctx = {
      dataDir: join(dir, 'data'),
      providerName: `e2e-${process.pid}`,
      settings: { subnetIndex: 7, baseDir: base },
      publicKey: await readFile(`${key}.pub`, 'utf8'),
      log: { info: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`), warn: (m, f) => logs.push(`WARN ${m} ${JSON.stringify(f ?? {})}`) },
    };
  }, 600_000);

  afterAll(async () => {
    if (!ctx) return;
    // Whatever happened above, leave nothing behind.
    await labDriver.teardown!(ctx).catch((e) => console.error('lab e2e: teardown in afterAll failed', e));
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('creates two hosts in parallel that answer SSH on their public address', async () => {
    const t0 = Date.now();
    machines = await Promise.all([
      labDriver.createMachine(spec('node-1', { image: 'debian-12' }), ctx),
      labDriver.createMachine(spec('node-2', { size: 'small' }), ctx),
    ]);
    console.log(`lab e2e: 2 hosts up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const c = labConfig(ctx);
    for (const m of machines) {
      expect(m.state).toBe('running');
      expect(m.loginUsers).toEqual(['debian', 'root']);
      expect(pub(m)).toMatch(/^198\.18\.14\.(1[1-9])$/);
      expect(priv(m)).toMatch(/^198\.18\.15\.(1[1-9])$/);
      expect(m.addresses.every((a) => a.family === 4)).toBe(true);
      expect(m.addresses.find((a) => a.role === 'public')!.network).toBe(c.publicBridge);
    }
    expect(new Set(machines.map(pub)).size).toBe(2);
    const listed = await labDriver.listMachines(ctx);
    expect(listed.map((m) => [m.name, m.state]).sort()).toEqual([
      ['node-1', 'running'],
      ['node-2', 'running'],
    ]);
    // A second host of the same name (another create, not a retry: another token) is refused.
    await expect(labDriver.createMachine(spec('node-1', { idempotencyToken: 'another' }), ctx)).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
  }, 180_000);

  it('lets the platform key log in as debian (with passwordless sudo) and as root', async () => {
    for (const m of machines) {
      expect(await ssh('debian', pub(m), 'hostname')).toBe(m.name);
      expect(await ssh('debian', pub(m), 'sudo -n true && echo sudo-ok')).toBe('sudo-ok');
      expect(await ssh('root', pub(m), 'id -un')).toBe('root');
    }
  }, 60_000);

  it('connects the hosts on the private network', async () => {
    const [a, b] = machines;
    const out = await ssh('debian', pub(a), `ping -c 2 -W 2 ${priv(b)}`);
    expect(out).toMatch(/2 received/);
    expect(await ssh('debian', pub(a), 'ip -4 -o addr show dev eth1')).toContain(`${priv(a)}/24`);
  }, 60_000);

  it('gives every host its own SSH host key and machine-id', async () => {
    const keys = await Promise.all(machines.map((m) => ssh('debian', pub(m), 'cat /etc/ssh/ssh_host_ed25519_key.pub')));
    const ids = await Promise.all(machines.map((m) => ssh('debian', pub(m), 'cat /etc/machine-id')));
    expect(keys[0]).toMatch(/^ssh-ed25519 /);
    expect(keys[0]).not.toBe(keys[1]);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[0]).not.toBe(ids[1]);
  }, 60_000);

  it('removes a half-made host when sshd does not answer in time', async () => {
    const impatient: ProviderContext = { ...ctx, settings: { ...ctx.settings, bootTimeoutMs: 100 } };
    await expect(labDriver.createMachine(spec('node-3'), impatient)).rejects.toMatchObject({ code: 'PROVIDER_ERROR' });
    expect((await labDriver.listMachines(ctx)).map((m) => m.name).sort()).toEqual(['node-1', 'node-2']);
    const l = await labLeftovers(ctx, { includeProviderWide: false });
    expect(l.netns.filter((n) => n.endsWith('-node-3'))).toEqual([]);
    expect(l.mounts.filter((m) => m.includes('/node-3/'))).toEqual([]);
    expect(l.processes.filter((p) => p.cmdline.includes('/node-3/'))).toEqual([]);
    expect(l.stateFiles.filter((f) => f.endsWith('node-3.json'))).toEqual([]);
    expect(l.links.length).toBe(4); // only node-1's and node-2's veths
  }, 60_000);

  it('deletes the hosts and leaves nothing behind', async () => {
    const c = labConfig(ctx);
    // The containers' own processes, to check afterwards that none survived.
    const inside: ProcRef[] = [];
    for (const m of machines) {
      for (const pid of await netnsPids(String(m.inventory!.netns))) {
        const r = procRef(pid);
        if (r) inside.push(r);
      }
    }
    expect(inside.length).toBeGreaterThan(2);

    const t0 = Date.now();
    await Promise.all(machines.map((m) => labDriver.deleteMachine(m.nativeId, ctx)));
    console.log(`lab e2e: 2 hosts deleted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Idempotent: deleting again is fine.
    await labDriver.deleteMachine('node-1', ctx);
    expect(await labDriver.listMachines(ctx)).toEqual([]);
    expect(inside.filter(isAlive)).toEqual([]);
    expect(await labLeftovers(ctx, { includeProviderWide: false })).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });

    // Provider-wide resources until teardown, then none.
    expect(await listLinks()).toContain(c.publicBridge);
    await labDriver.teardown!(ctx);
    expect(await labLeftovers(ctx)).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });
    const links = await listLinks();
    expect(links).not.toContain(c.publicBridge);
    expect(links).not.toContain(c.privateBridge);
    await labDriver.teardown!(ctx); // idempotent too
  }, 120_000);
});
