/**
 * The emulator's state: instances (with their hosts), Elastic IPs, key pairs, security
 * groups and client tokens, over the fixed catalog (catalog.ts). Instances are made on the
 * host backend at launch and deleted with it at termination; attaching an Elastic IP tells
 * the backend (`setFloatingAddress`), so a host on the private side answers on it.
 *
 * EC2's ways kept here: a new instance is unknown to DescribeInstances for its first one or
 * two looks (eventual consistency); a terminated one stays visible for a while; a client
 * token returns the instance it made, for a day, and refuses other parameters.
 *
 * @example
 *   const state = new Ec2State({ backend, faults, region: 'us-east-1', bootDelayMs: 0 });
 *   state.resources(); // [{ kind: 'instance', id: 'i-…', tags: {…}, status: 'running' }]
 */
import { randomBytes } from 'node:crypto';
import type { EmulatedResource, Faults } from '../../emulation/faults.js';
import type { HostBackend } from '../../emulation/hosts.js';
import type { ProviderLogger } from '../../provider.js';
import { DEFAULT_VPC_ID, defaultSubnetId, EMULATED_IMAGES, rootLoginMessage, ZONE_SUFFIXES, type EmulatedImage } from './catalog.js';

/** EC2 instance states with their codes. @example STATE_CODES.running; // 16 */
export const STATE_CODES = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 } as const;
/** An EC2 instance state name. @example const s: InstanceStateName = 'pending'; */
export type InstanceStateName = keyof typeof STATE_CODES;

/** An instance. @example state.instances.get('i-0abc')?.state; // 'pending' */
export interface InstanceRecord {
  id: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  state: InstanceStateName;
  launchTime: string;
  zone: string;
  subnetId: string;
  keyName?: string;
  groupIds: string[];
  tags: Record<string, string>;
  clientToken?: string;
  privateIp?: string;
  publicIp?: string;
  hostId?: string;
  hostPublicKey?: string;
  /** DescribeInstances looks that still miss it (eventual consistency). */
  hiddenReads: number;
  stateReason?: { code: string; message: string };
  terminatedAt?: number;
}

/** An Elastic IP. @example state.addresses.get('eipalloc-0abc')?.instanceId; // 'i-0abc' once associated */
export interface AddressRecord {
  allocationId: string;
  publicIp: string;
  associationId?: string;
  instanceId?: string;
  tags: Record<string, string>;
}

/** A key pair. @example [...state.keyPairs.values()].map((k) => k.name); // ['formwork-aws1'] */
export interface KeyPairRecord {
  name: string;
  id: string;
  fingerprint: string;
  publicKey: string;
  createTime: string;
  tags: Record<string, string>;
}

/** A security group and its ingress rules. @example state.securityGroups.get('sg-0abc')?.ingress; // [{ protocol: 'tcp', from: 22, to: 22, cidrs: ['0.0.0.0/0'] }] */
export interface SecurityGroupRecord {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  tags: Record<string, string>;
  ingress: { protocol: string; from: number; to: number; cidrs: string[] }[];
}

/** A client token's instance and the parameters it was used with. */
interface TokenRecord {
  instanceId: string;
  params: string;
  at: number;
}

/** How the state is made. @example new Ec2State({ backend, faults, region: 'us-east-1', bootDelayMs: 0 }); */
export interface Ec2StateOptions {
  backend: HostBackend;
  faults: Faults;
  region: string;
  bootDelayMs: number;
  log?: ProviderLogger;
  /** How many Elastic IPs the account may hold (EC2's default: 5). */
  addressQuota?: number;
}

const hex = (n: number) => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

/** How long a terminated instance stays visible, and a client token valid. */
const TERMINATED_VISIBLE_MS = 60_000;
const TOKEN_VALID_MS = 24 * 3600_000;

/** The emulator's state (see the file's comment). @example const state = new Ec2State({ backend, faults, region: 'us-east-1', bootDelayMs: 0 }); state.resources(); // [] */
export class Ec2State {
  readonly instances = new Map<string, InstanceRecord>();
  readonly addresses = new Map<string, AddressRecord>();
  readonly keyPairs = new Map<string, KeyPairRecord>();
  readonly securityGroups = new Map<string, SecurityGroupRecord>();
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly pendingWork = new Set<Promise<unknown>>();
  readonly accountId = '123456789012';
  readonly zones: string[];
  readonly addressQuota: number;

  constructor(readonly options: Ec2StateOptions) {
    this.zones = ZONE_SUFFIXES.map((s) => `${options.region}${s}`);
    this.addressQuota = options.addressQuota ?? 5;
    this.securityGroups.set('sg-0default0000000', { id: 'sg-0default0000000', name: 'default', description: 'default VPC security group', vpcId: DEFAULT_VPC_ID, tags: {}, ingress: [] });
  }

  get backend(): HostBackend {
    return this.options.backend;
  }

  /** The default subnets, one per zone. */
  subnets(): { subnetId: string; zone: string; cidr: string }[] {
    return this.zones.map((zone, i) => ({ subnetId: defaultSubnetId(zone), zone, cidr: `${this.backend.privatePrefix}.${i * 64}/26` }));
  }

  newId(prefix: string): string {
    return `${prefix}-0${hex(16)}`;
  }

  image(imageId: string): EmulatedImage | undefined {
    return EMULATED_IMAGES.find((i) => i.imageId === imageId);
  }

