/**
 * The emulator's memory: every resource of the cloud as its API shows it (plain documents
 * in the fixtures' shapes), in creation order (lists page in that order), and what the API
 * does not show (the side of the host backend each network lies on, the host behind each
 * server). Seeded from a scenario: its networks with their subnets (on the backend's /24s),
 * the routers that join private subnets to routed external networks, a default security
 * group, flavors and images.
 *
 * @example
 *   const state = new EmulatorState(scenarioNamed('floating-ip-required'), backend, { projectId: 'p1' });
 *   [...state.networks.values()].map((n) => n.name); // ['private', 'public']
 */
import { randomUUID } from 'node:crypto';
import { Faults } from '../../emulation/faults.js';
import type { HostBackend, NetworkSide } from '../../emulation/hosts.js';
import type { NetworkSeed, Scenario } from './scenarios.js';
import { isoNow } from './wire.js';

/** A resource as its API shows it. */
export type Doc = Record<string, unknown> & { id: string };

/** A server: its Nova document and what lies behind it. */
export interface ServerRecord {
  doc: Doc;
  hostId?: string;
  side: NetworkSide;
  networkId: string;
  /** Ports Nova made for it (deleted with it), and ports it was given (unbound on delete). */
  ownPorts: string[];
  givenPorts: string[];
  /** Further networks asked for (a port each, not reachable). */
  extraNetworks: string[];
  deleting?: boolean;
  /** A fault: its floating IPs attach in Neutron but never reach its host. */
  unreachable?: boolean;
}

/** Who the emulator's project and user are. */
export interface Identity {
  projectId: string;
  projectName: string;
  /** The cloud operator's project: it owns the external networks and their subnets. */
  adminProjectId: string;
  userId: string;
  username: string;
  domainId: string;
}

/** The first address of a /24 after `.1`… given as `prefix.N`. */
const FLOATING_FIRST = 200;
const FLOATING_LAST = 250;

/**
 * The cloud's state (see the file's comment).
 *
 * @example
 *   state.add(state.ports, { id: state.newId(), network_id: net.id, ... });
 */
export class EmulatorState {
  readonly networks = new Map<string, Doc>();
  readonly subnets = new Map<string, Doc>();
  readonly ports = new Map<string, Doc>();
  readonly routers = new Map<string, Doc>();
  readonly floatingips = new Map<string, Doc>();
  readonly securityGroups = new Map<string, Doc>();
  readonly securityGroupRules = new Map<string, Doc>();
  readonly servers = new Map<string, ServerRecord>();
  readonly flavors = new Map<string, Doc>();
  readonly keypairs = new Map<string, Doc & { name: string }>();
  readonly images = new Map<string, Doc>();
  /** The backend side of each network (external networks: `public`). */
  readonly sides = new Map<string, NetworkSide>();
  /** Boots started so far (for scenarios whose first boots fail). */
  boots = 0;
  private macs = 0;
  private fixedNext = new Map<string, number>();

  constructor(
    readonly scenario: Scenario,
    readonly backend: HostBackend,
    readonly identity: Identity,
    /** The faults injected (`formwork emulate openstack --faults`): none by default. */
    readonly faults: Faults = new Faults(),
  ) {
    this.seed();
  }

  /** A new resource id (a UUID, as every OpenStack service uses). */
  newId(): string {
    return randomUUID();
  }

