/**
 * The Equinix Metal emulator's state and device lifecycle: one project, its SSH keys and
 * devices. A device is `queued` when accepted; its host is made on the backend on the
 * PUBLIC side (Metal devices answer on their public address as soon as they run), with root
 * as the only login user; then it is `provisioning` with its `ip_addresses` (public IPv4,
 * public IPv6, private IPv4, each with its `public`/`management` flags), and `active`
 * `bootDelayMs` later. A never-boot device stays `provisioning`; a device whose build is made
 * to fail goes `failed` (its host deleted) and, when asked, is "moved away": it answers 404
 * (or 403) from then on. A delete removes the device at once and its host in the background.
 *
 * @example
 *   const state = new MetalState(backend, faults, { bootDelayMs: 0 });
 *   const d = await state.createDevice({ hostname: 'web-1', plan: 'c3.small.x86', metro: 'da', operating_system: 'debian_12' });
 */
import { randomUUID } from 'node:crypto';
import type { HostBackend } from '../../emulation/hosts.js';
import type { Faults } from '../../emulation/faults.js';
import type { MetalDevice, MetalIpAddress, MetalSshKey } from '../wire.js';
import { EMULATED_METROS, EMULATED_OS, EMULATED_PLANS } from './catalog.js';

/** A refusal the server answers in Metal's error format. */
export class MetalRefusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A project SSH key as the emulator keeps it (`project` is not answered). */
export type StoredKey = MetalSshKey & { project: string; created_at: string; updated_at: string; user: { href: string } };

/** How builds go. */
export interface BuildOptions {
  bootDelayMs: number;
}

/** How a failed device is moved away: not at all, answering 404, or answering 403 (terraform-provider-equinix#233, #788). */
export type MoveAway = boolean | 'forbidden';

/** A device as the emulator keeps it: every field it answers. */
type EmulatedDevice = MetalDevice & Record<string, unknown>;

interface DeviceRecord {
  device: EmulatedDevice;
  hostId?: string;
  neverBoot: boolean;
  failBuild?: { moveAway: MoveAway };
  deleted: boolean;
}

const now = () => new Date().toISOString();

/** The emulator's state (see the file's comment). */
export class MetalState {
  readonly projectId = randomUUID();
  readonly projectName = 'formwork-emulated';
  readonly keys = new Map<string, StoredKey>();
  readonly devices = new Map<string, DeviceRecord>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Failed devices moved away that answer 403 on GET/DELETE /devices/{id}. */
  readonly forbiddenDevices = new Set<string>();
  private failBuilds: { moveAway: MoveAway }[] = [];
  private neverBootNext = 0;

  constructor(
    private readonly backend: HostBackend,
    private readonly faults: Faults,
    private readonly options: BuildOptions,
  ) {}

  /** The next `count` devices fail their build; `moveAway`: they then answer 404 (or 403 with 'forbidden'), as Metal moves failed hardware away. */
  failNextBuilds(count: number, moveAway: MoveAway = false): void {
    for (let i = 0; i < count; i++) this.failBuilds.push({ moveAway });
  }

  /** The next device never leaves `provisioning` (besides the `never-boot` fault). */
  neverBootNextDevice(): void {
    this.neverBootNext++;
  }

  /** Adds a project SSH key. */
  addKey(body: { label?: unknown; key?: unknown }): StoredKey {
    if (typeof body.key !== 'string' || !/^(ssh-|ecdsa-)/.test(body.key.trim())) throw new MetalRefusal(422, 'Key is not a valid public SSH key');
    if (typeof body.label !== 'string' || !body.label) throw new MetalRefusal(422, "Label can't be blank");
    // Metal registers a key once, whatever the label.
    const material = (k: string) => k.trim().split(/\s+/).slice(0, 2).join(' ');
    if ([...this.keys.values()].some((k) => material(k.key ?? '') === material(body.key as string))) throw new MetalRefusal(422, 'Key has already been taken');
    const id = randomUUID();
    const key: StoredKey = { id, label: body.label, key: body.key, fingerprint: `fp-${id.slice(0, 8)}`, href: `/ssh-keys/${id}`, project: this.projectId, created_at: now(), updated_at: now(), user: { href: '/users/emulated-user' } };
    this.keys.set(id, key);
    return key;
  }

