/**
 * What each network is, from evidence rather than names (a "private" network may be the
 * routed one, an "external" one may be visible but unusable), and the choices made on them:
 * the network a server boots on, and the external network its floating IP comes from.
 *
 * Evidence, most trusted first: Neutron's `router:external`; the project's routers (a router
 * whose gateway is on an external network and with an interface on a subnet connects that
 * subnet to it); subnets' `gateway_ip`; then the vendor profile's or clouds.yaml's
 * per-network flags (`routes_externally`, `nat_source`, `nat_destination`,
 * `default_interface`), matched by id or name. A project may see an external network but not
 * its subnets: nothing here needs them.
 *
 * @example
 *   const topo = await loadTopology(client);
 *   chooseBootNetwork(topo, config, ctx.settings); // { network: {…}, reason: 'settings.network "private"' }
 */
import { FormworkError } from '../../core/errors.js';
import type { CatalogNetwork } from '../provider.js';
import type { OpenStackClient } from './client/index.js';
import type { NeutronNetwork, NeutronPort, NeutronRouter, NeutronSubnet } from './client/neutron.js';
import type { CloudConfig, NetworkSetting } from './config/cloud-config.js';

/** The networks, subnets and routers a project sees. */
export interface Topology {
  networks: NeutronNetwork[];
  subnets: NeutronSubnet[];
  routers: NeutronRouter[];
}

/** A choice of network and why. @example { network: { id: 'n1', name: 'private', … }, reason: 'settings.network "private"' } */
export interface NetworkChoice {
  network: NeutronNetwork;
  reason: string;
}

/**
 * Reads what the project sees (three list calls).
 *
 * @example
 *   const topo = await loadTopology(client);
 */
export async function loadTopology(client: OpenStackClient): Promise<Topology> {
  const [networks, subnets, routers] = await Promise.all([client.network.listNetworks(), client.network.listSubnets(), client.network.listRouters()]);
  return { networks, subnets, routers };
}

/**
 * The profile's or clouds.yaml's flags for a network (matched by id, then name).
 *
 * @example
 *   profileFlags(config, net); // { name: 'public', routes_externally: true }
 */
export function profileFlags(config: Pick<CloudConfig, 'networks'>, net: Pick<NeutronNetwork, 'id' | 'name'>): NetworkSetting | undefined {
  return config.networks.find((n) => n.id === net.id) ?? config.networks.find((n) => !n.id && n.name === net.name);
}

const byNameOrId = (networks: NeutronNetwork[], wanted: string) => networks.filter((n) => n.id === wanted || n.name === wanted);
const describeNet = (n: NeutronNetwork) => `${n.name || '(no name)'} (${n.id})`;

/**
 * The network `wanted` (an id or a unique name), or PROVIDER_INVALID naming the setting and the candidates.
 *
 * @example
 *   networkNamed(topo, 'private', 'settings.network');
 */
export function networkNamed(topo: Topology, wanted: string, setting: string): NeutronNetwork {
  const found = byNameOrId(topo.networks, wanted);
  if (found.length === 1) return found[0];
  const known = topo.networks.map(describeNet).join(', ') || 'none';
  if (found.length === 0) throw new FormworkError('PROVIDER_INVALID', `${setting} "${wanted}" is no network this project sees; its networks: ${known}`, { setting, wanted });
  throw new FormworkError('PROVIDER_INVALID', `${setting} "${wanted}" names ${found.length} networks (${found.map(describeNet).join(', ')}): give the id of one`, { setting, wanted });
}

/**
 * The network to boot on: `settings.network`; else the profile's `default_interface` network;
 * else the only network that is not `router:external`. Several and none chosen is an error
 * listing them: Nova itself refuses a boot with several visible networks and none named.
 *
 * @example
 *   chooseBootNetwork(topo, config, { network: 'private' }).reason; // 'settings.network "private"'
 */
export function chooseBootNetwork(topo: Topology, config: Pick<CloudConfig, 'networks'>, settings: Record<string, unknown>): NetworkChoice {
  if (typeof settings.network === 'string') return { network: networkNamed(topo, settings.network, 'settings.network'), reason: `settings.network "${settings.network}"` };
  const preferred = config.networks.find((n) => n.default_interface);
  if (preferred) {
    const net = networkNamed(topo, preferred.id ?? preferred.name ?? '', 'the vendor profile\'s default_interface network');
    return { network: net, reason: `the vendor profile's (or clouds.yaml's) default_interface network` };
  }
  const tenant = topo.networks.filter((n) => n['router:external'] !== true);
  if (tenant.length === 1) return { network: tenant[0], reason: `the only network that is not router:external among the ${topo.networks.length} this project sees` };
  if (tenant.length === 0) {
    throw new FormworkError('PROVIDER_INVALID', `no network to boot on: this project sees ${topo.networks.length ? `only external networks (${topo.networks.map(describeNet).join(', ')})` : 'no network'}; create one with a subnet and a router, or name one in settings.network`, {});
  }
  throw new FormworkError('PROVIDER_INVALID', `this project sees ${tenant.length} networks to boot on: ${tenant.map(describeNet).join(', ')}; name one in settings.network`, { networks: tenant.map((n) => n.id) });
}

