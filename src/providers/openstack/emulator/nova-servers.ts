/**
 * Nova's servers in the emulator: the server document as Nova shows it (addresses computed
 * from the server's ports and their floating IPs, with `OS-EXT-IPS:type` unless the
 * scenario hides it; the flavor embedded from microversion 2.47, a reference before), and
 * the life of a server: BUILD while the host backend makes its host, then ACTIVE with its
 * ports, or ERROR with a `fault` (late, for the scenarios whose first boots fail); deletion
 * gives the host back, deletes the ports Nova made and unbinds the ones it was given.
 *
 * @example
 *   const builds = new ServerBuilds(state);
 *   builds.start(record, { publicKey });
 *   await builds.settled();
 */
import { createHash } from 'node:crypto';
import type { NetworkSide } from '../../emulation/hosts.js';
import { syncFloating } from './neutron.js';
import type { Doc, EmulatorState, ServerRecord } from './state.js';
import { isoNow } from './wire.js';

/**
 * Whether microversion `a` is at least `b`.
 *
 * @example
 *   atLeast('2.47', '2.9'); // true
 */
export function atLeast(a: string, b: string): boolean {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am > bm || (am === bm && an >= bn);
}

/**
 * The server as `GET /servers/{id}` answers it at microversion `mv`.
 *
 * @example
 *   serverView(state, record, '2.79', 'http://127.0.0.1:5000/compute/v2.1').addresses; // { private: [{ addr: '10.20.0.11', 'OS-EXT-IPS:type': 'fixed', … }] }
 */
