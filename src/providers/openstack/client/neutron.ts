/**
 * Neutron: networks, subnets, ports, routers, floating IPs and security groups.
 *
 * A floating IP is created with its `port_id` in one call (no window in which it exists
 * unattached for another job to grab) and tagged with its owner right after; if tagging
 * fails it is released at once, so nothing untagged is left to leak. Lists filter
 * server-side (Neutron takes `tags=a,b` and any field as a query).
 *
 * @example
 *   const neutron = new NeutronApi(session);
 *   const fip = await neutron.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id, tags: ['formwork.io/node-id=n1'] });
 */
import { deleted, orUndefined } from './not-found.js';
import { listAll, type ListOptions } from './pagination.js';
import type { OpenStackSession } from './session.js';

/** A network (`router:external` marks the external ones). */
export interface NeutronNetwork {
  id: string;
  name: string;
  status: string;
  subnets: string[];
  shared?: boolean;
  'router:external'?: boolean;
  tags?: string[];
  [field: string]: unknown;
}

/** A subnet (`gateway_ip` null: no route out). */
export interface NeutronSubnet {
  id: string;
  name: string;
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  [field: string]: unknown;
}

/** A port with its fixed IPs. */
export interface NeutronPort {
  id: string;
  network_id: string;
  device_id: string;
  device_owner: string;
  status: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  tags?: string[];
  [field: string]: unknown;
}

/** A router with its external gateway. */
export interface NeutronRouter {
  id: string;
  name: string;
  external_gateway_info: { network_id: string; external_fixed_ips?: { subnet_id: string; ip_address: string }[] } | null;
  [field: string]: unknown;
}

/** A floating IP (`status` DOWN is normal on some clouds even when attached). */
export interface NeutronFloatingIp {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  port_id: string | null;
  fixed_ip_address: string | null;
  status: string;
  description?: string;
  tags?: string[];
  [field: string]: unknown;
}

/** A security group with its rules. */
export interface NeutronSecurityGroup {
  id: string;
  name: string;
  description?: string;
  security_group_rules: Record<string, unknown>[];
  tags?: string[];
  [field: string]: unknown;
}

/** A floating IP to allocate: on which external network, for which port, tagged how. */
export interface FloatingIpCreate {
  floatingNetworkId: string;
  portId?: string;
  fixedIpAddress?: string;
  description?: string;
  tags?: string[];
}

/** A query of a list: `tags` (all of them) and any field. */
export type NeutronQuery = Record<string, string | number | boolean | undefined> & { tags?: string };

/**
 * Neutron's API (see the file's comment).
 *
 * @example
 *   const external = await new NeutronApi(session).listNetworks({ 'router:external': true });
 */
export class NeutronApi {
  constructor(private readonly session: OpenStackSession) {}

  private list<T>(resource: string, query?: NeutronQuery, opts: Omit<ListOptions, 'query'> = {}): Promise<T[]> {
    // The body's key is the path with '_' for '-' (`/security-groups` answers `security_groups`).
    return listAll<T>(this.session, 'network', `/${resource}`, resource.replaceAll('-', '_'), { ...opts, query });
  }

  private async get<T>(resource: string, singular: string, id: string): Promise<T | undefined> {
    const res = await orUndefined(this.session.request('network', 'GET', `/${resource}/${encodeURIComponent(id)}`));
    return res && (res.body as Record<string, T>)[singular];
  }

  private async create<T>(resource: string, singular: string, body: Record<string, unknown>): Promise<T> {
    const res = await this.session.request('network', 'POST', `/${resource}`, { body: { [singular]: body } });
    return (res.body as Record<string, T>)[singular];
  }

  private remove(resource: string, id: string): Promise<boolean> {
    return deleted(this.session.request('network', 'DELETE', `/${resource}/${encodeURIComponent(id)}`));
  }

  /**
   * Networks, e.g. `{ 'router:external': true }` for the external ones.
   *
   * @example
   *   await neutron.listNetworks({ 'router:external': true });
   */
  listNetworks(query?: NeutronQuery): Promise<NeutronNetwork[]> {
    return this.list('networks', query);
  }

  /**
   * One network, or `undefined`.
   *
   * @example
   *   await neutron.getNetwork(id);
   */
  getNetwork(id: string): Promise<NeutronNetwork | undefined> {
    return this.get('networks', 'network', id);
  }

  /**
   * Subnets, e.g. of one network.
   *
   * @example
   *   await neutron.listSubnets({ network_id: net.id });
   */
  listSubnets(query?: NeutronQuery): Promise<NeutronSubnet[]> {
    return this.list('subnets', query);
  }

  /**
   * Ports, e.g. a server's: `{ device_id: server.id }`.
   *
   * @example
   *   await neutron.listPorts({ device_id: server.id });
   */
  listPorts(query?: NeutronQuery, opts?: Omit<ListOptions, 'query'>): Promise<NeutronPort[]> {
    return this.list('ports', query, opts);
  }

  /**
   * One port, or `undefined`.
   *
   * @example
   *   await neutron.getPort(id);
   */
  getPort(id: string): Promise<NeutronPort | undefined> {
    return this.get('ports', 'port', id);
  }

  /**
   * Creates a port on a network (to boot a server on, named and tagged before the server exists).
   *
   * @example
   *   await neutron.createPort({ network_id: net.id, name: 'formwork-n1' });
   */
  createPort(port: Record<string, unknown>): Promise<NeutronPort> {
    return this.create('ports', 'port', port);
  }