  /** A MAC address in OpenStack's `fa:16:3e` range. */
  newMac(): string {
    const n = ++this.macs;
    return `fa:16:3e:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  }

  /** The common fields of a Neutron resource (project, timestamps, revision, tags). */
  neutronCommon(): Record<string, unknown> {
    const now = isoNow();
    return { project_id: this.identity.projectId, tenant_id: this.identity.projectId, created_at: now, updated_at: now, revision_number: 0, tags: [], description: '' };
  }

  /** The prefix of the /24 a network's subnet lies in. */
  prefixOf(side: NetworkSide): string {
    return side === 'public' ? this.backend.publicPrefix : this.backend.privatePrefix;
  }

  /**
   * A free floating address (`.200`–`.250` of the public /24), or undefined when the pool is used up.
   *
   * @example
   *   state.freeFloatingAddress(); // '198.18.80.200'
   */
  freeFloatingAddress(): string | undefined {
    const used = new Set([...this.floatingips.values()].map((f) => f.floating_ip_address));
    for (let i = FLOATING_FIRST; i <= FLOATING_LAST; i++) {
      const a = `${this.backend.publicPrefix}.${i}`;
      if (!used.has(a)) return a;
    }
    return undefined;
  }

  /**
   * A fixed address for a port made through the API (`.100`–`.199`: the backend's own hosts take their own addresses).
   *
   * @example
   *   state.apiFixedAddress(subnet); // '10.20.0.100'
   */
  apiFixedAddress(subnet: Doc): string {
    const n = this.fixedNext.get(subnet.id) ?? 100;
    this.fixedNext.set(subnet.id, n + 1);
    return `${String(subnet.cidr).replace(/\.0\/24$/, '')}.${n}`;
  }

  /**
   * Whether the project sees a Neutron resource: not the subnets of the operator's networks
   * unless shared, nor router gateway ports (as a real cloud hides them from its users).
   *
   * @example
   *   state.visible('subnets', externalSubnet); // false
   */
  visible(resource: string, doc: Doc): boolean {
    if (resource === 'subnets') {
      const net = this.networks.get(String(doc.network_id));
      return !net || net.project_id === this.identity.projectId || net.shared === true;
    }
    if (resource === 'ports') return doc.device_owner !== 'network:router_gateway';
    return true;
  }

  /** The subnets of a network. */
  subnetsOf(networkId: string): Doc[] {
    return [...this.subnets.values()].filter((s) => s.network_id === networkId);
  }

  /**
   * Makes a port on a network (first subnet) with `address` (or one from the API range).
   *
   * @example
   *   state.createPort(net.id, { device_owner: 'compute:nova', device_id: server.id }, '10.20.0.11');
   */
  createPort(networkId: string, fields: Record<string, unknown>, address?: string): Doc {
    const subnet = this.subnetsOf(networkId)[0];
    const fixed = subnet ? [{ subnet_id: subnet.id, ip_address: address ?? this.apiFixedAddress(subnet) }] : [];
    const port: Doc = {
      ...this.neutronCommon(),
      id: this.newId(),
      name: '',
      network_id: networkId,
      mac_address: this.newMac(),
      admin_state_up: true,
      status: 'ACTIVE',
      device_id: '',
      device_owner: '',
      fixed_ips: fixed,
      allowed_address_pairs: [],
      security_groups: [],
      'binding:vnic_type': 'normal',
      port_security_enabled: true,
      extra_dhcp_opts: [],
      ...fields,
    };
    if (!port.device_id) port.status = 'DOWN';
    this.ports.set(port.id, port);
    return port;
  }

  private addNetwork(seed: NetworkSeed): Doc {
    const side: NetworkSide = seed.kind === 'tenant-private' ? 'private' : 'public';
    const external = seed.routerExternal ?? seed.kind === 'external';
    const net: Doc = {
      ...this.neutronCommon(),
      id: this.newId(),
      name: seed.name,
      status: 'ACTIVE',
      admin_state_up: true,
      shared: seed.shared ?? false,
      'router:external': external,
      subnets: [],
      mtu: 1450,
      availability_zones: ['nova'],
      ipv4_address_scope: null,
      ipv6_address_scope: null,
      port_security_enabled: true,
      is_default: false,
      availability_zone_hints: [],
      dns_domain: '',
      l2_adjacency: true,
      qos_policy_id: null,
      vlan_transparent: false,
    };
    if (seed.kind === 'external') Object.assign(net, { project_id: this.identity.adminProjectId, tenant_id: this.identity.adminProjectId });
    this.networks.set(net.id, net);
    this.sides.set(net.id, side);
    const prefix = this.prefixOf(side);
    const subnet: Doc = {
      ...this.neutronCommon(),
      id: this.newId(),
      name: `${seed.name}-subnet`,
      network_id: net.id,
      ip_version: 4,
      cidr: `${prefix}.0/24`,
      gateway_ip: `${prefix}.1`,
      enable_dhcp: seed.kind !== 'external',
      allocation_pools: [{ start: `${prefix}.2`, end: `${prefix}.254` }],
      dns_nameservers: [],
      host_routes: [],
      ipv6_ra_mode: null,
      ipv6_address_mode: null,
      subnetpool_id: null,
      segment_id: null,
      service_types: [],
      project_id: net.project_id,
      tenant_id: net.project_id,
    };
    this.subnets.set(subnet.id, subnet);
    (net.subnets as string[]).push(subnet.id);
    return net;
  }

  /**
   * Joins a router's gateway to an external network and its interfaces to subnets (a port each, on the subnet's gateway address).
   *
   * @example
   *   state.addRouter('router1', ext.id, [privateSubnet.id]);
   */
  addRouter(name: string, externalNetworkId: string | null, subnetIds: string[]): Doc {
    const router: Doc = {
      ...this.neutronCommon(),
      id: this.newId(),
      name,
      status: 'ACTIVE',
      admin_state_up: true,
      external_gateway_info: null,
      routes: [],
      distributed: false,
      ha: false,
      availability_zones: ['nova'],
      availability_zone_hints: [],
      flavor_id: null,
      service_type_id: null,
    };
    this.routers.set(router.id, router);
    if (externalNetworkId) this.setGateway(router, externalNetworkId);
    for (const s of subnetIds) this.addInterface(router, this.subnets.get(s) as Doc);
    return router;
  }

  /** Sets a router's external gateway (a port on the external network). */
  setGateway(router: Doc, networkId: string): void {
    const ext = this.subnetsOf(networkId)[0];
    const port = this.createPort(networkId, { device_owner: 'network:router_gateway', device_id: router.id, status: 'ACTIVE' });
    router.external_gateway_info = { network_id: networkId, enable_snat: true, external_fixed_ips: ext ? [{ subnet_id: ext.id, ip_address: (port.fixed_ips as { ip_address: string }[])[0].ip_address }] : [] };
  }

  /** Adds a router interface on a subnet (on its gateway address). */
  addInterface(router: Doc, subnet: Doc): Doc {
    return this.createPort(String(subnet.network_id), { device_owner: 'network:router_interface', device_id: router.id, status: 'ACTIVE' }, String(subnet.gateway_ip));
  }

  /**
   * Whether a router joins `subnetId` to the external network `networkId` (Neutron's condition for a floating IP).
   *
   * @example
   *   state.routed(port.fixed_ips[0].subnet_id, ext.id); // true
   */
  routed(subnetId: string, networkId: string): boolean {
    return [...this.routers.values()].some(
      (r) =>
        (r.external_gateway_info as { network_id?: string } | null)?.network_id === networkId &&
        [...this.ports.values()].some((p) => p.device_id === r.id && p.device_owner === 'network:router_interface' && (p.fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId)),
    );
  }

  private seed(): void {
    const nets = this.scenario.networks.map((seed) => ({ seed, doc: this.addNetwork(seed) }));
    const tenants = nets.filter((n) => n.seed.kind === 'tenant-private');
    const destinations = tenants.some((n) => n.seed.natDestination) ? tenants.filter((n) => n.seed.natDestination) : tenants;
    const privateSubnets = destinations.flatMap((n) => n.doc.subnets as string[]);
    if (this.scenario.l3) {
      for (const ext of nets.filter((n) => n.seed.kind === 'external' && n.seed.routed)) this.addRouter(`router-${ext.seed.name}`, ext.doc.id, privateSubnets);
    }
    const sg: Doc = { ...this.neutronCommon(), id: this.newId(), name: 'default', description: 'Default security group', stateful: true, security_group_rules: [] };
    this.securityGroups.set(sg.id, sg);
    for (const direction of ['egress', 'ingress']) {
      const rule: Doc = { ...this.neutronCommon(), id: this.newId(), security_group_id: sg.id, direction, ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: direction === 'ingress' ? sg.id : null };
      this.securityGroupRules.set(rule.id, rule);
      (sg.security_group_rules as Doc[]).push(rule);
    }
    for (const f of this.scenario.flavors) {
      this.flavors.set(f.id, { id: f.id, name: f.name, vcpus: f.vcpus, ram: f.ram, disk: f.disk, 'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': false, swap: '', rxtx_factor: 1.0, 'os-flavor-access:is_public': true, description: null, extra_specs: {} });
    }
    for (const i of this.scenario.images) {
      const now = isoNow();
      this.images.set(i.id, {
        id: i.id, name: i.name, status: 'active', visibility: 'public', protected: false, os_hidden: false, owner: this.identity.projectId,
        container_format: 'bare', disk_format: 'qcow2', min_disk: 0, min_ram: 0, size: 344457216, virtual_size: 2147483648,
        checksum: 'b1f5d4f8c9e2a0b3c4d5e6f708192a3b', os_hash_algo: 'sha512', os_hash_value: null, tags: [],
        created_at: now, updated_at: now, self: `/v2/images/${i.id}`, file: `/v2/images/${i.id}/file`, schema: '/v2/schemas/image',
        ...i.properties,
      });
    }
  }
}