export function serverView(state: EmulatorState, rec: ServerRecord, mv: string, base: string): Record<string, unknown> {
  const doc = rec.doc;
  const addresses: Record<string, Record<string, unknown>[]> = {};
  const typed = state.scenario.addressTypes;
  for (const port of state.ports.values()) {
    if (port.device_id !== doc.id) continue;
    const net = state.networks.get(String(port.network_id));
    const list = (addresses[String(net?.name ?? port.network_id)] ??= []);
    for (const f of port.fixed_ips as { ip_address: string }[]) {
      list.push({ version: 4, addr: f.ip_address, ...(typed ? { 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': port.mac_address } : {}) });
      for (const fip of state.floatingips.values()) {
        if (fip.port_id === port.id && fip.fixed_ip_address === f.ip_address) list.push({ version: 4, addr: fip.floating_ip_address, ...(typed ? { 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': port.mac_address } : {}) });
      }
    }
  }
  const flavor = doc.flavor as Doc;
  const view: Record<string, unknown> = { ...doc, addresses, links: [{ rel: 'self', href: `${base}/servers/${doc.id}` }, { rel: 'bookmark', href: `${base.replace(/\/v2\.1$/, '')}/servers/${doc.id}` }] };
  view.flavor = atLeast(mv, '2.47')
    ? { vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk, ephemeral: 0, swap: 0, original_name: flavor.name, extra_specs: {} }
    : { id: flavor.id, links: [{ rel: 'bookmark', href: `${base.replace(/\/v2\.1$/, '')}/flavors/${flavor.id}` }] };
  if (rec.deleting) view['OS-EXT-STS:task_state'] = 'deleting';
  if (!atLeast(mv, '2.26')) delete view.tags;
  return view;
}

/**
 * A new server record in BUILD.
 *
 * @example
 *   const rec = newServerRecord(state, { name: 'web-1', flavor, imageId, networkId, side: 'private', keyName: 'k', metadata: {}, givenPorts: [] });
 */
export function newServerRecord(state: EmulatorState, spec: { name: string; flavor: Doc; imageId?: string; networkId: string; side: NetworkSide; keyName?: string; metadata: Record<string, string>; givenPorts: string[]; extraNetworks: string[] }): ServerRecord {
  const id = state.newId();
  const now = isoNow();
  const doc: Doc = {
    id,
    name: spec.name,
    status: 'BUILD',
    tenant_id: state.identity.projectId,
    user_id: state.identity.userId,
    metadata: spec.metadata,
    hostId: '',
    image: spec.imageId ? { id: spec.imageId, links: [] } : '',
    flavor: spec.flavor,
    created: now,
    updated: now,
    accessIPv4: '',
    accessIPv6: '',
    progress: 0,
    'OS-DCF:diskConfig': 'MANUAL',
    'OS-EXT-AZ:availability_zone': 'nova',
    'OS-EXT-STS:power_state': 0,
    'OS-EXT-STS:task_state': 'scheduling',
    'OS-EXT-STS:vm_state': 'building',
    'OS-SRV-USG:launched_at': null,
    'OS-SRV-USG:terminated_at': null,
    'os-extended-volumes:volumes_attached': [],
    config_drive: '',
    key_name: spec.keyName ?? null,
    security_groups: [{ name: 'default' }],
    locked: false,
    description: null,
    tags: [],
  };
  const rec: ServerRecord = { doc, side: spec.side, networkId: spec.networkId, ownPorts: [], givenPorts: spec.givenPorts, extraNetworks: spec.extraNetworks };
  state.servers.set(id, rec);
  return rec;
}

function fail(rec: ServerRecord, message: string, details: string): void {
  Object.assign(rec.doc, {
    status: 'ERROR',
    updated: isoNow(),
    'OS-EXT-STS:vm_state': 'error',
    'OS-EXT-STS:task_state': null,
    fault: { code: 500, created: isoNow(), message, details },
  });
}

/**
 * The builds and deletions in flight, so that the emulator can wait for them (tests) and stop cleanly.
 *
 * @example
 *   builds.start(rec, { publicKey: key.public_key });
 */
export class ServerBuilds {
  private readonly running = new Set<Promise<void>>();
  private readonly buildOf = new Map<ServerRecord, Promise<void>>();

  constructor(private readonly state: EmulatorState) {}

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /**
   * Resolves when every build and deletion started so far has finished.
   *
   * @example
   *   await builds.settled();
   */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Starts building a server: BUILD → ACTIVE (or ERROR). */
  start(rec: ServerRecord, opts: { publicKey?: string }): void {
    const boot = ++this.state.boots;
    const build = this.build(rec, boot, opts);
    this.buildOf.set(rec, build);
    this.track(build);
  }

  private async build(rec: ServerRecord, boot: number, opts: { publicKey?: string }): Promise<void> {
    const { scenario, backend } = this.state;
    rec.doc['OS-EXT-STS:task_state'] = 'spawning';
    if (this.state.faults.takeNeverBoot()) return; // the fault: BUILD until deleted
    rec.unreachable = this.state.faults.takeUnreachable();
    if (boot <= scenario.failingBoots) {
      // A late, asynchronous failure: the build looks fine for a while, then the scheduler gives up.
      await new Promise((r) => setTimeout(r, scenario.lateErrorMs));
      if (!rec.deleting) fail(rec, 'No valid host was found. There are not enough hosts available.', 'Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance.');
      return;
    }
    let host;
    try {
      host = await backend.create({ serverId: String(rec.doc.id), name: String(rec.doc.name), side: rec.side, publicKey: opts.publicKey, halfProvisioned: scenario.halfProvisioned, onlyLoginUser: scenario.onlyLoginUser });
    } catch (e) {
      if (!rec.deleting) fail(rec, `Build of instance ${String(rec.doc.id)} aborted: ${e instanceof Error ? e.message : String(e)}`, 'the host backend could not make the host');
      return;
    }
    rec.hostId = host.hostId;
    if (rec.deleting) return; // the deletion waiting on this build gives the host back
    const fixed = rec.side === 'public' ? host.publicAddress : host.privateAddress;
    const id = String(rec.doc.id);
    if (rec.givenPorts.length > 0) {
      const [first, ...rest] = rec.givenPorts;
      const port = this.state.ports.get(first);
      if (port) Object.assign(port, { device_id: id, device_owner: 'compute:nova', status: 'ACTIVE', fixed_ips: (port.fixed_ips as { subnet_id: string }[]).slice(0, 1).map((f) => ({ subnet_id: f.subnet_id, ip_address: fixed })) });
      for (const p of rest) Object.assign(this.state.ports.get(p) ?? {}, { device_id: id, device_owner: 'compute:nova', status: 'ACTIVE' });
    } else {
      rec.ownPorts.push(this.state.createPort(rec.networkId, { device_id: id, device_owner: 'compute:nova', status: 'ACTIVE', 'binding:host_id': 'emulator' }, fixed).id);
    }
    for (const net of rec.extraNetworks) rec.ownPorts.push(this.state.createPort(net, { device_id: id, device_owner: 'compute:nova', status: 'ACTIVE' }).id);
    Object.assign(rec.doc, {
      status: 'ACTIVE',
      updated: isoNow(),
      progress: 100,
      hostId: createHash('sha224').update(`${this.state.identity.projectId}${host.hostId}`).digest('hex'),
      'OS-EXT-STS:vm_state': 'active',
      'OS-EXT-STS:task_state': null,
      'OS-EXT-STS:power_state': 1,
      'OS-SRV-USG:launched_at': new Date().toISOString().replace('Z', ''),
    });
    for (const p of rec.givenPorts) await syncFloating(this.state, p);
  }

  /** Deletes a server: gives its host back, deletes its own ports, unbinds the given ones, then it is gone. */
  delete(rec: ServerRecord): void {
    if (rec.deleting) return;
    rec.deleting = true;
    const build = this.buildOf.get(rec);
    this.track(
      (async () => {
        await build?.catch(() => undefined); // a build in flight finishes (or fails) first
        this.buildOf.delete(rec);
        for (const portId of rec.ownPorts) {
          for (const f of this.state.floatingips.values()) if (f.port_id === portId) Object.assign(f, { port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', port_details: null });
          this.state.ports.delete(portId);
        }
        for (const portId of rec.givenPorts) {
          const port = this.state.ports.get(portId);
          if (port) Object.assign(port, { device_id: '', device_owner: '', status: 'DOWN' });
        }
        if (rec.hostId) await this.state.backend.delete(rec.hostId).catch(() => undefined);
        this.state.servers.delete(String(rec.doc.id));
      })(),
    );
  }
}
