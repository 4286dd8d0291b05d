/**
 * A small stateful OpenStack on the fake cloud (fake-cloud.ts) for the driver's unit tests:
 * Nova servers, flavors and keypairs, Neutron networks, subnets, routers, ports, floating IPs,
 * security groups and tags, Glance images. Its topology is the real control plane's
 * (scripts/openstack/fill-cloud.sh): an external `public` network whose subnet the project
 * cannot see, `private` (a router to `public`) and `isolated` (no router). Neutron's rules
 * hold: a floating IP attaches only to a port whose subnet a router connects to its external
 * network (else 404 ExternalGatewayForFloatingIPNotFound, as Neutron answers), and a server's
 * delete releases its ports and disassociates their floating IPs. Knobs: `bootReads`, the
 * next boot failing (`failNextBoot`), a server ACTIVE with no address (`noAddressNextBoot`).
 *
 * @example
 *   const os = await startFakeOpenStack();
 *   const auth = os.cloud.passwordAuth();
 *   os.state.floatingIps.size; // 0
 *   await os.close();
 */
import { startFakeCloud, type FakeAnswer, type FakeCloud, type RecordedRequest } from './fake-cloud.js';

type Item = Record<string, unknown> & { id: string };

/** The fake's resources, by id (keypairs by name), for tests to read and arrange. */
export interface FakeOpenStackState {
  servers: Map<string, Item>;
  flavors: Map<string, Item>;
  images: Map<string, Item>;
  keypairs: Map<string, Item>;
  networks: Map<string, Item>;
  subnets: Map<string, Item>;
  routers: Map<string, Item>;
  ports: Map<string, Item>;
  floatingIps: Map<string, Item>;
  securityGroups: Map<string, Item>;
}

/** A running fake OpenStack. */
export interface FakeOpenStack {
  cloud: FakeCloud;
  state: FakeOpenStackState;
  /** How many reads a new server stays BUILD (default 1). */
  bootReads: number;
  /** The next boot ends in ERROR with this fault message. */
  failNextBoot(message: string): void;
  /** The next server goes ACTIVE with no address. */
  noAddressNextBoot(): void;
  close(): Promise<void>;
}

const NOVA = '/8774/v2.1';
const NEUTRON = '/9696/v2.0';
const GLANCE = '/9292/v2';
const PROJECT = '9c4693dce56b493b9b83197d900f7fba'; // the fixture token's project

const notFound = (what: string): FakeAnswer => ({ status: 404, body: { NeutronError: { type: `${what}NotFound`, message: `${what} could not be found.`, detail: '' } } });
const novaNotFound = (what: string): FakeAnswer => ({ status: 404, body: { itemNotFound: { message: `${what} could not be found.`, code: 404 } } });

/** Items matching a request's query: `tags` (all of them) and any field; paging and field selection ignored. */
function filtered(items: Iterable<Item>, q: URLSearchParams): Item[] {
  return [...items].filter((it) =>
    [...q.entries()].every(([k, v]) => {
      if (['limit', 'marker', 'fields', 'sort_key', 'sort_dir', 'is_public'].includes(k)) return true;
      if (k === 'tags') return v.split(',').every((t) => ((it.tags as string[] | undefined) ?? []).includes(t));
      return String(it[k]) === v;
    }),
  );
}

/**
 * Starts a fake OpenStack.
 *
 * @example
 *   const os = await startFakeOpenStack(); // os.cloud.url
 */
