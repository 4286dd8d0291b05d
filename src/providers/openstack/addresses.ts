/**
 * A server's addresses, each with its role and the evidence that decided it. Nova's
 * labels lie (a "private" network may be the routed one, a 192.168 floating IP may be
 * public), so the role comes from the first of these that speaks, in this order of trust:
 *
 * 1. Nova's `OS-EXT-IPS:type` is `floating`, or a Neutron floating IP is attached to the
 *    server's port → public;
 * 2. the address is on a `router:external` network → public;
 * 3. its subnet is connected by a router to an external network → private (reached from
 *    outside through a floating IP only);
 * 4. its subnet has no `gateway_ip` → private (not routed at all);
 * 5. the vendor profile's (or clouds.yaml's) flags for the network: `routes_externally`
 *    (`routes_ipv4_externally`/`routes_ipv6_externally` for the family) → public, or private
 *    when the flag is false;
 * 6. otherwise → private, nothing saying it is reachable from outside.
 *
 * The TCP/22 probe from the control plane (readiness.ts) then proves the control address,
 * and says so in its reason.
 *
 * @example
 *   classifyAddresses(server, { topo, ports, interfacePorts, floatingIps, config });
 *   // [{ address: '10.10.0.5', role: 'private', reason: 'subnet private-subnet: router router1 connects it to external network public (reached through a floating IP)' }, …]
 */
import { isIP } from 'node:net';
import type { NodeAddress } from '../provider.js';
import type { NovaServer } from './client/nova.js';
import type { NeutronFloatingIp, NeutronPort } from './client/neutron.js';
import type { CloudConfig } from './config/cloud-config.js';
import { profileFlags, routersBetween, type Topology } from './networks.js';

/** What classifying a server's addresses reads besides the server. */
export interface AddressEvidence {
  topo: Topology;
  /** The server's own ports. */
  ports: NeutronPort[];
  /** Router interface ports on the server's networks. */
  interfacePorts: NeutronPort[];
  /** Floating IPs attached to the server's ports. */
  floatingIps: NeutronFloatingIp[];
  config: Pick<CloudConfig, 'networks'>;
}

const family = (a: string): 4 | 6 => (isIP(a) === 6 ? 6 : 4);

/**
 * Every address of the server (Nova's, and attached floating IPs Nova does not show yet), classified.
 *
 * @example
 *   classifyAddresses(server, evidence).filter((a) => a.role === 'public');
 */
export function classifyAddresses(server: Pick<NovaServer, 'addresses'>, ev: AddressEvidence): NodeAddress[] {
  const out: NodeAddress[] = [];
  const seen = new Set<string>();
  for (const [label, list] of Object.entries(server.addresses ?? {})) {
    for (const a of list) {
      if (seen.has(a.addr)) continue;
      seen.add(a.addr);
      out.push(classifyOne(a.addr, label, a['OS-EXT-IPS:type'], ev));
    }
  }
  for (const f of ev.floatingIps) {
    if (!f.port_id || seen.has(f.floating_ip_address)) continue;
    seen.add(f.floating_ip_address);
    out.push(floatingAddress(f, ev));
  }
  return withPrivateRole(out);
}

/**
 * A server whose every fixed address is public (booted straight on a provider network, as
 * limestone's "Public Internet") is reached by its peers there too: those addresses are also
 * its private ones. A floating IP never is (the server's own interface does not hold it).
 */
function withPrivateRole(out: NodeAddress[]): NodeAddress[] {
  if (out.some((a) => a.role === 'private')) return out;
  const fixedPublic = out.filter((a) => a.role === 'public' && !/floating/i.test(a.reason ?? ''));
  return [...out, ...fixedPublic.map((a) => ({ ...a, role: 'private' as const, reason: `the server's fixed address on ${a.network ?? 'its network'}: no other, so its peers reach it there` }))];
}

/**
 * A floating IP as a public address, with the reason.
 *
 * @example
 *   floatingAddress(fip, evidence); // { address: '198.18.0.12', role: 'public', reason: 'floating IP … on external network public, attached to port …' }
 */
export function floatingAddress(f: NeutronFloatingIp, ev: Pick<AddressEvidence, 'topo'>): NodeAddress {
  const ext = ev.topo.networks.find((n) => n.id === f.floating_network_id);
  return {
    address: f.floating_ip_address,
    family: family(f.floating_ip_address),
    role: 'public',
    network: ext?.name ?? f.floating_network_id,
    reason: `floating IP ${f.id} on external network ${ext?.name || f.floating_network_id}, attached to port ${f.port_id}`,
  };
}

function classifyOne(addr: string, label: string, ipsType: string | undefined, ev: AddressEvidence): NodeAddress {
  const base = { address: addr, family: family(addr) };
  const fip = ev.floatingIps.find((f) => f.floating_ip_address === addr);
  if (ipsType === 'floating' || fip) {
    return fip ? floatingAddress(fip, ev) : { ...base, role: 'public', network: label, reason: `Nova's OS-EXT-IPS:type is floating (network label ${label})` };
  }
  const port = ev.ports.find((p) => p.fixed_ips.some((ip) => ip.ip_address === addr));
  const subnetId = port?.fixed_ips.find((ip) => ip.ip_address === addr)?.subnet_id;
  const net = ev.topo.networks.find((n) => n.id === port?.network_id) ?? ev.topo.networks.find((n) => n.name === label);
  const netName = net?.name || label;
  if (net?.['router:external'] === true) return { ...base, role: 'public', network: netName, reason: `on network ${netName}, which is router:external` };
  if (net && subnetId) {
    const routed = ev.topo.networks.filter((n) => n['router:external'] === true).flatMap((ext) => routersBetween(ev.topo, ev.interfacePorts, subnetId, ext.id).map((r) => ({ ext, r })));
    if (routed.length) {
      const { ext, r } = routed[0];
      return { ...base, role: 'private', network: netName, reason: `subnet ${subnetName(ev, subnetId)}: router ${r.name || r.id} connects it to external network ${ext.name || ext.id} (reached from outside through a floating IP)` };
    }
    const subnet = ev.topo.subnets.find((s) => s.id === subnetId);
    if (subnet && !subnet.gateway_ip) return { ...base, role: 'private', network: netName, reason: `subnet ${subnet.name || subnet.id} has no gateway_ip: not routed` };
  }
  const flags = net ? profileFlags(ev.config, net) : ev.config.networks.find((n) => n.name === label);
  const routes = base.family === 6 ? (flags?.routes_ipv6_externally ?? flags?.routes_externally) : (flags?.routes_ipv4_externally ?? flags?.routes_externally);
  if (routes === true) return { ...base, role: 'public', network: netName, reason: `the vendor profile (or clouds.yaml) says network ${netName} routes_externally` };
  if (routes === false) return { ...base, role: 'private', network: netName, reason: `the vendor profile (or clouds.yaml) says network ${netName} does not route externally` };
  return { ...base, role: 'private', network: netName, reason: `fixed address on network ${netName}: nothing (router:external, a router, the vendor profile) says it is reachable from outside` };
}

const subnetName = (ev: AddressEvidence, id: string) => {
  const s = ev.topo.subnets.find((x) => x.id === id);
  return s?.name ? `${s.name} (${id})` : id;
};
