/**
 * The `lab` provider driver: real Debian 12 hosts on the control host itself (systemd-nspawn
 * --boot in network namespaces on two bridges from 198.18.0.0/15). See docs in index.ts.
 *
 * Settings (all optional): `subnetIndex` N (0–255: public 198.18.(2N).0/24, private the next
 * /24), `baseDir` (a prebuilt base root filesystem instead of `<dataDir>/lab/base`), `mirror`,
 * `bootTimeoutMs` (default 90 000), `stopTimeoutMs` (default 15 000).
 *
 * @example
 *   const m = await labDriver.createMachine({ name: 'web-1' }, ctx);
 *   m.addresses; // [{ address: '198.18.0.11', role: 'public', ... }, { address: '198.18.1.11', role: 'private', ... }]
 */
import { join } from 'node:path';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { FormworkError } from '../../core/errors.js';
import type { MachineSpec, ProviderContext, ProviderDriver, ProvisionedMachine } from '../provider.js';
import { ensureBaseImage, isBaseReady, mountsUnder, requiredTools } from './base.js';
import { labConfig, validateHostName, type LabConfig } from './config.js';
import { isAlive } from './exec.js';
import { allocateHost, buildHost, destroyHost, hostAlive, hostPids, readAllStates, readState, type HostState } from './host.js';
import { withFileLock } from './lock.js';
import { deleteBridges, ensureBridges, networkReady, proxyAnswers, proxyRef, startProxy, stopProxy } from './network.js';

export const LAB_IMAGE = { normalized: 'debian-12', native: 'debian-12-bookworm-minbase-nspawn' };
const ACCEPTED_IMAGES = new Set(['debian-12', 'debian', 'debian-bookworm', 'bookworm']);
export const LAB_LOGIN_USERS = ['debian', 'root'];

const providerLock = (c: LabConfig) => join(c.providerDir, 'provider.lock');

export function toMachine(st: HostState): ProvisionedMachine {
  const alive = hostAlive(st);
  let state: ProvisionedMachine['state'];
  if (st.stage === 'creating' || st.stage === 'booting') state = isAlive(st.creator) ? 'booting' : alive ? 'running' : 'error';
  else if (st.stage === 'deleting') state = 'error'; // a delete that did not finish: not a host to keep
  else state = alive ? 'running' : 'stopped';
  const size = st.spec.size;
  return {
    nativeId: st.name,
    name: st.name,
    state,
    addresses: [
      { address: st.publicAddress, family: 4, role: 'public', network: st.publicBridge, reason: `on the lab's public bridge ${st.publicBridge}, routed to the control plane` },
      { address: st.privateAddress, family: 4, role: 'private', network: st.privateBridge, reason: `on the lab's private bridge ${st.privateBridge}, joining nodes only` },
    ],
    loginUsers: [...LAB_LOGIN_USERS],
    tags: { ...(st.spec.tags ?? {}) },
    size: {
      normalized: typeof size === 'string' ? size : size ? `${size.cpus}cpu-${size.ramMiB}mib` : 'shared',
      native: 'nspawn-shared',
    },
    image: { ...LAB_IMAGE },
    zone: 'lab',
    inventory: {
      machine: st.machine,
      netns: st.netns,
      rootDir: st.root,
      stateFile: st.stateFile,
      ...hostPids(st),
      ...(st.bootSeconds !== undefined ? { bootSeconds: st.bootSeconds } : {}),
    },
  };
}

/**
 * Bridges and apt-cacher-ng, created once per provider (idempotent, cross-process safe). The
 * proxy is only started here; `proxyAnswers` waits for it.
 */
export async function ensureProviderNetwork(c: LabConfig, ctx: Pick<ProviderContext, 'log' | 'signal'>): Promise<void> {
  if (networkReady(c)) return;
  await withFileLock(
    providerLock(c),
    async () => {
      if (networkReady(c)) return; // made by whoever held the lock before us
      await ensureBridges(c);
      await startProxy(c, ctx.log);
    },
    { signal: ctx.signal },
  );
}

async function ensureBase(c: LabConfig, ctx: ProviderContext): Promise<void> {
  if (c.baseDirFromSettings) {
    if (!isBaseReady(c.baseDir)) throw new FormworkError('VALIDATION', `lab setting baseDir ${c.baseDir} is not a built lab base image`, { baseDir: c.baseDir });
    return;
  }
  await ensureBaseImage(c.dataDir, ctx.log, { mirror: c.mirror, signal: ctx.signal });
}

