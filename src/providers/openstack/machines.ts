/**
 * Servers as machines: Nova's status mapped to the contract's states, addresses classified
 * (addresses.ts), and what a create decided kept in the server's metadata (the catalog's
 * normalized size and image, the login users, the network and why), so a machine read back
 * later says the same as the one just made.
 *
 * States: BUILD and REBUILD → booting; ACTIVE (and the transient states of a running server)
 * → running, but ACTIVE with no address is a failure → error; ERROR → error, keeping Nova's
 * fault message; SHUTOFF, SUSPENDED, PAUSED, SHELVED → stopped.
 *
 * @example
 *   const m = toMachine(server, evidence); // { nativeId: server.id, state: 'running', addresses: [...], … }
 */
import type { NodeDecision } from '../../core/decisions.js';
import type { MachineState, ProviderContext, ProvisionedMachine } from '../provider.js';
import { classifyAddresses, type AddressEvidence } from './addresses.js';
import type { NovaServer } from './client/nova.js';
import type { NeutronFloatingIp, NeutronPort } from './client/neutron.js';
import type { Connection } from './connect.js';
import { loadTopology, routerInterfaces, type Topology } from './networks.js';
import { TAG_TOKEN, tagFilter, tagsFromNova } from './tags.js';

/** Metadata keys a create writes besides the ownership tags (not reported as tags). */
export const META = {
  token: TAG_TOKEN,
  size: 'formwork.io/size',
  image: 'formwork.io/image',
  loginUsers: 'formwork.io/login-users',
  loginUsersReason: 'formwork.io/login-users-reason',
  network: 'formwork.io/network',
  networkReason: 'formwork.io/network-reason',
  securityGroup: 'formwork.io/security-group',
  securityGroupReason: 'formwork.io/security-group-reason',
} as const;

const INTERNAL = new Set<string>(Object.values(META));

const STATES: Record<string, MachineState> = {
  BUILD: 'booting', REBUILD: 'booting',
  ACTIVE: 'running', REBOOT: 'running', HARD_REBOOT: 'running', PASSWORD: 'running', RESIZE: 'running', VERIFY_RESIZE: 'running', REVERT_RESIZE: 'running', MIGRATING: 'running', RESCUE: 'running',
  SHUTOFF: 'stopped', SUSPENDED: 'stopped', PAUSED: 'stopped', SHELVED: 'stopped', SHELVED_OFFLOADED: 'stopped',
};

/**
 * The contract state of a Nova status (`error` for ERROR, UNKNOWN and anything unknown).
 *
 * @example
 *   machineState('BUILD'); // 'booting'
 */
export function machineState(status: string): MachineState {
  return STATES[status] ?? 'error';
}

/**
 * A metadata value as Nova keeps it: at most 255 characters.
 *
 * @example
 *   metaValue('x'.repeat(300)).length; // 255
 */
export function metaValue(v: string): string {
  return v.length > 255 ? `${v.slice(0, 254)}…` : v;
}

/**
 * The machine a server is. Without evidence (a booting server), addresses are left unclassified and empty.
 *
 * @example
 *   toMachine(server, undefined).state; // 'booting'
 */
export function toMachine(server: NovaServer, ev: AddressEvidence | undefined): ProvisionedMachine {
  const meta = tagsFromNova(server.metadata);
  const tags = Object.fromEntries(Object.entries(meta).filter(([k]) => !INTERNAL.has(k)));
  const addresses = ev ? classifyAddresses(server, ev) : [];
  let state = machineState(server.status);
  const inventory: Record<string, unknown> = { status: server.status };
  if (server.fault?.message) inventory.fault = server.fault.message;
  if (state === 'running' && server.status === 'ACTIVE' && Object.values(server.addresses ?? {}).every((l) => l.length === 0)) {
    // Nova reports some servers ACTIVE without an address (a failed port binding): nothing can reach it.
    state = 'error';
    inventory.fault = 'ACTIVE with no address: nothing can reach it';
  }
  const flavor = server.flavor?.original_name ?? server.flavor?.id;
  const imageId = typeof server.image === 'object' && server.image ? server.image.id : undefined;
  const decisions: NodeDecision[] = [];
  if (meta[META.network]) decisions.push({ subject: 'network', chosen: meta[META.network], reason: meta[META.networkReason] ?? '' });
  if (meta[META.securityGroup]) decisions.push({ subject: 'security-group', chosen: meta[META.securityGroup], reason: meta[META.securityGroupReason] ?? '' });
  if (meta[META.loginUsers]) decisions.push({ subject: 'login-users', chosen: meta[META.loginUsers], reason: meta[META.loginUsersReason] ?? '' });
  const az = server['OS-EXT-AZ:availability_zone'];
  return {
    nativeId: server.id,
    name: server.name,
    state,
    ...(state !== 'running' && typeof inventory.fault === 'string' ? { stateReason: inventory.fault } : {}),
    addresses,
    loginUsers: (meta[META.loginUsers] ?? 'root').split(',').filter(Boolean),
    tags,
    ...(flavor ? { size: { normalized: meta[META.size] ?? flavor, native: flavor } } : {}),
    // Booted from a volume: no image on the server (its image is "").
    ...(imageId ? { image: { normalized: meta[META.image] ?? imageId, native: imageId } } : {}),
    ...(typeof az === 'string' && az ? { zone: az } : {}),
    inventory,
    decisions,
  };
}

/**
 * The evidence to classify the addresses of `servers` (running ones): the topology, their
 * ports, router interfaces on their networks, and this provider's floating IPs.
 *
 * @example
 *   const ev = await evidenceFor(conn, ctx, [server]);
 */
export async function evidenceFor(conn: Connection, ctx: ProviderContext, servers: NovaServer[], topo?: Topology): Promise<AddressEvidence> {
  const net = conn.client.network;
  const [t, ports, floatingIps] = await Promise.all([
    topo ?? loadTopology(conn.client),
    Promise.all(servers.map((s) => net.listPorts({ device_id: s.id }))).then((l) => l.flat()),
    net.listFloatingIps({ tags: tagFilter(ctx) }),
  ]);
  const networkIds = [...new Set(ports.map((p) => p.network_id))];
  const interfacePorts = (await Promise.all(networkIds.map((id) => routerInterfaces(conn.client, id)))).flat();
  return { topo: t, ports, interfacePorts, floatingIps: attachedTo(floatingIps, ports), config: conn.config };
}

/**
 * The floating IPs attached to one of `ports`.
 *
 * @example
 *   attachedTo(fips, ports).length; // 1
 */
export function attachedTo(fips: NeutronFloatingIp[], ports: NeutronPort[]): NeutronFloatingIp[] {
  const ids = new Set(ports.map((p) => p.id));
  return fips.filter((f) => f.port_id && ids.has(f.port_id));
}

/**
 * A server read as a machine, with its addresses classified unless it is still booting.
 *
 * @example
 *   await readMachine(conn, ctx, server);
 */
export async function readMachine(conn: Connection, ctx: ProviderContext, server: NovaServer, topo?: Topology): Promise<ProvisionedMachine> {
  if (machineState(server.status) !== 'running') return toMachine(server, undefined);
  return toMachine(server, await evidenceFor(conn, ctx, [server], topo));
}
