/**
 * Neutron v2.0 as the emulator plays it: networks (`router:external`), subnets, ports,
 * routers (interfaces, external gateways), floating IPs (with `port_id`), security groups
 * and their rules, tags; lists filtered by any field and by tags, paged by `limit`/`marker`
 * with `<resource>_links`. Neutron's rules hold, with its refusals and error bodies:
 * - a floating IP attaches only to a port whose subnet has a router to its external
 *   network (404 ExternalGatewayForFloatingIPNotFound), a fixed IP has one floating IP per
 *   external network (409 FloatingIPPortAlreadyAssociated), it comes only from an external
 *   network (400 "not a valid external network");
 * - deletes in the wrong order are refused: a network or subnet with ports (409
 *   NetworkInUse, SubnetInUse), a router with interfaces (409 RouterInUse), a router's
 *   interface port through the port API (409);
 * - a cloud without L3 (`floating_ip_source: None`) has no /routers nor /floatingips (404).
 * As for a project's user on a real cloud, the subnets of the operator's external networks
 * (unless shared) and router gateway ports are not shown. Attaching and detaching a
 * floating IP tells the host backend (backend.ts).
 *
 * @example
 *   const answer = await handleNeutron(state, req, 'http://127.0.0.1:5000');
 */
import type { Doc, EmulatorState } from './state.js';
import { isoNow, matchesQuery, neutronError, nextQuery, paginate, type EmuAnswer, type EmuRequest } from './wire.js';

const RESOURCES: Record<string, { singular: string; map: (s: EmulatorState) => Map<string, Doc>; l3?: boolean }> = {
  networks: { singular: 'network', map: (s) => s.networks },
  subnets: { singular: 'subnet', map: (s) => s.subnets },
  ports: { singular: 'port', map: (s) => s.ports },
  routers: { singular: 'router', map: (s) => s.routers, l3: true },
  floatingips: { singular: 'floatingip', map: (s) => s.floatingips, l3: true },
  'security-groups': { singular: 'security_group', map: (s) => s.securityGroups },
  'security-group-rules': { singular: 'security_group_rule', map: (s) => s.securityGroupRules },
};

const TYPE_NAMES: Record<string, string> = { network: 'Network', subnet: 'Subnet', port: 'Port', router: 'Router', floatingip: 'FloatingIP', security_group: 'SecurityGroup', security_group_rule: 'SecurityGroupRule' };

const notFoundOf = (singular: string, id: string) => neutronError(404, `${TYPE_NAMES[singular]}NotFound`, `${TYPE_NAMES[singular]} ${id} could not be found.`);
const HTTP_NOT_FOUND = neutronError(404, 'HTTPNotFound', 'The resource could not be found.');
const badRequest = (message: string) => neutronError(400, 'HTTPBadRequest', message);

const EXTENSIONS = ['external-net', 'standard-attr-tag', 'security-group', 'port-security', 'binding', 'quotas', 'standard-attr-description', 'network_availability_zone'];
const L3_EXTENSIONS = ['router', 'extraroute', 'ext-gw-mode', 'l3-ha', 'dvr', 'fip-port-details'];

/** The server whose port this is, with its backend host. */
function hostOfPort(state: EmulatorState, port: Doc | undefined): string | undefined {
  if (!port || !port.device_id) return undefined;
  return state.servers.get(String(port.device_id))?.hostId;
}

/**
 * Tells the backend which floating address the host behind `portId` now has (after an attach, a detach or a build).
 *
 * @example
 *   await syncFloating(state, port.id);
 */
export async function syncFloating(state: EmulatorState, portId: string): Promise<void> {
  const port = state.ports.get(portId);
  const hostId = hostOfPort(state, port);
  if (!hostId) return;
  if (state.servers.get(String(port?.device_id))?.unreachable) return; // the fault: attached in Neutron, never on the host
  const fip = [...state.floatingips.values()].find((f) => f.port_id === portId);
  await state.backend.setFloatingAddress(hostId, fip ? String(fip.floating_ip_address) : undefined);
}