  /**
   * Deletes a port: `false` when already gone.
   *
   * @example
   *   await neutron.deletePort(id);
   */
  deletePort(id: string): Promise<boolean> {
    return this.remove('ports', id);
  }

  /**
   * Routers (their gateway says which external network they reach); none when the cloud has
   * no L3 (see `listL3`).
   *
   * @example
   *   await neutron.listRouters();
   */
  listRouters(query?: NeutronQuery): Promise<NeutronRouter[]> {
    return this.listL3('routers', query);
  }

  /**
   * Floating IPs, e.g. those tagged for one machine: `{ tags: 'formwork.io/node-id=n1' }`;
   * none when the cloud has no L3 (see `listL3`).
   *
   * @example
   *   await neutron.listFloatingIps({ port_id: port.id });
   */
  listFloatingIps(query?: NeutronQuery): Promise<NeutronFloatingIp[]> {
    return this.listL3('floatingips', query);
  }

  /**
   * A collection of Neutron's `router` extension (routers, floating IPs). A cloud without it
   * (`floating_ip_source: None` clouds, provider networks only) answers 404 for the whole
   * collection, as Neutron does for any extension it has not loaded: that means none exist.
   */
  private async listL3<T>(resource: string, query?: NeutronQuery): Promise<T[]> {
    return (await orUndefined(this.list<T>(resource, query))) ?? [];
  }

  /**
   * One floating IP, or `undefined` (read back after a delete to confirm it is gone).
   *
   * @example
   *   await neutron.getFloatingIp(id);
   */
  getFloatingIp(id: string): Promise<NeutronFloatingIp | undefined> {
    return this.get('floatingips', 'floatingip', id);
  }

  /**
   * Allocates a floating IP, attached to `portId` in the same call, then tags it. A failed
   * tagging releases it again and rethrows.
   *
   * @example
   *   await neutron.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id, description: 'formwork node n1', tags: ['formwork.io/node-id=n1'] });
   */
  async createFloatingIp(spec: FloatingIpCreate): Promise<NeutronFloatingIp> {
    const body: Record<string, unknown> = { floating_network_id: spec.floatingNetworkId };
    if (spec.portId) body.port_id = spec.portId;
    if (spec.fixedIpAddress) body.fixed_ip_address = spec.fixedIpAddress;
    if (spec.description) body.description = spec.description;
    const fip = await this.create<NeutronFloatingIp>('floatingips', 'floatingip', body);
    if (!spec.tags?.length) return fip;
    try {
      await this.setTags('floatingips', fip.id, spec.tags);
    } catch (e) {
      await this.deleteFloatingIp(fip.id).catch(() => undefined); // the tagging error is the one to report
      throw e;
    }
    return { ...fip, tags: spec.tags };
  }

  /**
   * Changes a floating IP: `{ port_id }` attaches it to a port, `{ port_id: null }` detaches it.
   *
   * @example
   *   await neutron.updateFloatingIp(fip.id, { port_id: null });
   */
  async updateFloatingIp(id: string, changes: { port_id?: string | null; fixed_ip_address?: string; description?: string }): Promise<NeutronFloatingIp> {
    const res = await this.session.request('network', 'PUT', `/floatingips/${encodeURIComponent(id)}`, { body: { floatingip: changes } });
    return (res.body as { floatingip: NeutronFloatingIp }).floatingip;
  }

  /**
   * Deletes a floating IP: `false` when already gone. Some clouds report a delete that has
   * not happened yet: confirm with `getFloatingIp`.
   *
   * @example
   *   await neutron.deleteFloatingIp(id);
   */
  deleteFloatingIp(id: string): Promise<boolean> {
    return this.remove('floatingips', id);
  }

  /**
   * Replaces a resource's tags (`PUT /<resource>/<id>/tags`).
   *
   * @example
   *   await neutron.setTags('ports', port.id, ['formwork.io/node-id=n1']);
   */
  async setTags(resource: 'networks' | 'subnets' | 'ports' | 'routers' | 'floatingips' | 'security-groups', id: string, tags: string[]): Promise<void> {
    await this.session.request('network', 'PUT', `/${resource}/${encodeURIComponent(id)}/tags`, { body: { tags } });
  }

  /**
   * Security groups.
   *
   * @example
   *   await neutron.listSecurityGroups({ name: 'formwork-ssh' });
   */
  listSecurityGroups(query?: NeutronQuery): Promise<NeutronSecurityGroup[]> {
    return this.list('security-groups', query);
  }

  /**
   * Creates a security group.
   *
   * @example
   *   await neutron.createSecurityGroup('formwork-ssh', 'SSH from the control plane');
   */
  createSecurityGroup(name: string, description = ''): Promise<NeutronSecurityGroup> {
    return this.create('security-groups', 'security_group', { name, description });
  }

  /**
   * Adds a rule to a security group.
   *
   * @example
   *   await neutron.createSecurityGroupRule({ security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0', ethertype: 'IPv4' });
   */
  createSecurityGroupRule(rule: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.create('security-group-rules', 'security_group_rule', rule);
  }

  /**
   * Deletes a security group: `false` when already gone.
   *
   * @example
   *   await neutron.deleteSecurityGroup(id);
   */
  deleteSecurityGroup(id: string): Promise<boolean> {
    return this.remove('security-groups', id);
  }
}
