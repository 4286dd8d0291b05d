/**
 * The `openstack` provider driver: servers on any OpenStack cloud, configured as users
 * already configure OpenStack (connect.ts), with every capability of the contract: the
 * catalog (catalog.ts), networks classified from evidence (networks.ts, addresses.ts),
 * floating IPs made and released inside the readiness wait (reachable.ts), the provider's
 * keypair and security group and everything it owns (shared.ts).
 *
 * A create finds the server a retried create made, by the idempotency token in its metadata,
 * before booting another; it boots on a named network (Nova refuses a boot with several
 * visible networks and none named), with the provider's keypair and security group, and
 * metadata = the ownership tags plus what it decided. A delete is confirmed by reading back.
 *
 * @example
 *   const driver = await loadDriver('openstack');
 *   const m = await driver.createMachine(spec, ctx); // { state: 'booting', … }
 */
import { FormworkError, isFormworkError } from '../../core/errors.js';
import { TAG_MANAGED_BY, TAG_PROVIDER, type MachineSpec, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from '../provider.js';
import { bootPoll, confirmGone } from '../readiness.js';
import { bootChoice, listImages, listSizes } from './catalog.js';
import type { NovaApi, NovaServer } from './client/nova.js';
import { connect, type Connection } from './connect.js';
import { evidenceFor, META, metaValue, readMachine, toMachine } from './machines.js';
import { catalogNetworks, chooseBootNetwork, loadTopology } from './networks.js';
import { makeReachable, undoReachable } from './reachable.js';
import { check, deleteOwned, ensureKeypair, ensureSecurityGroup, listOwned, prepare, teardown } from './shared.js';
import { TAG_TOKEN } from './tags.js';

/** How long a deleted server is read back before its delete counts as stuck (tests set it lower). */
export const deleteConfirm = { ms: 180_000 };

async function createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
  if (!spec.name.trim()) throw new FormworkError('PROVIDER_INVALID', 'a machine needs a name (Nova refuses an empty one)', { nodeId: spec.nodeId });
  const conn = await connect(ctx);
  const nova = conn.client.compute;
  const [existing] = await nova.listServers({ [TAG_PROVIDER]: ctx.providerName, [TAG_TOKEN]: spec.idempotencyToken });
  if (existing) return readMachine(conn, ctx, existing);

  const choice = await bootChoice(conn.client, spec, ctx);
  const topo = await loadTopology(conn.client);
  const network = chooseBootNetwork(topo, conn.config, ctx.settings);
  const keyName = await ensureKeypair(conn, ctx);
  const sg = await ensureSecurityGroup(conn, ctx);
  const sgReason = sg ? `the provider's group allowing TCP/22 (made by prepare)` : 'none: the cloud has no security groups (secgroup_source None)';
  const metadata: Record<string, string> = {
    ...spec.tags,
    [META.token]: spec.idempotencyToken,
    [META.size]: choice.size.normalized,
    [META.image]: choice.image.normalized,
    [META.network]: network.network.id,
    [META.networkReason]: metaValue(network.reason),
    [META.loginUsers]: metaValue(choice.loginUsers.users.join(',')).replace(/,[^,]*…$/, ''),
    [META.loginUsersReason]: metaValue(choice.loginUsers.reason),
    [META.securityGroup]: sg?.id ?? 'none',
    [META.securityGroupReason]: metaValue(sgReason),
  };
  const id = await bootOnce(conn, ctx, spec.idempotencyToken, {
    name: spec.name,
    imageRef: choice.image.nativeId,
    flavorRef: choice.size.nativeId,
    networks: [{ uuid: network.network.id }],
    keyName,
    metadata,
    ...(sg ? { securityGroups: [sg.id] } : {}),
    ...(spec.zone ? { availabilityZone: spec.zone } : {}),
  });
  const server = await nova.getServer(id);
  if (!server) throw new FormworkError('MACHINE_FAILED', `server ${id} disappeared right after its boot was accepted`, { nativeId: id });
  const m = await readMachine(conn, ctx, server, topo);
  // The catalog's normalized names, even before Nova embeds the flavor.
  return { ...m, size: { normalized: choice.size.normalized, native: choice.size.nativeId }, image: { normalized: choice.image.normalized, native: choice.image.nativeId } };
}

/** How many times a boot whose answer was an error is looked for, then sent again. */
const BOOT_TRIES = 4;

/**
 * Boots one server for the token: a boot that failed in a way that passes (a 5xx, a lost
 * answer) may still have made it, so before sending it again the server is looked for by the
 * token in its metadata, and taken if found.
 */
async function bootOnce(conn: Connection, ctx: ProviderContext, token: string, request: Parameters<NovaApi['createServer']>[0]): Promise<string> {
  const nova = conn.client.compute;
  for (let attempt = 1; ; attempt++) {
    try {
      return (await nova.createServer(request)).id;
    } catch (e) {
      if (!isFormworkError(e) || !e.retryable || attempt >= BOOT_TRIES) throw e;
      const [made] = await nova.listServers({ [TAG_PROVIDER]: ctx.providerName, [TAG_TOKEN]: token });
      if (made) return made.id;
      ctx.log.warn('openstack: a server boot failed and made nothing; booting again', { attempt, error: e.message });
      await new Promise((r) => setTimeout(r, bootPoll.ms));
    }
  }
}

async function getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
  const conn = await connect(ctx);
  const server = await conn.client.compute.getServer(nativeId);
  if (!server || server.status === 'DELETED' || server.status === 'SOFT_DELETED') return undefined;
  return readMachine(conn, ctx, server);
}

async function listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
  const conn = await connect(ctx);
  const servers = (await conn.client.compute.listServers({ [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName })).filter((s) => s.status !== 'DELETED' && s.status !== 'SOFT_DELETED');
  const running = servers.filter((s) => s.status === 'ACTIVE');
  const ev = running.length ? await evidenceFor(conn, ctx, running) : undefined;
  return servers.map((s: NovaServer) => toMachine(s, s.status === 'ACTIVE' ? ev : undefined));
}

async function deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
  const nova = (await connect(ctx)).client.compute;
  await nova.deleteServer(nativeId);
  await confirmGone(`server ${nativeId}`, nativeId, async () => {
    const s = await nova.getServer(nativeId);
    return !s || s.status === 'DELETED' || s.status === 'SOFT_DELETED' ? undefined : s.status;
  }, deleteConfirm.ms);
}

/** The `openstack` driver (see the file's comment). */
export const openstackDriver: ProviderDriver = {
  type: 'openstack',
  check,
  prepare,
  createMachine,
  getMachine,
  listMachines,
  deleteMachine,
  teardown,
  listSizes: async (ctx) => listSizes((await connect(ctx)).client),
  listImages: async (ctx) => listImages((await connect(ctx)).client),
  listNetworks: async (ctx) => {
    const conn = await connect(ctx);
    return catalogNetworks(await loadTopology(conn.client), conn.config);
  },
  makeReachable,
  undoReachable,
  listOwned,
  deleteOwned: (resource, ctx) => deleteOwned(resource, ctx, (id) => deleteMachine(id, ctx)),
};