/** Why a floating IP cannot attach to `portId` (Neutron's refusal), or the fixed IP it attaches to. */
function checkAssociation(state: EmulatorState, fip: Doc, portId: string, fixedIp?: string): EmuAnswer | { fixed: { subnet_id: string; ip_address: string } } {
  const port = state.ports.get(portId);
  if (!port) return notFoundOf('port', portId);
  const fixedIps = port.fixed_ips as { subnet_id: string; ip_address: string }[];
  const fixed = fixedIp ? fixedIps.find((f) => f.ip_address === fixedIp) : fixedIps[0];
  if (!fixed) return badRequest(fixedIp ? `Port ${portId} does not have fixed ip ${fixedIp}` : `Bad floatingip request: Port ${portId} does not have any IPv4 address. Cannot associate Floating IP.`);
  const taken = [...state.floatingips.values()].find((f) => f.id !== fip.id && f.port_id === portId && f.fixed_ip_address === fixed.ip_address && f.floating_network_id === fip.floating_network_id);
  if (taken) return neutronError(409, 'FloatingIPPortAlreadyAssociated', `Cannot associate floating IP ${String(fip.floating_ip_address)} (${fip.id}) with port ${portId} using fixed IP ${fixed.ip_address}, as that fixed IP already has a floating IP on external network ${String(fip.floating_network_id)}.`);
  if (!state.routed(fixed.subnet_id, String(fip.floating_network_id))) {
    return neutronError(404, 'ExternalGatewayForFloatingIPNotFound', `External network ${String(fip.floating_network_id)} is not reachable from subnet ${fixed.subnet_id}. Therefore, cannot associate Port ${portId} with a Floating IP.`);
  }
  return { fixed };
}

function routerOf(state: EmulatorState, networkId: string, subnetId: string): string | null {
  for (const r of state.routers.values()) {
    if ((r.external_gateway_info as { network_id?: string } | null)?.network_id !== networkId) continue;
    if ([...state.ports.values()].some((p) => p.device_id === r.id && p.device_owner === 'network:router_interface' && (p.fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnetId))) return r.id;
  }
  return null;
}