export async function startFakeOpenStack(): Promise<FakeOpenStack> {
  const cloud = await startFakeCloud();
  let seq = 0;
  const id = (prefix: string) => `${prefix}-${String(++seq).padStart(4, '0')}`;
  const state: FakeOpenStackState = {
    servers: new Map(), flavors: new Map(), images: new Map(), keypairs: new Map(), networks: new Map(),
    subnets: new Map(), routers: new Map(), ports: new Map(), floatingIps: new Map(), securityGroups: new Map(),
  };
  const put = (m: Map<string, Item>, it: Item) => (m.set(it.id, it), it);
  for (const [fid, name, vcpus, ram, disk] of [['1', 'm1.tiny', 1, 512, 1], ['2', 'm1.small', 1, 2048, 20], ['3', 'm1.medium', 2, 4096, 40]] as const) put(state.flavors, { id: fid, name, vcpus, ram, disk });
  put(state.images, { id: 'img-debian-12', name: 'debian-12-tiny', status: 'active', os_distro: 'debian', os_version: '12', os_admin_user: 'debian', created_at: '2026-01-01T00:00:00Z' });
  const net = (nid: string, name: string, external: boolean) => put(state.networks, { id: nid, name, status: 'ACTIVE', subnets: [], 'router:external': external, shared: false, tenant_id: external ? 'admin' : PROJECT, tags: [] });
  const subnet = (sid: string, name: string, networkId: string, cidr: string, gateway: string | null, visible = true) => {
    put(state.subnets, { id: sid, name, network_id: networkId, cidr, ip_version: 4, gateway_ip: gateway, hidden: !visible });
    (state.networks.get(networkId)!.subnets as string[]).push(sid);
  };
  net('net-public', 'public', true);
  subnet('sub-public', 'public-subnet', 'net-public', '198.18.0.0/24', '198.18.0.1', false);
  net('net-private', 'private', false);
  subnet('sub-private', 'private-subnet', 'net-private', '10.10.0.0/24', '10.10.0.1');
  net('net-isolated', 'isolated', false);
  subnet('sub-isolated', 'isolated-subnet', 'net-isolated', '10.20.0.0/24', '10.20.0.1');
  put(state.routers, { id: 'router-1', name: 'router1', external_gateway_info: { network_id: 'net-public' } });
  const hosts: Record<string, number> = {};
  const nextIp = (subnetId: string) => {
    const cidr = String(state.subnets.get(subnetId)!.cidr);
    hosts[subnetId] = (hosts[subnetId] ?? 9) + 1;
    return cidr.replace(/\.0\/\d+$/, `.${hosts[subnetId]}`);
  };
  const port = (networkId: string, deviceId: string, deviceOwner: string, subnetId = (state.networks.get(networkId)!.subnets as string[])[0]) =>
    put(state.ports, { id: id('port'), network_id: networkId, device_id: deviceId, device_owner: deviceOwner, status: 'ACTIVE', fixed_ips: [{ subnet_id: subnetId, ip_address: nextIp(subnetId) }], tags: [] });
  const routerPort = port('net-private', 'router-1', 'network:router_interface');
  (routerPort.fixed_ips as { ip_address: string }[])[0].ip_address = '10.10.0.1';

  let failNext: string | undefined;
  let noAddressNext = false;
  const os: FakeOpenStack = {
    cloud, state, bootReads: 1,
    failNextBoot: (m) => void (failNext = m),
    noAddressNextBoot: () => void (noAddressNext = true),
    close: () => cloud.close(),
  };

  // Nova
  const serverView = (s: Item) => {
    const addresses: Record<string, unknown[]> = {};
    if (!s.noAddress) {
      for (const p of [...state.ports.values()].filter((p) => p.device_id === s.id)) {
        const name = String(state.networks.get(String(p.network_id))?.name);
        const fixed = (p.fixed_ips as { ip_address: string }[]).map((ip) => ({ addr: ip.ip_address, version: 4, 'OS-EXT-IPS:type': 'fixed' }));
        const floating = [...state.floatingIps.values()].filter((f) => f.port_id === p.id).map((f) => ({ addr: f.floating_ip_address, version: 4, 'OS-EXT-IPS:type': 'floating' }));
        addresses[name] = [...fixed, ...floating];
      }
    }
    const { reads: _r, noAddress: _n, fault, ...rest } = s;
    return { ...rest, addresses, ...(fault ? { fault } : {}) };
  };
  const advance = (s: Item) => {
    if (s.status === 'BUILD' && (s.reads = Number(s.reads) - 1) as number <= 0) s.status = s.failWith ? 'ERROR' : 'ACTIVE';
    if (s.status === 'ERROR' && s.failWith) s.fault = { code: 500, message: s.failWith };
  };
  cloud.on('POST', `${NOVA}/servers`, (req) => {
    const body = (req.body as { server: Record<string, unknown> }).server;
    const nets = body.networks as { uuid: string }[];
    for (const n of nets) if (!state.networks.has(n.uuid)) return { status: 400, body: { badRequest: { message: `Network ${n.uuid} could not be found.`, code: 400 } } };
    const flavor = state.flavors.get(String(body.flavorRef));
    if (!flavor) return { status: 400, body: { badRequest: { message: `Flavor ${String(body.flavorRef)} could not be found.`, code: 400 } } };
    const s = put(state.servers, {
      id: id('srv'), name: body.name, status: 'BUILD', metadata: body.metadata ?? {}, key_name: body.key_name ?? null, image: { id: body.imageRef },
      flavor: { original_name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk }, security_groups: body.security_groups ?? [],
      reads: os.bootReads, failWith: failNext, noAddress: noAddressNext, 'OS-EXT-AZ:availability_zone': 'nova',
    });
    failNext = undefined;
    noAddressNext = false;
    if (os.bootReads <= 0) s.status = s.failWith ? 'ERROR' : 'ACTIVE';
    for (const n of nets) port(n.uuid, s.id, 'compute:nova');
    return { status: 202, body: { server: { id: s.id } } };
  });
  cloud.on('GET', `${NOVA}/servers/detail`, () => ({ body: { servers: [...state.servers.values()].map(serverView) } }));
  cloud.onPattern('GET', /^\/8774\/v2\.1\/servers\/([^/]+)$/, (_r, m) => {
    const s = state.servers.get(m[1]);
    if (!s) return novaNotFound(`Instance ${m[1]}`);
    advance(s);
    return { body: { server: serverView(s) } };
  });
  cloud.onPattern('DELETE', /^\/8774\/v2\.1\/servers\/([^/]+)$/, (_r, m) => {
    if (!state.servers.delete(m[1])) return novaNotFound(`Instance ${m[1]}`);
    for (const p of [...state.ports.values()].filter((p) => p.device_id === m[1])) {
      state.ports.delete(p.id);
      for (const f of state.floatingIps.values()) if (f.port_id === p.id) Object.assign(f, { port_id: null, fixed_ip_address: null, status: 'DOWN' });
    }
    return { status: 204 };
  });
  cloud.on('GET', `${NOVA}/flavors/detail`, () => ({ body: { flavors: [...state.flavors.values()] } }));
  cloud.on('GET', `${NOVA}/os-keypairs`, () => ({ body: { keypairs: [...state.keypairs.values()].map((k) => ({ keypair: k })) } }));
  cloud.on('POST', `${NOVA}/os-keypairs`, (req) => {
    const k = (req.body as { keypair: { name: string; public_key: string } }).keypair;
    if (state.keypairs.has(k.name)) return { status: 409, body: { conflictingRequest: { message: `Key pair '${k.name}' already exists.`, code: 409 } } };
    return { body: { keypair: put(state.keypairs, { id: k.name, name: k.name, public_key: k.public_key, fingerprint: 'fp' }) } };
  });
  cloud.onPattern('GET', /^\/8774\/v2\.1\/os-keypairs\/([^/]+)$/, (_r, m) => {
    const k = state.keypairs.get(decodeURIComponent(m[1]));
    return k ? { body: { keypair: k } } : novaNotFound(`Keypair ${m[1]}`);
  });
  cloud.onPattern('DELETE', /^\/8774\/v2\.1\/os-keypairs\/([^/]+)$/, (_r, m) => (state.keypairs.delete(decodeURIComponent(m[1])) ? { status: 202 } : novaNotFound(`Keypair ${m[1]}`)));

  // Glance
  cloud.on('GET', `${GLANCE}/images`, (req) => ({ body: { images: filtered(state.images.values(), req.query) } }));

  // Neutron
  const lists: Array<[string, keyof FakeOpenStackState, string, string]> = [
    ['networks', 'networks', 'network', 'Network'], ['subnets', 'subnets', 'subnet', 'Subnet'], ['routers', 'routers', 'router', 'Router'],
    ['ports', 'ports', 'port', 'Port'], ['floatingips', 'floatingIps', 'floatingip', 'FloatingIP'], ['security-groups', 'securityGroups', 'security_group', 'SecurityGroup'],
  ];
  for (const [path, key, singular, type] of lists) {
    const plural = path.replaceAll('-', '_');
    cloud.on('GET', `${NEUTRON}/${path}`, (req) => ({ body: { [plural]: filtered(state[key].values(), req.query).filter((it) => !it.hidden) } }));
    cloud.onPattern('GET', new RegExp(`^/9696/v2\\.0/${path}/([^/]+)$`), (_r, m) => {
      const it = state[key].get(m[1]);
      return it && !it.hidden ? { body: { [singular]: it } } : notFound(type);
    });
    cloud.onPattern('DELETE', new RegExp(`^/9696/v2\\.0/${path}/([^/]+)$`), (_r, m) => (state[key].delete(m[1]) ? { status: 204 } : notFound(type)));
    cloud.onPattern('PUT', new RegExp(`^/9696/v2\\.0/${path}/([^/]+)/tags$`), (req, m) => {
      const it = state[key].get(m[1]);
      if (!it) return notFound(type);
      it.tags = (req.body as { tags: string[] }).tags;
      return { body: { tags: it.tags } };
    });
  }
  cloud.on('POST', `${NEUTRON}/ports`, (req) => ({ status: 201, body: { port: port(String((req.body as { port: { network_id: string } }).port.network_id), '', '') } }));
  cloud.on('POST', `${NEUTRON}/security-groups`, (req) => {
    const b = (req.body as { security_group: { name: string; description?: string } }).security_group;
    return { status: 201, body: { security_group: put(state.securityGroups, { id: id('sg'), name: b.name, description: b.description ?? '', security_group_rules: [], tags: [] }) } };
  });
  cloud.on('POST', `${NEUTRON}/security-group-rules`, (req) => {
    const rule: Record<string, unknown> = { id: id('rule'), ...(req.body as { security_group_rule: Record<string, unknown> }).security_group_rule };
    const sg = state.securityGroups.get(String(rule.security_group_id));
    if (!sg) return notFound('SecurityGroup');
    (sg.security_group_rules as unknown[]).push(rule);
    return { status: 201, body: { security_group_rule: rule } };
  });
  const attach = (f: Item, portId: string): FakeAnswer | undefined => {
    const p = state.ports.get(portId);
    if (!p) return notFound('Port');
    const subnetId = (p.fixed_ips as { subnet_id: string; ip_address: string }[])[0].subnet_id;
    const routed = [...state.ports.values()].some((rp) => rp.device_owner === 'network:router_interface' && (rp.fixed_ips as { subnet_id: string }[]).some((ip) => ip.subnet_id === subnetId) && (state.routers.get(String(rp.device_id))?.external_gateway_info as { network_id?: string } | null)?.network_id === f.floating_network_id);
    if (!routed) return { status: 404, body: { NeutronError: { type: 'ExternalGatewayForFloatingIPNotFound', message: `External network ${String(f.floating_network_id)} is not reachable from subnet ${subnetId}.  Therefore, cannot associate Port ${portId} with a Floating IP.`, detail: '' } } };
    if ([...state.floatingIps.values()].some((o) => o.port_id === portId && o.id !== f.id)) return { status: 409, body: { NeutronError: { type: 'FloatingIPPortAlreadyAssociated', message: `Port ${portId} already has a floating IP`, detail: '' } } };
    Object.assign(f, { port_id: portId, fixed_ip_address: (p.fixed_ips as { ip_address: string }[])[0].ip_address, status: 'ACTIVE' });
    return undefined;
  };
  cloud.on('POST', `${NEUTRON}/floatingips`, (req: RecordedRequest) => {
    const b = (req.body as { floatingip: Record<string, unknown> }).floatingip;
    const ext = state.networks.get(String(b.floating_network_id));
    if (!ext?.['router:external']) return { status: 400, body: { NeutronError: { type: 'BadRequest', message: `Bad floatingip request: Network ${String(b.floating_network_id)} is not a valid external network.`, detail: '' } } };
    const f: Item = { id: id('fip'), floating_ip_address: nextIp('sub-public'), floating_network_id: ext.id, port_id: null, fixed_ip_address: null, status: 'DOWN', description: b.description ?? '', tags: [] };
    if (b.port_id) {
      const refused = attach(f, String(b.port_id));
      if (refused) return refused;
    }
    return { status: 201, body: { floatingip: put(state.floatingIps, f) } };
  });
  cloud.onPattern('PUT', /^\/9696\/v2\.0\/floatingips\/([^/]+)$/, (req, m) => {
    const f = state.floatingIps.get(m[1]);
    if (!f) return notFound('FloatingIP');
    const portId = (req.body as { floatingip: { port_id?: string | null } }).floatingip.port_id;
    if (portId === null) Object.assign(f, { port_id: null, fixed_ip_address: null, status: 'DOWN' });
    else if (portId) {
      const refused = attach(f, portId);
      if (refused) return refused;
    }
    return { body: { floatingip: f } };
  });
  return os;
}