  /** The instance a client token made (within its day), checking the parameters are the same. */
  tokenInstance(token: string, params: string): { instance?: InstanceRecord; mismatch: boolean } {
    const t = this.tokens.get(token);
    if (!t || Date.now() - t.at > TOKEN_VALID_MS) return { mismatch: false };
    if (t.params !== params) return { mismatch: true };
    return { instance: this.instances.get(t.instanceId), mismatch: false };
  }

  /**
   * Launches an instance: made on the backend now (so its private address is known), running
   * after the boot delay unless it is one that never boots.
   */
  async launch(rec: Omit<InstanceRecord, 'id' | 'reservationId' | 'state' | 'launchTime' | 'hiddenReads'>, params: string, publicKey: string | undefined): Promise<InstanceRecord> {
    const image = this.image(rec.imageId)!;
    const inst: InstanceRecord = { ...rec, id: this.newId('i'), reservationId: this.newId('r'), state: 'pending', launchTime: new Date().toISOString(), hiddenReads: 1 + Math.floor(Math.random() * 2) };
    this.instances.set(inst.id, inst);
    if (rec.clientToken) this.tokens.set(rec.clientToken, { instanceId: inst.id, params, at: Date.now() });
    try {
      const host = await this.backend.create({ serverId: inst.id, name: inst.tags.Name ?? inst.id, side: 'private', publicKey, onlyLoginUser: image.loginUser, rootLoginMessage: rootLoginMessage(image.loginUser), halfProvisioned: image.halfProvisioned });
      inst.hostId = host.hostId;
      inst.hostPublicKey = host.hostPublicKey;
      inst.privateIp = host.privateAddress;
    } catch (e) {
      inst.state = 'terminated';
      inst.terminatedAt = Date.now();
      inst.stateReason = { code: 'Server.InternalError', message: `Server.InternalError: Internal error on launch (${e instanceof Error ? e.message : String(e)})` };
      return inst;
    }
    if ((inst.state as InstanceStateName) !== 'pending') return inst; // terminated meanwhile
    if (this.options.faults.takeNeverBoot()) {
      this.options.log?.info('aws emulator: an instance that never boots', { instance: inst.id });
      return inst;
    }
    const boot = () => {
      if (inst.state === 'pending') inst.state = 'running';
    };
    if (this.options.bootDelayMs > 0) setTimeout(boot, this.options.bootDelayMs).unref();
    else boot();
    return inst;
  }

  /** Terminates an instance: its Elastic IPs are disassociated (not released), its host deleted. */
  terminate(inst: InstanceRecord): void {
    if (inst.state === 'terminated' || inst.state === 'shutting-down') return;
    inst.state = 'shutting-down';
    inst.stateReason = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
    for (const a of this.addresses.values()) if (a.instanceId === inst.id) this.disassociate(a);
    const work = (async () => {
      if (inst.hostId) await this.backend.delete(inst.hostId);
      inst.state = 'terminated';
      inst.terminatedAt = Date.now();
    })().catch((e: unknown) => this.options.log?.warn('aws emulator: could not delete a host', { instance: inst.id, error: e instanceof Error ? e.message : String(e) }));
    this.track(work);
  }

  /** Detaches an Elastic IP from its instance (and its host). */
  disassociate(a: AddressRecord): void {
    const inst = a.instanceId ? this.instances.get(a.instanceId) : undefined;
    if (inst) {
      inst.publicIp = undefined;
      if (inst.hostId) this.track(this.backend.setFloatingAddress(inst.hostId, undefined));
    }
    a.instanceId = undefined;
    a.associationId = undefined;
  }

  /** A free address of the public /24's floating range (.200–.250), or undefined. */
  freePublicIp(): string | undefined {
    const used = new Set([...this.addresses.values()].map((a) => a.publicIp));
    for (let i = 200; i <= 250; i++) if (!used.has(`${this.backend.publicPrefix}.${i}`)) return `${this.backend.publicPrefix}.${i}`;
    return undefined;
  }

  /** Forgets instances terminated long enough ago. */
  expire(): void {
    for (const [id, i] of this.instances) if (i.terminatedAt && Date.now() - i.terminatedAt > TERMINATED_VISIBLE_MS) this.instances.delete(id);
  }

  track(p: Promise<unknown>): void {
    this.pendingWork.add(p);
    void p.finally(() => this.pendingWork.delete(p));
  }

  /** Waits for host deletions and address moves under way. */
  async settled(): Promise<void> {
    while (this.pendingWork.size) await Promise.allSettled([...this.pendingWork]);
  }

  /** Everything held now (terminated instances and the default group are not held). */
  resources(): EmulatedResource[] {
    return [
      ...[...this.instances.values()].filter((i) => i.state !== 'terminated').map((i) => ({ kind: 'instance', id: i.id, tags: { ...i.tags }, status: i.state })),
      ...[...this.addresses.values()].map((a) => ({ kind: 'address', id: a.allocationId, tags: { ...a.tags }, status: a.instanceId ? `associated with ${a.instanceId}` : 'unassociated' })),
      ...[...this.keyPairs.values()].map((k) => ({ kind: 'key-pair', id: k.id, tags: { ...k.tags }, status: k.name })),
      ...[...this.securityGroups.values()].filter((g) => g.name !== 'default').map((g) => ({ kind: 'security-group', id: g.id, tags: { ...g.tags }, status: g.name })),
    ];
  }

  /** Terminates every instance and waits for the hosts to go. */
  async close(): Promise<void> {
    await this.settled();
    for (const i of this.instances.values()) this.terminate(i);
    await this.settled();
  }
}
