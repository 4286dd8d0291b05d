/**
 * The emulator's instances (`/projects/P/zones/Z/instances…`), each a host of the backend:
 * insert (validated as Compute validates: name, machine type, image, network; a repeated
 * `requestId` answers the first operation), get, list (label filters, paging), delete,
 * addAccessConfig / deleteAccessConfig (the external address is the host's floating address),
 * setMetadata / setLabels (fingerprints checked), the serial port output and the `hostkeys/`
 * guest attributes (the host's real key, when the backend has one).
 *
 * The guest agent's part: the user named in `ssh-keys` (the instance's, or the project's
 * unless `block-project-ssh-keys`) is the host's only login user, unless OS Login is on (the
 * project's `enable-oslogin: TRUE` not overridden by the instance, or constraints/compute.requireOsLogin,
 * which ignores the instance's FALSE), when no metadata key works; `resourceStatus.effectiveInstanceMetadata` says which.
 * Instances are on the private side: reachable only once an access config is attached.
 *
 * @example
 *   await instances.handle({ method: 'POST', zone, rest: [], query, body });
 */
import type { Faults } from '../../emulation/faults.js';
import type { HostBackend } from '../../emulation/hosts.js';
import { OperationFailure, type Operations } from './operations.js';
import { fingerprint, IMAGES, MACHINE_TYPES, type EmuInstance, type GceState } from './state.js';
import { googleErrorAnswer, matches, notFound, numericId, page, parseFilter, timestamp, type GceAnswer } from './wire.js';

/** A request routed to the instances collection of a zone. */
export interface InstancesRequest {
  method: string;
  zone: string;
  /** The path after `instances` (`[]`, `[name]`, `[name, action]`). */
  rest: string[];
  query: URLSearchParams;
  body: unknown;
}

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const metaValue = (items: Array<{ key: string; value: string }>, key: string) => items.find((i) => i.key === key)?.value;

/** The instances of the emulated project (see the file's comment). */
export class EmulatedInstances {
  constructor(
    private readonly state: GceState,
    private readonly backend: HostBackend,
    private readonly ops: Operations,
    private readonly faults: Faults,
    private readonly bootDelayMs: number,
  ) {}

  async handle(r: InstancesRequest): Promise<GceAnswer> {
    const [name, action] = r.rest;
    if (!name) {
      if (r.method === 'GET') return this.list(r);
      if (r.method === 'POST') return this.insert(r);
      return googleErrorAnswer(405, 'methodNotAllowed', `Method ${r.method} not allowed`);
    }
    const inst = this.state.instances.get(name);
    const path = `projects/${this.state.project}/zones/${r.zone}/instances/${name}`;
    if (!inst || inst.zone !== r.zone) return notFound(path);
    if (!action) {
      if (r.method === 'GET') return { body: inst.json };
      if (r.method === 'DELETE') return this.delete(inst, r);
    }
    if (r.method === 'POST' && action === 'addAccessConfig') return this.addAccessConfig(inst, r);
    if (r.method === 'POST' && action === 'deleteAccessConfig') return this.deleteAccessConfig(inst, r);
    if (r.method === 'POST' && action === 'setMetadata') return this.setMetadata(inst, r);
    if (r.method === 'POST' && action === 'setLabels') return this.setLabels(inst, r);
    if (r.method === 'GET' && action === 'serialPort') return { body: { kind: 'compute#serialPortOutput', contents: this.serial(inst), start: '0', next: String(this.serial(inst).length), selfLink: `${inst.json.selfLink}/serialPort` } };
    if (r.method === 'GET' && action === 'getGuestAttributes') return this.guestAttributes(inst, r.query);
    return notFound(`${path}/${action ?? ''}`);
  }