async function associate(state: EmulatorState, fip: Doc, portId: string | null, fixedIp?: string): Promise<EmuAnswer | undefined> {
  const before = fip.port_id ? String(fip.port_id) : undefined;
  if (portId) {
    const check = checkAssociation(state, fip, portId, fixedIp);
    if (!('fixed' in check)) return check;
    const port = state.ports.get(portId) as Doc;
    const port_details = { name: port.name, network_id: port.network_id, mac_address: port.mac_address, admin_state_up: port.admin_state_up, status: port.status, device_id: port.device_id, device_owner: port.device_owner };
    Object.assign(fip, { port_id: portId, fixed_ip_address: check.fixed.ip_address, router_id: routerOf(state, String(fip.floating_network_id), check.fixed.subnet_id), status: 'ACTIVE', port_details });
  } else Object.assign(fip, { port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', port_details: null });
  fip.updated_at = isoNow();
  fip.revision_number = Number(fip.revision_number) + 1;
  if (before && before !== portId) await syncFloating(state, before);
  if (portId) await syncFloating(state, portId);
  return undefined;
}

async function createFloatingIp(state: EmulatorState, body: Record<string, unknown>): Promise<EmuAnswer> {
  const networkId = typeof body.floating_network_id === 'string' ? body.floating_network_id : '';
  if (!networkId) return badRequest("Invalid input for floating_network_id. Reason: '' is not a valid UUID.");
  const net = state.networks.get(networkId);
  if (!net) return notFoundOf('network', networkId);
  if (net['router:external'] !== true) return badRequest(`Bad floatingip request: Network ${networkId} is not a valid external network.`);
  let address = typeof body.floating_ip_address === 'string' ? body.floating_ip_address : state.freeFloatingAddress();
  if (!address) return neutronError(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${networkId}.`);
  if ([...state.floatingips.values()].some((f) => f.floating_ip_address === address)) return neutronError(409, 'IpAddressAlreadyAllocated', `IP address ${address} already allocated in subnet ${String((net.subnets as string[])[0])}`);
  const fip: Doc = { ...state.neutronCommon(), id: state.newId(), floating_ip_address: address, floating_network_id: networkId, port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', port_details: null, description: typeof body.description === 'string' ? body.description : '', port_forwardings: [], dns_name: '', dns_domain: '' };
  if (typeof body.port_id === 'string') {
    const check = checkAssociation(state, fip, body.port_id, typeof body.fixed_ip_address === 'string' ? body.fixed_ip_address : undefined);
    if (!('fixed' in check)) return check; // nothing allocated: Neutron checks before it allocates
  }
  state.floatingips.set(fip.id, fip);
  if (typeof body.port_id === 'string') await associate(state, fip, body.port_id, typeof body.fixed_ip_address === 'string' ? body.fixed_ip_address : undefined);
  return { status: 201, body: { floatingip: fip } };
}

function portsUsing(state: EmulatorState, pred: (p: Doc) => boolean): Doc[] {
  return [...state.ports.values()].filter(pred);
}

async function deleteResource(state: EmulatorState, resource: string, doc: Doc): Promise<EmuAnswer> {
  const id = doc.id;
  if (resource === 'networks') {
    if (portsUsing(state, (p) => p.network_id === id && p.device_owner !== 'network:dhcp').length) return neutronError(409, 'NetworkInUse', `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`);
    if ([...state.floatingips.values()].some((f) => f.floating_network_id === id)) return neutronError(409, 'NetworkInUse', `Unable to complete operation on network ${id}. There are one or more floating IPs still allocated from the network.`);
    for (const s of state.subnetsOf(id)) state.subnets.delete(s.id);
    state.sides.delete(id);
  } else if (resource === 'subnets') {
    if (portsUsing(state, (p) => (p.fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === id)).length) return neutronError(409, 'SubnetInUse', `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`);
    const net = state.networks.get(String(doc.network_id));
    if (net) net.subnets = (net.subnets as string[]).filter((s) => s !== id);
  } else if (resource === 'ports') {
    if (doc.device_owner === 'network:router_interface' || doc.device_owner === 'network:router_gateway') return neutronError(409, 'L3PortInUse', `Port ${id} cannot be deleted directly via the port API: has device owner ${String(doc.device_owner)}.`);
    for (const f of state.floatingips.values()) if (f.port_id === id) await associate(state, f, null);
  } else if (resource === 'routers') {
    if (portsUsing(state, (p) => p.device_id === id && p.device_owner === 'network:router_interface').length) return neutronError(409, 'RouterInUse', `Router ${id} still has ports`);
    for (const p of portsUsing(state, (p) => p.device_id === id)) state.ports.delete(p.id);
  } else if (resource === 'floatingips') {
    if (doc.port_id) await associate(state, doc, null);
  } else if (resource === 'security-groups') {
    if (doc.name === 'default') return neutronError(409, 'SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.');
    if (portsUsing(state, (p) => (p.security_groups as string[]).includes(id)).length) return neutronError(409, 'SecurityGroupInUse', `Security Group ${id} in use.`);
    for (const r of [...state.securityGroupRules.values()]) if (r.security_group_id === id) state.securityGroupRules.delete(r.id);
  } else if (resource === 'security-group-rules') {
    const sg = state.securityGroups.get(String(doc.security_group_id));
    if (sg) sg.security_group_rules = (sg.security_group_rules as Doc[]).filter((r) => r.id !== id);
  }
  RESOURCES[resource].map(state).delete(id);
  return { status: 204 };
}

async function createResource(state: EmulatorState, resource: string, body: Record<string, unknown>): Promise<EmuAnswer> {
  const common = state.neutronCommon();
  if (resource === 'floatingips') return createFloatingIp(state, body);
  if (resource === 'ports') {
    const net = state.networks.get(String(body.network_id));
    if (!net) return notFoundOf('network', String(body.network_id));
    const { fixed_ips: _f, ...rest } = body;
    const port = state.createPort(net.id, { ...rest, security_groups: Array.isArray(body.security_groups) ? body.security_groups : [...state.securityGroups.values()].filter((g) => g.name === 'default').map((g) => g.id) });
    return { status: 201, body: { port } };
  }
  if (resource === 'security-groups') {
    const sg: Doc = { ...common, id: state.newId(), name: String(body.name ?? ''), description: String(body.description ?? ''), stateful: true, security_group_rules: [] };
    state.securityGroups.set(sg.id, sg);
    return { status: 201, body: { security_group: sg } };
  }
  if (resource === 'security-group-rules') {
    const sg = state.securityGroups.get(String(body.security_group_id));
    if (!sg) return notFoundOf('security_group', String(body.security_group_id));
    const rule: Doc = { ...common, id: state.newId(), security_group_id: sg.id, direction: body.direction ?? 'ingress', ethertype: body.ethertype ?? 'IPv4', protocol: body.protocol ?? null, port_range_min: body.port_range_min ?? null, port_range_max: body.port_range_max ?? null, remote_ip_prefix: body.remote_ip_prefix ?? null, remote_group_id: body.remote_group_id ?? null };
    const same = (sg.security_group_rules as Doc[]).find((r) => ['direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix', 'remote_group_id'].every((k) => r[k] === rule[k]));
    if (same) return neutronError(409, 'SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${same.id}.`);
    state.securityGroupRules.set(rule.id, rule);
    (sg.security_group_rules as Doc[]).push(rule);
    return { status: 201, body: { security_group_rule: rule } };
  }
  if (resource === 'routers') {
    const gw = (body.external_gateway_info as { network_id?: string } | null | undefined)?.network_id;
    if (gw && state.networks.get(gw)?.['router:external'] !== true) return badRequest(`Bad router request: Network ${gw} is not an external network.`);
    const router = state.addRouter(String(body.name ?? ''), gw ?? null, []);
    return { status: 201, body: { router } };
  }
  if (resource === 'networks') {
    if (body['router:external'] === true || body.shared === true) return neutronError(403, 'PolicyNotAuthorized', `(rule:create_network and rule:create_network:${body.shared === true ? 'shared' : 'router:external'}) is disallowed by policy`);
    // A project's own network lies on the backend's private side: reachable through a floating IP only.
    const net: Doc = { ...common, id: state.newId(), name: String(body.name ?? ''), status: 'ACTIVE', admin_state_up: true, shared: false, 'router:external': false, subnets: [], mtu: 1450, availability_zones: ['nova'], port_security_enabled: true, is_default: false };
    state.networks.set(net.id, net);
    state.sides.set(net.id, 'private');
    return { status: 201, body: { network: net } };
  }
  if (resource === 'subnets') {
    const net = state.networks.get(String(body.network_id));
    if (!net || !state.visible('subnets', { id: '', network_id: net.id })) return notFoundOf('network', String(body.network_id));
    if (typeof body.cidr !== 'string' || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(body.cidr)) return badRequest(`Invalid input for cidr. Reason: '${String(body.cidr)}' is not a valid IP subnet.`);
    const prefix = body.cidr.replace(/\.\d+\/\d+$/, '');
    const subnet: Doc = { ...common, id: state.newId(), name: String(body.name ?? ''), network_id: net.id, ip_version: 4, cidr: body.cidr, gateway_ip: body.gateway_ip === null ? null : String(body.gateway_ip ?? `${prefix}.1`), enable_dhcp: body.enable_dhcp !== false, allocation_pools: [{ start: `${prefix}.2`, end: `${prefix}.254` }], dns_nameservers: body.dns_nameservers ?? [], host_routes: [], ipv6_ra_mode: null, ipv6_address_mode: null, subnetpool_id: null };
    state.subnets.set(subnet.id, subnet);
    (net.subnets as string[]).push(subnet.id);
    return { status: 201, body: { subnet } };
  }
  return neutronError(403, 'PolicyNotAuthorized', `rule:create_${RESOURCES[resource].singular} is disallowed by policy`);
}

async function routerAction(state: EmulatorState, router: Doc, action: string, body: Record<string, unknown>): Promise<EmuAnswer> {
  const subnetId = typeof body.subnet_id === 'string' ? body.subnet_id : undefined;
  const subnet = subnetId ? state.subnets.get(subnetId) : undefined;
  if (subnetId && !subnet) return notFoundOf('subnet', subnetId);
  if (!subnet) return badRequest('Bad router request: Either subnet_id or port_id must be specified.');
  if (action === 'add_router_interface') {
    if (portsUsing(state, (p) => p.device_owner === 'network:router_interface' && (p.fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnet.id)).length) return badRequest(`Bad router request: Router already has a port on subnet ${subnet.id}.`);
    const port = state.addInterface(router, subnet);
    return { body: { id: router.id, subnet_id: subnet.id, subnet_ids: [subnet.id], port_id: port.id, network_id: subnet.network_id, tenant_id: state.identity.projectId } };
  }
  const port = portsUsing(state, (p) => p.device_id === router.id && p.device_owner === 'network:router_interface' && (p.fixed_ips as { subnet_id: string }[]).some((f) => f.subnet_id === subnet.id))[0];
  if (!port) return neutronError(404, 'RouterInterfaceNotFoundForSubnet', `Router ${router.id} has no interface on subnet ${subnet.id}`);
  if ([...state.floatingips.values()].some((f) => f.router_id === router.id)) return neutronError(409, 'RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${subnet.id} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`);
  state.ports.delete(port.id);
  return { body: { id: router.id, subnet_id: subnet.id, port_id: port.id } };
}

async function update(state: EmulatorState, resource: string, doc: Doc, body: Record<string, unknown>): Promise<EmuAnswer> {
  const singular = RESOURCES[resource].singular;
  if (resource === 'floatingips' && 'port_id' in body) {
    const refused = await associate(state, doc, typeof body.port_id === 'string' ? body.port_id : null, typeof body.fixed_ip_address === 'string' ? body.fixed_ip_address : undefined);
    if (refused) return refused;
  }
  if (resource === 'routers' && 'external_gateway_info' in body) {
    const gw = (body.external_gateway_info as { network_id?: string } | null)?.network_id;
    if (gw && state.networks.get(gw)?.['router:external'] !== true) return badRequest(`Bad router request: Network ${gw} is not an external network.`);
    for (const p of portsUsing(state, (p) => p.device_id === doc.id && p.device_owner === 'network:router_gateway')) state.ports.delete(p.id);
    doc.external_gateway_info = null;
    if (gw) state.setGateway(doc, gw);
  }
  for (const key of ['name', 'description', 'device_id', 'device_owner', 'admin_state_up', 'security_groups']) if (key in body) doc[key] = body[key];
  doc.updated_at = isoNow();
  return { body: { [singular]: doc } };
}

function selectFields(doc: Doc, query: URLSearchParams): Record<string, unknown> {
  const fields = query.getAll('fields');
  if (fields.length === 0) return doc;
  return Object.fromEntries(fields.flatMap((f) => f.split(',')).filter((f) => f in doc).map((f) => [f, doc[f]]));
}

/**
 * Answers a call under `/network` (segments after it).
 *
 * @example
 *   await handleNeutron(state, { method: 'GET', segments: ['v2.0', 'networks'], query, body: undefined, headers }, baseUrl);
 */
export async function handleNeutron(state: EmulatorState, req: EmuRequest, baseUrl: string): Promise<EmuAnswer> {
  const [version, resource, id, sub, subId] = req.segments;
  const root = `${baseUrl}/network`;
  if (!version) return { body: { versions: [{ status: 'CURRENT', id: 'v2.0', links: [{ href: `${root}/v2.0/`, rel: 'self' }] }] } };
  if (version !== 'v2.0') return HTTP_NOT_FOUND;
  if (!resource) return { body: { resources: Object.entries(RESOURCES).map(([k, r]) => ({ name: r.singular, collection: k, links: [{ href: `${root}/v2.0/${k}`, rel: 'self' }] })) } };
  if (resource === 'extensions') {
    const aliases = [...EXTENSIONS, ...(state.scenario.l3 ? L3_EXTENSIONS : [])];
    return { body: { extensions: aliases.map((alias) => ({ alias, name: alias, description: '', links: [], updated: '2013-01-20T00:00:00-00:00' })) } };
  }
  const spec = RESOURCES[resource];
  if (!spec || (spec.l3 && !state.scenario.l3)) return HTTP_NOT_FOUND;
  const map = spec.map(state);
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  if (!id) {
    if (req.method === 'GET') {
      const all = [...map.values()].filter((d) => state.visible(resource, d) && matchesQuery(d, req.query));
      const page = paginate(all, req.query);
      if (!page) return notFoundOf(spec.singular, String(req.query.get('marker')));
      const out: Record<string, unknown> = { [resource.replaceAll('-', '_')]: page.items.map((d) => selectFields(d, req.query)) };
      if (page.nextMarker) out[`${resource.replaceAll('-', '_')}_links`] = [{ rel: 'next', href: `${root}/v2.0/${resource}?${nextQuery(req.query, page.nextMarker, page.limit ?? 1000)}` }];
      return { body: out };
    }
    if (req.method === 'POST') {
      const fields = body[spec.singular];
      if (!fields || typeof fields !== 'object') return badRequest('Resource body required');
      return createResource(state, resource, fields as Record<string, unknown>);
    }
    return neutronError(405, 'HTTPMethodNotAllowed', 'The method is not allowed for this resource.');
  }
  const doc = map.get(id);
  if (!doc || !state.visible(resource, doc)) return notFoundOf(spec.singular, id);
  if (sub === 'tags') {
    const tags = (doc.tags as string[]) ?? [];
    if (req.method === 'GET' && !subId) return { body: { tags } };
    if (req.method === 'PUT' && !subId) {
      if (!Array.isArray(body.tags)) return badRequest("Invalid input for operation: Invalid tags body.");
      doc.tags = [...new Set(body.tags.map(String))];
      return { body: { tags: doc.tags } };
    }
    if (req.method === 'PUT' && subId) return void (doc.tags = [...new Set([...tags, subId])]), { status: 201 };
    if (req.method === 'DELETE' && subId) {
      if (!tags.includes(subId)) return neutronError(404, 'TagNotFound', `Tag ${subId} could not be found.`);
      doc.tags = tags.filter((t) => t !== subId);
      return { status: 204 };
    }
  }
  if (sub && resource === 'routers' && req.method === 'PUT' && (sub === 'add_router_interface' || sub === 'remove_router_interface')) return routerAction(state, doc, sub, body);
  if (sub) return HTTP_NOT_FOUND;
  if (req.method === 'GET') return { body: { [spec.singular]: selectFields(doc, req.query) } };
  if (req.method === 'DELETE') return deleteResource(state, resource, doc);
  if (req.method === 'PUT') {
    const fields = body[spec.singular];
    if (!fields || typeof fields !== 'object') return badRequest('Resource body required');
    return update(state, resource, doc, fields as Record<string, unknown>);
  }
  return neutronError(405, 'HTTPMethodNotAllowed', 'The method is not allowed for this resource.');
}