  /** Accepts a device: validates it as Metal does, then starts its build; resolves once the build has its host or after a moment, whichever is first. */
  async createDevice(body: Record<string, unknown>): Promise<MetalDevice> {
    const hostname = body.hostname;
    if (typeof hostname !== 'string' || !hostname) throw new MetalRefusal(422, "Hostname can't be blank");
    if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(hostname)) throw new MetalRefusal(422, 'Hostname is invalid');
    const plan = EMULATED_PLANS.find((p) => p.slug === body.plan || p.id === body.plan);
    if (!plan) throw new MetalRefusal(422, `Plan ${String(body.plan)} is not a valid plan`);
    const metroCode = body.metro ?? body.facility;
    const metro = EMULATED_METROS.find((m) => m.code === metroCode || m.id === metroCode);
    if (!metro) throw new MetalRefusal(422, `Metro ${String(metroCode)} is not a valid metro`);
    if (!plan.available_in_metros?.some((m) => m.code === metro.code)) throw new MetalRefusal(503, `Oh snap, we don't have enough ${plan.slug} capacity in ${metro.code}`);
    const os = EMULATED_OS.find((o) => o.slug === body.operating_system);
    if (!os) throw new MetalRefusal(422, `Operating system ${String(body.operating_system)} is not valid`);
    const keyIds = Array.isArray(body.project_ssh_keys) ? body.project_ssh_keys.map(String) : [...this.keys.keys()];
    const keys = keyIds.map((id) => this.keys.get(id));
    if (keys.some((k) => !k)) throw new MetalRefusal(422, 'Project ssh keys contains an unknown key');
    const tags = Array.isArray(body.tags) ? body.tags.map(String) : [];
    const customdata = body.customdata && typeof body.customdata === 'object' ? (body.customdata as Record<string, unknown>) : {};
    const id = randomUUID();
    const { halfProvisioned: _h, ...osShape } = os;
    const device: EmulatedDevice = {
      id,
      short_id: id.slice(0, 8),
      href: `/devices/${id}`,
      hostname,
      description: null,
      state: 'queued',
      tags,
      billing_cycle: typeof body.billing_cycle === 'string' ? body.billing_cycle : 'hourly',
      user: 'root',
      locked: false,
      created_at: now(),
      updated_at: now(),
      customdata,
      operating_system: osShape,
      plan,
      metro,
      facility: { id: `fac-${metro.code}1`, code: `${metro.code}11`, name: metro.name },
      project: { href: `/projects/${this.projectId}` },
      ssh_keys: keys.map((k) => ({ href: k!.href })),
      ip_addresses: [],
      provisioning_percentage: 0,
    };
    const rec: DeviceRecord = { device, neverBoot: this.takeNeverBoot(), deleted: false, ...(this.failBuilds.length ? { failBuild: this.failBuilds.shift() } : {}) };
    this.devices.set(id, rec);
    const started = this.track(this.build(rec, keys[0]?.key, os.halfProvisioned === true));
    await Promise.race([started, new Promise((r) => setTimeout(r, 200))]);
    return device;
  }

  private takeNeverBoot(): boolean {
    if (this.neverBootNext > 0) {
      this.neverBootNext--;
      return true;
    }
    return this.faults.takeNeverBoot();
  }

  private async build(rec: DeviceRecord, publicKey: string | undefined, halfProvisioned: boolean): Promise<void> {
    const d = rec.device;
    let host;
    try {
      host = await this.backend.create({ serverId: d.id, name: d.hostname ?? d.id, side: 'public', ...(publicKey ? { publicKey } : {}), onlyLoginUser: 'root', halfProvisioned });
    } catch {
      this.setState(rec, 'failed');
      return;
    }
    if (rec.deleted) {
      await this.backend.delete(host.hostId);
      return;
    }
    rec.hostId = host.hostId;
    d.ip_addresses = addressesFor(host.publicAddress, host.privateAddress, d.id, this.backend.publicGateway);
    this.setState(rec, 'provisioning');
    if (rec.neverBoot) return;
    if (this.options.bootDelayMs) await new Promise((r) => setTimeout(r, this.options.bootDelayMs));
    if (rec.deleted) return;
    if (rec.failBuild) {
      this.setState(rec, 'failed');
      rec.hostId = undefined;
      await this.backend.delete(host.hostId);
      if (rec.failBuild.moveAway) this.devices.delete(d.id);
      if (rec.failBuild.moveAway === 'forbidden') this.forbiddenDevices.add(d.id);
      return;
    }
    this.setState(rec, 'active');
  }

  private setState(rec: DeviceRecord, state: string): void {
    rec.device.state = state;
    rec.device.updated_at = now();
    rec.device.provisioning_percentage = state === 'active' ? 100 : state === 'provisioning' ? 50 : 0;
  }

  /** Deletes a device: gone at once, its host deleted in the background. False when there is none. */
  deleteDevice(id: string): boolean {
    const rec = this.devices.get(id);
    if (!rec) return false;
    rec.deleted = true;
    this.devices.delete(id);
    if (rec.hostId) {
      const hostId = rec.hostId;
      rec.hostId = undefined;
      this.track(this.backend.delete(hostId));
    }
    return true;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const t = p.finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
    return t;
  }

  /** Resolves when every build and host deletion in flight has finished. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }
}

/** A device's addresses as Metal lists them: public IPv4 (management), public IPv6, private IPv4. */
function addressesFor(publicAddress: string, privateAddress: string, deviceId: string, publicGateway: string): MetalIpAddress[] {
  const last = Number(publicAddress.split('.').pop()) || 1;
  const entry = (address: string, family: 4 | 6, isPublic: boolean, gateway: string, network: string, cidr: number): MetalIpAddress & Record<string, unknown> => ({
    id: randomUUID(),
    address_family: family,
    netmask: family === 4 ? (cidr === 24 ? '255.255.255.0' : '255.255.255.128') : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0',
    created_at: now(),
    public: isPublic,
    cidr,
    management: true,
    manageable: true,
    enabled: true,
    global_ip: null,
    assigned_to: { href: `/devices/${deviceId}` },
    network,
    address,
    gateway,
    href: `/ips/${randomUUID()}`,
  });
  const prefix = (a: string) => a.split('.').slice(0, 3).join('.');
  return [
    entry(publicAddress, 4, true, publicGateway, `${prefix(publicAddress)}.0`, 24),
    entry(`2001:db8:fa::${last.toString(16)}`, 6, true, '2001:db8:fa::1', '2001:db8:fa::', 124),
    entry(privateAddress, 4, false, `${prefix(privateAddress)}.1`, `${prefix(privateAddress)}.0`, 24),
  ];
}