/**
 * The routers connecting `subnetId` to `externalId`: a router whose gateway is on the
 * external network and which has an interface port on the subnet.
 *
 * @example
 *   routersBetween(topo, interfacePorts, subnet.id, ext.id).map((r) => r.name); // ['router1']
 */
export function routersBetween(topo: Topology, interfacePorts: NeutronPort[], subnetId: string, externalId: string): NeutronRouter[] {
  const onSubnet = new Set(interfacePorts.filter((p) => p.fixed_ips.some((ip) => ip.subnet_id === subnetId)).map((p) => p.device_id));
  return topo.routers.filter((r) => onSubnet.has(r.id) && r.external_gateway_info?.network_id === externalId);
}

/**
 * The router interface ports on a network (every kind of router interface Neutron has).
 *
 * @example
 *   await routerInterfaces(client, net.id);
 */
export async function routerInterfaces(client: OpenStackClient, networkId: string): Promise<NeutronPort[]> {
  const ports = await client.network.listPorts({ network_id: networkId });
  return ports.filter((p) => /^network:(router_interface|router_interface_distributed|ha_router_replicated_interface)$/.test(p.device_owner));
}

/**
 * The external network a floating IP comes from, and why: `settings.externalNetwork`; else
 * the profile's `nat_source` network; else the one `router:external` network a router
 * connects the port's subnet to; else the only `router:external` network. Several and
 * nothing to decide between them is an error naming the setting.
 *
 * @example
 *   chooseExternalNetwork(topo, config, settings, { subnetId, interfacePorts }).reason; // 'router router1 connects subnet … to it'
 */
export function chooseExternalNetwork(topo: Topology, config: Pick<CloudConfig, 'networks'>, settings: Record<string, unknown>, from: { subnetId: string; interfacePorts: NeutronPort[] }): NetworkChoice {
  if (typeof settings.externalNetwork === 'string') return { network: networkNamed(topo, settings.externalNetwork, 'settings.externalNetwork'), reason: `settings.externalNetwork "${settings.externalNetwork}"` };
  const natSource = config.networks.find((n) => n.nat_source);
  if (natSource) return { network: networkNamed(topo, natSource.id ?? natSource.name ?? '', 'the vendor profile\'s nat_source network'), reason: `the vendor profile's (or clouds.yaml's) nat_source network` };
  const external = topo.networks.filter((n) => n['router:external'] === true);
  if (external.length === 0) throw new FormworkError('PROVIDER_INVALID', 'no router:external network is visible to this project, so no floating IP can be made; name one in settings.externalNetwork, or boot on a network that routes externally (settings.network)', {});
  const routed = external.filter((n) => routersBetween(topo, from.interfacePorts, from.subnetId, n.id).length > 0);
  if (routed.length === 1) {
    const [router] = routersBetween(topo, from.interfacePorts, from.subnetId, routed[0].id);
    return { network: routed[0], reason: `router:external, and router ${router.name || router.id} connects subnet ${from.subnetId} to it` };
  }
  if (external.length === 1) return { network: external[0], reason: 'the only router:external network this project sees' };
  const among = (routed.length ? routed : external).map(describeNet).join(', ');
  throw new FormworkError('PROVIDER_INVALID', `several external networks could give a floating IP (${among}); name one in settings.externalNetwork`, { networks: (routed.length ? routed : external).map((n) => n.id) });
}

/**
 * The networks as the catalog shows them, each flag with where it came from.
 *
 * @example
 *   catalogNetworks(topo, config)[0]; // { id, name: 'public', flags: { external: true }, evidence: ['router:external=true'] }
 */
export function catalogNetworks(topo: Topology, config: Pick<CloudConfig, 'networks'>): CatalogNetwork[] {
  return topo.networks.map((n) => {
    const flags: Record<string, boolean> = {};
    const evidence: string[] = [];
    if (n['router:external'] === true) {
      flags.external = true;
      evidence.push('router:external=true');
    }
    const gateways = topo.routers.filter((r) => r.external_gateway_info?.network_id === n.id);
    if (gateways.length) evidence.push(`gateway of router ${gateways.map((r) => r.name || r.id).join(', ')}`);
    const subnets = topo.subnets.filter((s) => s.network_id === n.id);
    if (subnets.length && subnets.every((s) => !s.gateway_ip)) evidence.push('no subnet has a gateway_ip');
    const p = profileFlags(config, n);
    for (const flag of ['routes_externally', 'nat_destination', 'nat_source', 'default_interface'] as const) {
      if (typeof p?.[flag] === 'boolean') {
        flags[flag] = p[flag] as boolean;
        evidence.push(`vendor profile ${flag}=${String(p[flag])}`);
      }
    }
    return { id: n.id, name: n.name, flags, evidence };
  });
}
