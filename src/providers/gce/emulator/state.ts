/**
 * What the GCE emulator holds: its project (with `commonInstanceMetadata`), zones, machine
 * types, images (the public image projects `debian-cloud` and `ubuntu-os-cloud`, and the
 * project's own), the `default` network and its subnetworks, firewalls, instances,
 * operations (with the `requestId`s that made them), and the policies a test or a demo can
 * turn on: an organisation policy refusing external addresses, one requiring OS Login, and
 * zone capacity that runs out after an insert was accepted.
 *
 * @example
 *   const state = new GceState('formwork-emulated', `${url}/compute/v1`);
 *   state.policy.noExternalIp = true; // addAccessConfig answers 412 constraints/compute.vmExternalIpAccess
 */
import type { BackendHost } from '../../emulation/hosts.js';
import { numericId, timestamp, type GceOperationRecord } from './wire.js';

/** The zones the emulator has, with their region. */
export const ZONES: Readonly<Record<string, string>> = { 'us-central1-a': 'us-central1', 'us-central1-b': 'us-central1', 'europe-west1-b': 'europe-west1' };

/** Machine types offered in every zone: name → [guestCpus, memoryMb]. */
export const MACHINE_TYPES: Readonly<Record<string, [number, number]>> = {
  'f1-micro': [1, 614], 'e2-micro': [2, 1024], 'e2-small': [2, 2048], 'e2-medium': [2, 4096],
  'n1-standard-1': [1, 3840], 'e2-standard-2': [2, 8192], 'e2-standard-4': [4, 16384], 'n2-standard-8': [8, 32768],
};

/** How an image's instances behave: the guest agent makes the ssh-keys user; some leave the hostname unset. */
export interface ImageBehaviour {
  family: string;
  halfProvisioned?: boolean;
  deprecated?: boolean;
}

/** The images of each image project: name → behaviour. */
export const IMAGES: Readonly<Record<string, Readonly<Record<string, ImageBehaviour>>>> = {
  'debian-cloud': {
    'debian-12-bookworm-v20231010': { family: 'debian-12', deprecated: true },
    'debian-12-bookworm-v20240110': { family: 'debian-12' },
    'debian-11-bullseye-v20240110': { family: 'debian-11' },
  },
  'ubuntu-os-cloud': {
    'ubuntu-2204-jammy-v20240111': { family: 'ubuntu-2204-lts', halfProvisioned: true },
  },
};

/** Switches for what the emulated project and zone refuse. */
export interface GcePolicy {
  /** The organisation policy constraints/compute.vmExternalIpAccess: no instance may have an external address. */
  noExternalIp: boolean;
  /**
   * The organisation policy constraints/compute.requireOsLogin: inserts are not refused, but the project's
   * enable-oslogin is TRUE and an instance's FALSE is ignored (its effective value TRUE), so metadata SSH keys do nothing.
   */
  requireOsLogin: boolean;
  /** The next N inserts are accepted, then fail on their operation with ZONE_RESOURCE_POOL_EXHAUSTED. */
  exhaustZoneAfterInsert: number;
}

/** An instance: its wire form and what only the emulator knows. */
export interface EmuInstance {
  json: {
    kind: 'compute#instance';
    id: string;
    name: string;
    creationTimestamp: string;
    status: string;
    statusMessage?: string;
    zone: string;
    machineType: string;
    selfLink: string;
    canIpForward: false;
    labels: Record<string, string>;
    labelFingerprint: string;
    metadata: { kind: 'compute#metadata'; fingerprint: string; items: Array<{ key: string; value: string }> };
    tags: { items: string[]; fingerprint: string };
    networkInterfaces: Array<{ kind: 'compute#networkInterface'; name: string; network: string; subnetwork: string; networkIP?: string; fingerprint: string; accessConfigs: Array<{ kind: 'compute#accessConfig'; type: string; name: string; natIP: string; networkTier: string }> }>;
    disks: Array<{ kind: 'compute#attachedDisk'; type: 'PERSISTENT'; mode: 'READ_WRITE'; source: string; deviceName: string; index: number; boot: true; autoDelete: boolean }>;
    scheduling: { automaticRestart: boolean; onHostMaintenance: string; preemptible: boolean };
    resourceStatus: { effectiveInstanceMetadata: { enableOsloginMetadataValue: boolean; blockProjectSshKeysMetadataValue: boolean } };
  };
  zone: string;
  image: { project: string; name: string; behaviour: ImageBehaviour };
  host?: BackendHost;
  neverBoot: boolean;
  /** The build in flight (made on the backend), awaited by a delete. */
  building?: Promise<void>;
  deleting?: boolean;
}

/**
 * A metadata or label fingerprint (what a set call must send back).
 *
 * @example
 *   fingerprint(); // 'q1w2e3r4t5Y='
 */
export function fingerprint(): string {
  return Buffer.from(numericId().slice(0, 8)).toString('base64');
}

/** The emulator's state (see the file's comment). */
export class GceState {
  readonly instances = new Map<string, EmuInstance>();
  readonly operations = new Map<string, GceOperationRecord>();
  readonly requestIds = new Map<string, string>();
  readonly firewalls = new Map<string, Record<string, unknown>>();
  readonly policy: GcePolicy = { noExternalIp: false, requireOsLogin: false, exhaustZoneAfterInsert: 0 };
  readonly commonInstanceMetadata: Array<{ key: string; value: string }> = [];
  readonly projectId = numericId();
  private readonly natInUse = new Set<string>();
  readonly created = timestamp(Date.parse('2024-01-10T00:00:00Z'));