  private list(r: InstancesRequest): GceAnswer {
    const terms = parseFilter(r.query.get('filter'));
    if (!terms) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'filter': '${r.query.get('filter')}'. Invalid list filter expression.`);
    const items = [...this.state.instances.values()].filter((i) => i.zone === r.zone && matches(i.json, terms)).map((i) => i.json);
    return { body: page(items, r.query, 'compute#instanceList', `${this.state.zoneLink(r.zone)}/instances`) };
  }

  private insert(r: InstancesRequest): GceAnswer {
    const again = this.ops.repeated(r.query.get('requestId'));
    if (again) return { body: { ...again } };
    const b = (r.body ?? {}) as { name?: string; machineType?: string; disks?: Array<{ boot?: boolean; initializeParams?: { sourceImage?: string } }>; networkInterfaces?: Array<{ network?: string; subnetwork?: string }>; metadata?: { items?: Array<{ key: string; value: string }> }; labels?: Record<string, string>; tags?: { items?: string[] } };
    const p = this.state.project;
    if (!b.name || !NAME.test(b.name)) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'resource.name': '${b.name ?? ''}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`);
    if (this.state.instances.has(b.name)) return googleErrorAnswer(409, 'alreadyExists', `The resource 'projects/${p}/zones/${r.zone}/instances/${b.name}' already exists`);
    const type = (b.machineType ?? '').split('/').pop() ?? '';
    if (!MACHINE_TYPES[type]) return notFound(`projects/${p}/zones/${r.zone}/machineTypes/${type}`);
    const image = resolveImage(b.disks?.find((d) => d.boot)?.initializeParams?.sourceImage ?? '', p);
    if (!image) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '${b.disks?.[0]?.initializeParams?.sourceImage ?? ''}'. The referenced image resource cannot be found.`);
    const network = (b.networkInterfaces?.[0]?.network ?? 'global/networks/default').split('/').pop();
    if (network !== 'default') return notFound(`projects/${p}/global/networks/${network}`);
    for (const l of Object.entries(b.labels ?? {})) if (!/^[a-z][a-z0-9_-]{0,62}$/.test(l[0]) || !/^[a-z0-9_-]{0,63}$/.test(l[1])) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'resource.labels': '${l[0]}'. Label keys and values may contain only lowercase letters, numeric characters, underscores and dashes.`);
    const items = (b.metadata?.items ?? []).map((i) => ({ key: i.key, value: String(i.value ?? '') }));
    // The instance's value overrides the project's, unless constraints/compute.requireOsLogin makes it TRUE.
    const projectItems = this.state.projectMetadata();
    const osLogin = this.state.policy.requireOsLogin || (metaValue(items, 'enable-oslogin') ?? metaValue(projectItems, 'enable-oslogin') ?? 'FALSE').toUpperCase() === 'TRUE';
    const blockProjectKeys = (metaValue(items, 'block-project-ssh-keys') ?? metaValue(projectItems, 'block-project-ssh-keys') ?? 'FALSE').toUpperCase() === 'TRUE';
    const region = r.zone.replace(/-[a-z]$/, '');
    const selfLink = `${this.state.zoneLink(r.zone)}/instances/${b.name}`;
    const inst: EmuInstance = {
      json: {
        kind: 'compute#instance', id: numericId(), name: b.name, creationTimestamp: timestamp(), status: 'PROVISIONING', zone: this.state.zoneLink(r.zone),
        machineType: `${this.state.zoneLink(r.zone)}/machineTypes/${type}`, selfLink, canIpForward: false,
        labels: { ...(b.labels ?? {}) }, labelFingerprint: fingerprint(),
        metadata: { kind: 'compute#metadata', fingerprint: fingerprint(), items },
        tags: { items: [...(b.tags?.items ?? [])], fingerprint: fingerprint() },
        networkInterfaces: [{ kind: 'compute#networkInterface', name: 'nic0', network: `${this.state.projectLink}/global/networks/default`, subnetwork: `${this.state.projectLink}/regions/${region}/subnetworks/default`, fingerprint: fingerprint(), accessConfigs: [] }],
        disks: [{ kind: 'compute#attachedDisk', type: 'PERSISTENT', mode: 'READ_WRITE', source: `${this.state.zoneLink(r.zone)}/disks/${b.name}`, deviceName: 'persistent-disk-0', index: 0, boot: true, autoDelete: true }],
        scheduling: { automaticRestart: true, onHostMaintenance: 'MIGRATE', preemptible: false },
        resourceStatus: { effectiveInstanceMetadata: { enableOsloginMetadataValue: osLogin, blockProjectSshKeysMetadataValue: blockProjectKeys } },
      },
      zone: r.zone,
      image,
      neverBoot: false,
    };
    this.state.instances.set(b.name, inst);
    const exhausted = this.state.policy.exhaustZoneAfterInsert > 0;
    if (exhausted) this.state.policy.exhaustZoneAfterInsert--;
    const op = this.ops.start('insert', selfLink, this.state.zoneLink(r.zone), r.query.get('requestId'), async () => {
      if (exhausted) {
        this.state.instances.delete(inst.json.name);
        throw new OperationFailure('ZONE_RESOURCE_POOL_EXHAUSTED', `The zone 'projects/${p}/zones/${r.zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`);
      }
      inst.building = this.build(inst);
      await inst.building;
    }, inst.json.id);
    return { body: op };
  }

  /** Makes the host, then the instance is STAGING, then RUNNING after the boot delay (never, for a never-boot one). */
  private async build(inst: EmuInstance): Promise<void> {
    const items = inst.json.metadata.items;
    const projectItems = this.state.projectMetadata();
    const osLogin = inst.json.resourceStatus.effectiveInstanceMetadata.enableOsloginMetadataValue;
    const blocked = (metaValue(items, 'block-project-ssh-keys') ?? '').toUpperCase() === 'TRUE';
    const keys = [metaValue(items, 'ssh-keys'), blocked ? undefined : metaValue(projectItems, 'ssh-keys')].filter(Boolean).join('\n');
    const first = osLogin ? undefined : /^([a-z_][a-z0-9_.-]*):(\S+ \S+)/m.exec(keys);
    try {
      inst.host = await this.backend.create({ serverId: inst.json.id, name: inst.json.name, side: 'private', ...(first ? { publicKey: first[2], onlyLoginUser: first[1] } : { onlyLoginUser: 'root' }), halfProvisioned: inst.image.behaviour.halfProvisioned === true });
    } catch (e) {
      this.state.instances.delete(inst.json.name);
      throw new OperationFailure('INTERNAL_ERROR', `Internal error while creating the instance: ${e instanceof Error ? e.message : String(e)}`);
    }
    inst.json.networkInterfaces[0]!.networkIP = inst.host.privateAddress;
    inst.json.status = 'STAGING';
    const nat = inst.json.networkInterfaces[0]!.accessConfigs[0]?.natIP;
    if (nat) await this.backend.setFloatingAddress(inst.host.hostId, nat);
    inst.neverBoot = this.faults.takeNeverBoot();
    if (inst.neverBoot) return;
    const run = () => {
      if (!inst.deleting && inst.json.status === 'STAGING') inst.json.status = 'RUNNING';
    };
    if (this.bootDelayMs) setTimeout(run, this.bootDelayMs).unref();
    else run();
  }

  private delete(inst: EmuInstance, r: InstancesRequest): GceAnswer {
    const again = this.ops.repeated(r.query.get('requestId'));
    if (again) return { body: { ...again } };
    inst.deleting = true;
    inst.json.status = 'STOPPING';
    const op = this.ops.start('delete', inst.json.selfLink, this.state.zoneLink(inst.zone), r.query.get('requestId'), async () => {
      await inst.building?.catch(() => undefined);
      await this.release(inst);
    }, inst.json.id);
    return { body: op };
  }

  /** Deletes the instance's host and external address, and the instance. */
  async release(inst: EmuInstance): Promise<void> {
    for (const ac of inst.json.networkInterfaces[0]!.accessConfigs) this.state.releaseNatIp(ac.natIP);
    if (inst.host) await this.backend.delete(inst.host.hostId);
    if (this.state.instances.get(inst.json.name) === inst) this.state.instances.delete(inst.json.name);
  }

  private addAccessConfig(inst: EmuInstance, r: InstancesRequest): GceAnswer {
    const again = this.ops.repeated(r.query.get('requestId'));
    if (again) return { body: { ...again } };
    const nic = inst.json.networkInterfaces.find((n) => n.name === (r.query.get('networkInterface') ?? 'nic0'));
    if (!nic) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'networkInterface': '${r.query.get('networkInterface')}'. No such network interface.`);
    const p = this.state.project;
    if (this.state.policy.noExternalIp) {
      return googleErrorAnswer(412, 'conditionNotMet', `Constraint constraints/compute.vmExternalIpAccess violated for project ${p}. Add instance projects/${p}/zones/${inst.zone}/instances/${inst.json.name} to the constraint to use external IP with it.`);
    }
    if (nic.accessConfigs.length) return googleErrorAnswer(400, 'invalid', 'At most one access config currently supported.');
    const b = (r.body ?? {}) as { name?: string; type?: string; networkTier?: string };
    const natIP = this.state.takeNatIp();
    if (!natIP) return googleErrorAnswer(403, 'quotaExceeded', `Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 51.0 in region ${inst.zone.replace(/-[a-z]$/, '')}.`);
    const op = this.ops.start('addAccessConfig', inst.json.selfLink, this.state.zoneLink(inst.zone), r.query.get('requestId'), async () => {
      if (!this.state.instances.has(inst.json.name)) {
        this.state.releaseNatIp(natIP);
        throw new OperationFailure('RESOURCE_NOT_FOUND', `The resource '${inst.json.selfLink}' was not found`);
      }
      nic.accessConfigs.push({ kind: 'compute#accessConfig', type: b.type ?? 'ONE_TO_ONE_NAT', name: b.name ?? 'External NAT', natIP, networkTier: b.networkTier ?? 'PREMIUM' });
      nic.fingerprint = fingerprint();
      if (inst.host) await this.backend.setFloatingAddress(inst.host.hostId, natIP);
    }, inst.json.id);
    return { body: op };
  }

  private deleteAccessConfig(inst: EmuInstance, r: InstancesRequest): GceAnswer {
    const again = this.ops.repeated(r.query.get('requestId'));
    if (again) return { body: { ...again } };
    const nic = inst.json.networkInterfaces.find((n) => n.name === (r.query.get('networkInterface') ?? 'nic0'));
    const ac = nic?.accessConfigs.find((a) => a.name === r.query.get('accessConfig'));
    if (!nic || !ac) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'accessConfig': '${r.query.get('accessConfig')}'. The access config does not exist on this network interface.`);
    const op = this.ops.start('deleteAccessConfig', inst.json.selfLink, this.state.zoneLink(inst.zone), r.query.get('requestId'), async () => {
      nic.accessConfigs = nic.accessConfigs.filter((a) => a !== ac);
      nic.fingerprint = fingerprint();
      this.state.releaseNatIp(ac.natIP);
      if (inst.host) await this.backend.setFloatingAddress(inst.host.hostId, undefined);
    }, inst.json.id);
    return { body: op };
  }

  private setMetadata(inst: EmuInstance, r: InstancesRequest): GceAnswer {
    const b = (r.body ?? {}) as { fingerprint?: string; items?: Array<{ key: string; value: string }> };
    if (b.fingerprint !== inst.json.metadata.fingerprint) return googleErrorAnswer(412, 'conditionNotMet', "Supplied fingerprint does not match current metadata fingerprint.");
    const op = this.ops.start('setMetadata', inst.json.selfLink, this.state.zoneLink(inst.zone), r.query.get('requestId'), async () => {
      inst.json.metadata = { kind: 'compute#metadata', fingerprint: fingerprint(), items: (b.items ?? []).map((i) => ({ key: i.key, value: String(i.value ?? '') })) };
    }, inst.json.id);
    return { body: op };
  }

  private setLabels(inst: EmuInstance, r: InstancesRequest): GceAnswer {
    const b = (r.body ?? {}) as { labelFingerprint?: string; labels?: Record<string, string> };
    if (b.labelFingerprint !== inst.json.labelFingerprint) return googleErrorAnswer(412, 'conditionNotMet', "Labels fingerprint either invalid or resource labels have changed");
    const op = this.ops.start('setLabels', inst.json.selfLink, this.state.zoneLink(inst.zone), r.query.get('requestId'), async () => {
      inst.json.labels = { ...(b.labels ?? {}) };
      inst.json.labelFingerprint = fingerprint();
    }, inst.json.id);
    return { body: op };
  }

  private serial(inst: EmuInstance): string {
    const lines = [`SeaBIOS (version 1.8.2-google)`, `Booting from Hard Disk 0...`, `[    0.000000] Linux version 6.1.0-17-cloud-amd64`];
    if (inst.json.status === 'RUNNING' && inst.host?.hostPublicKey) lines.push('-----BEGIN SSH HOST KEY KEYS-----', inst.host.hostPublicKey, '-----END SSH HOST KEY KEYS-----');
    if (inst.json.status === 'RUNNING') lines.push(`${inst.json.name} login:`);
    return lines.join('\r\n') + '\r\n';
  }

  private guestAttributes(inst: EmuInstance, q: URLSearchParams): GceAnswer {
    const path = q.get('queryPath') ?? '';
    const key = inst.host?.hostPublicKey;
    if (inst.json.status !== 'RUNNING' || !key || !'hostkeys/'.startsWith(path.replace(/\/?$/, '/'))) return notFound(`projects/${this.state.project}/zones/${inst.zone}/instances/${inst.json.name}/guestAttributes/${path}`);
    const [type, blob] = key.split(/\s+/);
    return { body: { kind: 'compute#guestAttributes', queryPath: path, selfLink: `${inst.json.selfLink}/getGuestAttributes?queryPath=${encodeURIComponent(path)}`, queryValue: { items: [{ namespace: 'hostkeys', key: type, value: blob }] } } };
  }
}

/** The image a `sourceImage` names (a full URL, `projects/P/global/images/N`, `…/images/family/F`, or `global/images/N` of the project), or undefined. */
function resolveImage(source: string, project: string): EmuInstance['image'] | undefined {
  const m = /(?:projects\/([^/]+)\/)?global\/images\/(family\/)?([^/?]+)$/.exec(source);
  if (!m) return undefined;
  const imgProject = m[1] ?? project;
  const images = IMAGES[imgProject];
  if (!images) return undefined;
  const name = m[2] ? Object.keys(images).filter((n) => images[n]!.family === m[3] && !images[n]!.deprecated).sort().pop() : images[m[3]!] ? m[3] : undefined;
  return name ? { project: imgProject, name, behaviour: images[name]! } : undefined;
}