/** The bridges and the package proxy. The base image stays with the first create: minutes of debootstrap (then cached) do not belong in an apply. */
async function prepareLab(ctx: ProviderContext): Promise<void> {
  const c = labConfig(ctx);
  requiredTools();
  await mkdir(c.providerDir, { recursive: true });
  await ensureProviderNetwork(c, ctx);
}

export const labDriver: ProviderDriver = {
  type: 'lab',
  prepare: prepareLab,

  async createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
    const c = labConfig(ctx);
    validateHostName(spec.name);
    if (spec.image !== undefined && !ACCEPTED_IMAGES.has(spec.image)) {
      throw new FormworkError('PROVIDER_INVALID', `the lab provider only has image debian-12, not "${spec.image}"`, { image: spec.image, known: ['debian-12'] });
    }
    if (!ctx.publicKey?.trim()) throw new FormworkError('VALIDATION', 'the lab provider needs the platform public key (ctx.publicKey)');
    // A retried create (same token) gets the host made the first time, whatever its stage.
    const again = readState(join(c.hostsDir, `${spec.name}.json`));
    if (again && again.spec.idempotencyToken === spec.idempotencyToken) return toMachine(again);
    requiredTools();
    await ensureBase(c, ctx);
    await prepareLab(ctx);
    const st = await withFileLock(providerLock(c), () => allocateHost(c, spec), { signal: ctx.signal });
    ctx.log.info('lab: creating host', { name: st.name, public: st.publicAddress, private: st.privateAddress });
    const done = await buildHost(c, st, ctx.publicKey, ctx.log, ctx.signal);
    // A host is ready when it can install packages: the proxy started above must answer by now.
    await proxyAnswers(c).catch(async (e) => {
      await destroyHost(done, ctx.log, c.stopTimeoutMs);
      throw e;
    });
    return toMachine(done);
  },

  async getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
    const c = labConfig(ctx);
    validateHostName(nativeId);
    const st = readState(join(c.hostsDir, `${nativeId}.json`));
    return st ? toMachine(st) : undefined;
  },

  async deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
    const c = labConfig(ctx);
    validateHostName(nativeId);
    const st = readState(join(c.hostsDir, `${nativeId}.json`));
    if (!st) return; // already gone
    await destroyHost(st, ctx.log, c.stopTimeoutMs);
    ctx.log.info('lab: host deleted', { name: nativeId });
  },

  async listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
    const c = labConfig(ctx);
    return (await readAllStates(c)).map(toMachine);
  },

  async teardown(ctx: ProviderContext): Promise<void> {
    const c = labConfig(ctx);
    const left = await readAllStates(c);
    if (left.length > 0) {
      ctx.log.warn('lab: teardown deletes hosts that are still there', { hosts: left.map((s) => s.name) });
      await Promise.all(left.map((st) => destroyHost(st, ctx.log, c.stopTimeoutMs)));
    }
    // A root still mounted here is a host with no readable state file (damaged, or from a
    // newer Formwork): deleting under it would empty a running host. Stop, and say which.
    const mounted = mountsUnder(c.machinesDir);
    if (mounted.length > 0) {
      throw new FormworkError('PROVIDER_ERROR', `cannot tear down lab provider "${c.providerName}": ${mounted.join(', ')} still mounted, from a host whose state file in ${c.hostsDir} is missing or unreadable; stop that host (machinectl, umount) and try again`, { mounted });
    }
    await withFileLock(providerLock(c), async () => {
      await stopProxy(c);
      await deleteBridges(c);
      await rm(c.proxyDir, { recursive: true, force: true });
      await rm(c.machinesDir, { recursive: true, force: true });
      await rm(c.hostsDir, { recursive: true, force: true }); // last: it is what tells what runs
    });
    // Leave the provider dir only if someone else keeps files there.
    const rest = await readdir(c.providerDir).catch(() => [] as string[]);
    if (rest.length === 0) await rmdir(c.providerDir).catch(() => undefined);
    ctx.log.info('lab: provider torn down', { provider: c.providerName });
  },
};

/** Whether this provider's apt-cacher-ng is running (for status reports). */
export function proxyRunning(c: LabConfig): boolean {
  return isAlive(proxyRef(c));
}
