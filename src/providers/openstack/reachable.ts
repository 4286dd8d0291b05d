/**
 * Making a server reachable from the control plane, inside the readiness wait
 * (../readiness.ts), and undoing it.
 *
 * `makeReachable` decides whether a floating IP is needed — not when an address is already
 * public (addresses.ts says by what evidence), nor when the cloud has none (the profile's
 * `floating_ip_source: None`) — picks the external network with a reason (networks.ts),
 * checks a router connects the port's subnet to it BEFORE allocating (else Neutron refuses,
 * or worse, a retry loop allocates again and again), and creates the floating IP with
 * `port_id` in one call, tagged with the machine's ownership tags. It never takes an
 * unattached floating IP it did not make unless `settings.reuseFloatingIps` says so; one
 * taken that way is marked `formwork.io/reused=true` and given back by detaching it.
 *
 * `undoReachable` releases what was made for the machine, found by its tags, and confirms
 * each release by reading back (some clouds report a delete that has not happened).
 *
 * @example
 *   const reachable = await makeReachable(machine, ctx); // a public address: the floating IP, with its reason
 *   await undoReachable(machine, ctx);
 */
import type { NodeDecision } from '../../core/decisions.js';
import { FormworkError } from '../../core/errors.js';
import { TAG_MANAGED_BY, TAG_NODE_ID, TAG_PROVIDER, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { bootPoll, readinessProbe } from '../readiness.js';
import { floatingAddress } from './addresses.js';
import type { NeutronFloatingIp, NeutronPort } from './client/neutron.js';
import { novaMetadataKey } from './client/nova.js';
import { connect, type Connection } from './connect.js';
import { evidenceFor, META, toMachine } from './machines.js';
import { chooseExternalNetwork, loadTopology, routersBetween } from './networks.js';
import { neutronTags, TAG_REUSED, tagFilter, tagsFromNeutron } from './tags.js';

/** How long a release is read back before it counts as lingering (tests set it lower). */
export const releaseConfirm = { ms: 60_000 };

/** The machine given the path the control plane reaches it by (see the file's comment). */
export async function makeReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<ProvisionedMachine> {
  const conn = await connect(ctx);
  const server = await conn.client.compute.getServer(machine.nativeId);
  if (!server) throw new FormworkError('MACHINE_FAILED', `server ${machine.nativeId} is gone`, { nativeId: machine.nativeId });
  const topo = await loadTopology(conn.client);
  const ev = await evidenceFor(conn, ctx, [server], topo);
  const current = toMachine(server, ev);
  const decisions = [...(current.decisions ?? [])];
  const done = (d: NodeDecision) => ({ ...current, decisions: [...decisions, d] });

  const ours = ev.floatingIps.find((f) => tagsFromNeutron(f.tags)[TAG_NODE_ID] === machine.tags[TAG_NODE_ID]);
  if (ours) return done({ subject: 'floating-ip', chosen: ours.floating_ip_address, reason: `floating IP ${ours.id}, made earlier for this machine, attached to port ${ours.port_id}` });
  const pub = current.addresses.find((a) => a.role === 'public');
  if (pub) return done({ subject: 'floating-ip', chosen: 'none', reason: `not needed: ${pub.address} is public (${pub.reason})` });
  if (conn.config.floatingIpSource === 'None') {
    const fixed = current.addresses.find((a) => a.family === 4) ?? current.addresses[0];
    if (fixed && (await answersFromControlPlane(fixed.address, machine))) return provenPublic(done({ subject: 'floating-ip', chosen: 'none', reason: `not possible: the vendor profile (or clouds.yaml) says floating_ip_source is None; ${fixed.address} answered TCP/22 from the control plane` }), fixed.address);
    // sshd may not be up yet: retried within the readiness wait.
    throw new FormworkError('MACHINE_FAILED', `server ${server.id}: the vendor profile (or clouds.yaml) says floating_ip_source is None, and its fixed address ${fixed?.address ?? '(none)'} does not answer TCP/22 from the control plane yet`, { nativeId: server.id }, { retryable: true, nextDelayMs: 5000 });
  }

  const port = bootPort(ev.ports, server.metadata?.[novaMetadataKey(META.network)]);
  if (!port) throw new FormworkError('PROVIDER_ERROR', `server ${server.id} has no port with an IPv4 address yet`, { nativeId: server.id }, { retryable: true });
  const subnetId = port.fixed_ips.find((ip) => !ip.ip_address.includes(':'))!.subnet_id;
  await releaseStrays(conn, ctx, machine);
  let ext: ReturnType<typeof chooseExternalNetwork>;
  let routerReason: string;
  try {
    ext = chooseExternalNetwork(topo, conn.config, ctx.settings, { subnetId, interfacePorts: ev.interfacePorts });
    routerReason = checkRoute(topo, ev.interfacePorts, subnetId, ext.network.id, ext.network.name);
  } catch (noRoute) {
    if (!(noRoute instanceof FormworkError)) throw noRoute;
    // No floating IP could reach it, but the fixed address may be public with nothing saying so
    // (a provider network called "private"): a TCP/22 answer from the control plane is the evidence.
    const fixed = port.fixed_ips.find((ip) => ip.subnet_id === subnetId)!.ip_address;
    if (await answersFromControlPlane(fixed, machine)) return provenPublic(done({ subject: 'floating-ip', chosen: 'none', reason: `not needed: ${fixed} answered TCP/22 from the control plane (${(noRoute as Error).message.split(',')[0]})` }), fixed);
    // sshd may not be up yet: retried within the readiness wait, which ends with this refusal.
    const e = noRoute as FormworkError;
    throw new FormworkError(e.code, `${e.message}; its fixed address ${fixed} did not answer TCP/22 either`, e.details, { retryable: true, nextDelayMs: 5000 });
  }
  decisions.push({ subject: 'external-network', chosen: ext.network.id, reason: `${ext.reason}; ${routerReason}` });

  const fip = ctx.settings.reuseFloatingIps === true ? await reuseOne(conn, ext.network.id, port, machine) : undefined;
  const made =
    fip ??
    (await conn.client.network.createFloatingIp({
      floatingNetworkId: ext.network.id,
      portId: port.id,
      description: `formwork node ${machine.tags[TAG_NODE_ID] ?? machine.nativeId} of provider ${ctx.providerName}`,
      tags: neutronTags(ownership(machine)),
    }));
  const address = floatingAddress(made, { topo });
  return {
    ...current,
    addresses: [...current.addresses.filter((a) => a.address !== address.address), address],
    decisions: [...decisions, { subject: 'floating-ip', chosen: made.floating_ip_address, reason: fip ? `an unattached floating IP ${made.id} taken over (settings.reuseFloatingIps), attached to port ${port.id}` : `allocated on ${ext.network.name || ext.network.id} with port_id ${port.id} in one call: no address of the server is public` }],
  };
}

/** Releases what `makeReachable` made for the machine, confirmed by reading back (see the file's comment). */
export async function undoReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<void> {
  const nodeId = machine.tags[TAG_NODE_ID];
  if (!nodeId) return;
  const conn = await connect(ctx);
  for (const f of await conn.client.network.listFloatingIps({ tags: tagFilter(ctx, nodeId) })) await releaseFloatingIp(conn, f);
}

/**
 * Gives one floating IP back: deletes one Formwork made, detaches and untags one it took over; confirmed by reading back.
 *
 * @example
 *   await releaseFloatingIp(conn, fip);
 */
export async function releaseFloatingIp(conn: Connection, f: NeutronFloatingIp): Promise<void> {
  const net = conn.client.network;
  if (tagsFromNeutron(f.tags)[TAG_REUSED] === 'true') {
    await net.updateFloatingIp(f.id, { port_id: null });
    await net.setTags('floatingips', f.id, (f.tags ?? []).filter((t) => !t.startsWith('formwork.io/')));
    return;
  }
  await net.deleteFloatingIp(f.id);
  const deadline = Date.now() + releaseConfirm.ms;
  while (await net.getFloatingIp(f.id)) {
    if (Date.now() > deadline) throw new FormworkError('PROVIDER_ERROR', `floating IP ${f.floating_ip_address} (${f.id}) still exists ${releaseConfirm.ms / 1000} s after its delete was accepted`, { id: f.id }, { retryable: true });
    await new Promise((r) => setTimeout(r, bootPoll.ms));
  }
}

const ownership = (m: ProvisionedMachine) => Object.fromEntries(Object.entries(m.tags).filter(([k]) => k === TAG_MANAGED_BY || k === TAG_PROVIDER || k === TAG_NODE_ID));

/** The port to attach to: the one on the network the server booted on, else the first with an IPv4 address. */
function bootPort(ports: NeutronPort[], networkId: string | undefined): NeutronPort | undefined {
  const v4 = ports.filter((p) => p.fixed_ips.some((ip) => !ip.ip_address.includes(':')));
  return v4.find((p) => p.network_id === networkId) ?? v4[0];
}

/** Floating IPs tagged for this machine but attached to nothing (an association that outlived a timeout): released before a new one is made. */
async function releaseStrays(conn: Connection, ctx: ProviderContext, machine: ProvisionedMachine): Promise<void> {
  const nodeId = machine.tags[TAG_NODE_ID];
  if (!nodeId) return;
  for (const f of await conn.client.network.listFloatingIps({ tags: tagFilter(ctx, nodeId) })) if (!f.port_id) await releaseFloatingIp(conn, f);
}

/** Why the route is there, or PROVIDER_INVALID saying how to make one (Neutron would refuse the floating IP). */
function checkRoute(topo: Parameters<typeof routersBetween>[0], interfacePorts: NeutronPort[], subnetId: string, extId: string, extName: string): string {
  const routers = routersBetween(topo, interfacePorts, subnetId, extId);
  if (routers.length) return `router ${routers[0].name || routers[0].id} connects subnet ${subnetId} to it`;
  const onSubnet = interfacePorts.filter((p) => p.fixed_ips.some((ip) => ip.subnet_id === subnetId));
  // A router of another project (shared by the cloud) is not visible, but its interface port is.
  if (onSubnet.some((p) => !topo.routers.some((r) => r.id === p.device_id))) return `a router this project cannot see has an interface on subnet ${subnetId}`;
  throw new FormworkError(
    'PROVIDER_INVALID',
    `no router connects subnet ${subnetId} to external network ${extName || extId}, so a floating IP cannot reach the server: add one (openstack router create R; openstack router set --external-gateway ${extName || extId} R; openstack router add subnet R ${subnetId}), or boot on a routed network (settings.network) or name another settings.externalNetwork`,
    { subnetId, externalNetwork: extId },
  );
}

/**
 * How long the fixed address is given to answer when no floating IP could reach it (each try of the readiness wait).
 *
 * @example
 *   fixedAddressProbe.ms = 50; // a unit test's
 */
export const fixedAddressProbe = { ms: 5000 };

/** Whether TCP/22 (the machine's SSH port) on `address` answers from the control plane within `fixedAddressProbe.ms`. */
async function answersFromControlPlane(address: string, machine: ProvisionedMachine): Promise<boolean> {
  const port = Number(machine.inventory?.sshPort ?? 22);
  return readinessProbe.tcp(address, Number.isInteger(port) && port > 0 ? port : 22, Date.now() + fixedAddressProbe.ms).then(() => true, () => false);
}

/**
 * The machine with its fixed `address` also listed as public: a TCP/22 answer from the control
 * plane proved it reachable. Its private entry stays: it is still the address its peers use.
 */
function provenPublic(m: ProvisionedMachine, address: string): ProvisionedMachine {
  const fixed = m.addresses.find((a) => a.address === address);
  if (!fixed || fixed.role === 'public') return m;
  return { ...m, addresses: [...m.addresses, { ...fixed, role: 'public', reason: 'TCP/22 answered from the control plane (no floating IP reaches it)' }] };
}

/** Takes over an unattached floating IP nobody marked (settings.reuseFloatingIps), or none. */
async function reuseOne(conn: Connection, extId: string, port: NeutronPort, machine: ProvisionedMachine): Promise<NeutronFloatingIp | undefined> {
  const free = (await conn.client.network.listFloatingIps({ floating_network_id: extId })).filter((f) => !f.port_id && !(f.tags ?? []).some((t) => t.startsWith('formwork.io/')));
  for (const f of free) {
    try {
      const taken = await conn.client.network.updateFloatingIp(f.id, { port_id: port.id });
      const tags = [...(f.tags ?? []), ...neutronTags({ ...ownership(machine), [TAG_REUSED]: 'true' })];
      await conn.client.network.setTags('floatingips', f.id, tags);
      return { ...taken, tags };
    } catch (e) {
      // Another job attached it first (409): try the next one.
      if (!(e instanceof FormworkError && e.code === 'CONFLICT')) throw e;
    }
  }
  return undefined;
}