  constructor(
    readonly project: string,
    /** The API base (`http://…/compute/v1`): self links start with it. */
    readonly base: string,
    readonly publicPrefix: string,
  ) {}

  /** `…/projects/P`. */
  get projectLink(): string {
    return `${this.base}/projects/${this.project}`;
  }

  zoneLink(zone: string): string {
    return `${this.projectLink}/zones/${zone}`;
  }

  /** A free external address of the public side (.200–.250), or undefined when all are taken. */
  takeNatIp(): string | undefined {
    for (let i = 200; i <= 250; i++) {
      const a = `${this.publicPrefix}.${i}`;
      if (!this.natInUse.has(a)) {
        this.natInUse.add(a);
        return a;
      }
    }
    return undefined;
  }

  releaseNatIp(address: string): void {
    this.natInUse.delete(address);
  }

  /** The project's metadata items: under requireOsLogin, enable-oslogin is TRUE whatever was set. */
  projectMetadata(): Array<{ key: string; value: string }> {
    if (!this.policy.requireOsLogin) return this.commonInstanceMetadata;
    return [...this.commonInstanceMetadata.filter((i) => i.key !== 'enable-oslogin'), { key: 'enable-oslogin', value: 'TRUE' }];
  }

  /** The project as `projects.get` answers it. */
  projectJson(): Record<string, unknown> {
    return {
      kind: 'compute#project',
      id: this.projectId,
      creationTimestamp: this.created,
      name: this.project,
      selfLink: this.projectLink,
      commonInstanceMetadata: { kind: 'compute#metadata', fingerprint: 'm5Rk2Pm1XZU=', items: this.projectMetadata() },
      quotas: [
        { metric: 'CPUS', limit: 1000, usage: [...this.instances.values()].reduce((n, i) => n + (MACHINE_TYPES[i.json.machineType.split('/').pop()!]?.[0] ?? 0), 0) },
        { metric: 'IN_USE_ADDRESSES', limit: 51, usage: this.natInUse.size },
        { metric: 'FIREWALLS', limit: 200, usage: this.firewalls.size },
      ],
      defaultNetworkTier: 'PREMIUM',
      xpnProjectStatus: 'UNSPECIFIED_XPN_PROJECT_STATUS',
    };
  }

  zoneJson(zone: string): Record<string, unknown> {
    return { kind: 'compute#zone', id: String(2000 + Object.keys(ZONES).indexOf(zone)), creationTimestamp: this.created, name: zone, description: zone, status: 'UP', region: `${this.projectLink}/regions/${ZONES[zone]}`, selfLink: this.zoneLink(zone), availableCpuPlatforms: ['Intel Broadwell', 'AMD Milan'] };
  }

  machineTypeJson(zone: string, name: string): Record<string, unknown> {
    const [cpus, mem] = MACHINE_TYPES[name]!;
    return { kind: 'compute#machineType', id: String(3000 + Object.keys(MACHINE_TYPES).indexOf(name)), creationTimestamp: this.created, name, description: `${cpus} vCPU, ${(mem / 1024).toFixed(1)} GB RAM`, guestCpus: cpus, memoryMb: mem, imageSpaceGb: 0, maximumPersistentDisks: 128, maximumPersistentDisksSizeGb: '263168', zone, selfLink: `${this.zoneLink(zone)}/machineTypes/${name}`, isSharedCpu: name.startsWith('f1') || name === 'e2-micro' };
  }

  imageJson(project: string, name: string): Record<string, unknown> {
    const b = IMAGES[project]![name]!;
    return {
      kind: 'compute#image', id: String(4000 + name.length), creationTimestamp: timestamp(Date.parse(`${/v(\d{4})(\d{2})(\d{2})$/.exec(name)!.slice(1).join('-')}T00:00:00Z`)), name, description: `${b.family} built on ${name.slice(-8)}`,
      sourceType: 'RAW', rawDisk: { source: '', containerType: 'TAR' }, status: 'READY', archiveSizeBytes: '1213459584', diskSizeGb: '10', family: b.family,
      selfLink: `${this.base}/projects/${project}/global/images/${name}`, licenses: [`${this.base}/projects/${project}/global/licenses/${b.family.split('-')[0]}`],
      ...(b.deprecated ? { deprecated: { state: 'DEPRECATED', replacement: `${this.base}/projects/${project}/global/images/${Object.keys(IMAGES[project]!).find((n) => IMAGES[project]![n]!.family === b.family && !IMAGES[project]![n]!.deprecated)}` } } : {}),
    };
  }

  networkJson(): Record<string, unknown> {
    return { kind: 'compute#network', id: '5000', creationTimestamp: this.created, name: 'default', description: 'Default network for the project', selfLink: `${this.projectLink}/global/networks/default`, autoCreateSubnetworks: true, subnetworks: [...new Set(Object.values(ZONES))].map((r) => `${this.projectLink}/regions/${r}/subnetworks/default`), routingConfig: { routingMode: 'REGIONAL' } };
  }

  subnetworkJson(region: string, privatePrefix: string): Record<string, unknown> {
    return { kind: 'compute#subnetwork', id: String(6000 + Object.values(ZONES).indexOf(region)), creationTimestamp: this.created, name: 'default', network: `${this.projectLink}/global/networks/default`, ipCidrRange: `${privatePrefix}.0/24`, gatewayAddress: `${privatePrefix}.1`, region: `${this.projectLink}/regions/${region}`, selfLink: `${this.projectLink}/regions/${region}/subnetworks/default`, privateIpGoogleAccess: false };
  }
}
