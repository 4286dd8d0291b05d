/**
 * The `static` provider driver: machines that exist already, listed in the provider's
 * settings (descriptor.ts). "Creating" a machine claims a listed one for a node; deleting
 * it releases the claim and never touches the machine. Claims live in
 * `<dataDir>/providers/<name>/claims.json`, changed under a file lock (several workers).
 *
 * A listed machine with one address reports it as both public and private: the one network
 * it has is how the control plane and the other nodes reach it.
 *
 * @example
 *   // settings: { machines: [{ name: 'db-1', address: '192.0.2.10', user: 'debian' }] }
 *   const m = await staticDriver.createMachine({ name: 'db', nodeId, idempotencyToken, tags }, ctx); // m.nativeId === 'db-1'
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import { mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import type { NodeAddress } from '../../core/addresses.js';
import { FormworkError } from '../../core/errors.js';
import { fingerprint, normalizeFingerprint } from '../../ssh/keys.js';
import { withFileLock } from '../lab/lock.js';
import type { MachineSpec, ProviderContext, ProviderDriver, ProvisionedMachine } from '../provider.js';

export interface StaticMachine {
  name: string;
  address: string;
  privateAddress?: string;
  port?: number;
  user: string;
  hostKey?: string;
  size?: string;
  image?: string;
}

interface Claim {
  nodeId: string;
  nodeName: string;
  token: string;
  tags: Record<string, string>;
  claimedAt: string;
}

type Claims = Record<string, Claim>;

const dirOf = (ctx: ProviderContext) => join(ctx.dataDir, 'providers', ctx.providerName);
const claimsFile = (ctx: ProviderContext) => join(dirOf(ctx), 'claims.json');

function machinesOf(ctx: ProviderContext): StaticMachine[] {
  const m = ctx.settings.machines;
  return Array.isArray(m) ? (m as StaticMachine[]) : [];
}

async function readClaims(ctx: ProviderContext): Promise<Claims> {
  try {
    return JSON.parse(await readFile(claimsFile(ctx), 'utf8')) as Claims;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FormworkError('PROVIDER_ERROR', `static provider "${ctx.providerName}": cannot read ${claimsFile(ctx)}: ${(e as Error).message}`, { file: claimsFile(ctx) }, { cause: e, retryable: false });
  }
}

async function writeClaims(ctx: ProviderContext, claims: Claims): Promise<void> {
  const tmp = `${claimsFile(ctx)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(claims, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, claimsFile(ctx)); // whole or not at all
}

async function underLock<T>(ctx: ProviderContext, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirOf(ctx), { recursive: true, mode: 0o700 });
  return withFileLock(join(dirOf(ctx), 'claims.lock'), fn, { signal: ctx.signal });
}

function address(address: string, role: NodeAddress['role'], reason: string): NodeAddress {
  return { address, family: isIP(address) === 6 ? 6 : 4, role, reason };
}

function toMachine(nativeId: string, m: StaticMachine | undefined, claim: Claim): ProvisionedMachine {
  if (!m) {
    // Claimed, then taken out of the settings: nothing to connect to; releasing it is safe.
    return { nativeId, name: nativeId, state: 'error', addresses: [], loginUsers: [], tags: { ...claim.tags }, inventory: { reason: 'no longer listed in the settings' } };
  }
  return {
    nativeId,
    name: m.name,
    state: 'running',
    addresses: [
      address(m.address, 'public', 'settings.machines[].address: the address the control plane reaches it at'),
      address(m.privateAddress ?? m.address, 'private', m.privateAddress ? 'settings.machines[].privateAddress' : 'settings.machines[] names no privateAddress: its address serves both'),
    ],
    loginUsers: [m.user],
    tags: { ...claim.tags },
    ...(m.hostKey ? { hostKey: m.hostKey.startsWith('SHA256:') ? normalizeFingerprint(m.hostKey) : fingerprint(m.hostKey) } : {}),
    size: { normalized: m.size ?? 'static', native: m.size ?? 'static' },
    image: { normalized: m.image ?? 'static', native: m.image ?? 'static' },
    zone: 'static',
    inventory: { ...(m.port && m.port !== 22 ? { sshPort: m.port } : {}), adopted: true },
  };
}

const byName = (ctx: ProviderContext) => new Map(machinesOf(ctx).map((m) => [m.name, m]));

export const staticDriver: ProviderDriver = {
  type: 'static',

  async createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
    return underLock(ctx, async () => {
      const claims = await readClaims(ctx);
      const listed = machinesOf(ctx);
      const again = Object.entries(claims).find(([, c]) => c.token === spec.idempotencyToken);
      if (again) return toMachine(again[0], byName(ctx).get(again[0]), again[1]);
      const free = listed.filter((m) => !claims[m.name]);
      const pick = free.find((m) => m.name === spec.name) ?? free[0];
      if (!pick) {
        throw new FormworkError(
          'PROVIDER_QUOTA',
          `static provider "${ctx.providerName}": all ${listed.length} listed machine(s) are in use; add one to settings.machines or delete a node`,
          { listed: listed.length, claimed: Object.keys(claims) },
        );
      }
      const claim: Claim = { nodeId: spec.nodeId, nodeName: spec.name, token: spec.idempotencyToken, tags: { ...spec.tags }, claimedAt: new Date().toISOString() };
      await writeClaims(ctx, { ...claims, [pick.name]: claim });
      ctx.log.info('static: machine adopted', { machine: pick.name, node: spec.name, address: pick.address });
      return toMachine(pick.name, pick, claim);
    });
  },

  async getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
    const claim = (await readClaims(ctx))[nativeId];
    return claim ? toMachine(nativeId, byName(ctx).get(nativeId), claim) : undefined;
  },

  async listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
    const listed = byName(ctx);
    return Object.entries(await readClaims(ctx)).map(([id, c]) => toMachine(id, listed.get(id), c));
  },

  async deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
    await underLock(ctx, async () => {
      const claims = await readClaims(ctx);
      if (!claims[nativeId]) return;
      delete claims[nativeId];
      await writeClaims(ctx, claims);
      ctx.log.info('static: machine released, left as it is', { machine: nativeId });
    });
  },

  async teardown(ctx: ProviderContext): Promise<void> {
    const claims = await readClaims(ctx);
    if (Object.keys(claims).length) ctx.log.warn('static: teardown releases machines still claimed', { machines: Object.keys(claims) });
    await rm(claimsFile(ctx), { force: true });
    await rm(join(dirOf(ctx), 'claims.lock'), { force: true });
    const rest = await readdir(dirOf(ctx)).catch(() => [] as string[]);
    if (rest.length === 0) await rmdir(dirOf(ctx)).catch(() => undefined);
  },
};
