/**
 * The provider contract: what every source of machines implements, whatever its kind.
 * docs/providers.md is its prose form (states, failures, idempotency, ownership tags,
 * lifecycle); src/providers/testing/contract-suite.ts is what checks a driver keeps it.
 *
 * A driver only creates, finds and deletes machines and reports what it knows of them.
 * Everything that makes machines alike (readiness, login user, host key, network roles,
 * hostname) is done afterwards by the yardstick's built-in roles, the same for every kind.
 *
 * @example
 *   const m = await driver.createMachine({ name: 'web-1', nodeId, idempotencyToken, tags: ownershipTags(...) }, ctx);
 *   controlAddress(m.addresses); // '198.18.0.11'
 */
import type { NodeAddress } from '../core/addresses.js';
import type { NodeDecision } from '../core/decisions.js';
import type { CatalogImage, CatalogNetwork, CatalogSize, CatalogZone, OwnedResource } from './catalog/types.js';

export type { AddressRole, NodeAddress } from '../core/addresses.js';
export type { NodeDecision } from '../core/decisions.js';
export type { CatalogImage, CatalogNetwork, CatalogSize, CatalogZone, OwnedResource, ShapeRequest } from './catalog/types.js';

/** The tags that say a machine is Formwork's, and whose: a driver puts them on everything it creates. */
export const TAG_MANAGED_BY = 'formwork.io/managed-by';
export const TAG_PROVIDER = 'formwork.io/provider';
export const TAG_NODE_ID = 'formwork.io/node-id';

export interface MachineSpec {
  name: string;
  /** The Formwork node's id: the machine is found again by it (TAG_NODE_ID), never by name. */
  nodeId: string;
  /**
   * The same token for a retried create of the same machine: a driver whose API takes one
   * (EC2's ClientToken) passes it; one whose API does not returns the machine already
   * carrying this token instead of making a second.
   */
  idempotencyToken: string;
  /** Ownership tags (TAG_*, and the node's labels prefixed): put on the machine and everything made for it. */
  tags: Record<string, string>;
  /** A catalog name (`small`), a native size id, or an explicit shape (`diskGiB` optional). */
  size?: string | { cpus: number; ramMiB: number; diskGiB?: number };
  /** An OS family and version (`debian-12`) or a native image id. */
  image?: string;
  /** The zone (or metro, availability domain) asked for; the driver's default when absent. */
  zone?: string;
  /** The node's labels; the same for every machine of a count (never an index). */
  labels?: Record<string, string>;
  /**
   * What the catalog chose for `size` and `image` among what the driver lists
   * (`listSizes`/`listImages`), and the login users to try: a driver that lists its catalog
   * boots `chosen.size.nativeId` and `chosen.image.nativeId` and needs no matching of its own.
   */
  chosen?: CatalogChoice;
}

/** The catalog's choice for one machine (src/providers/catalog/). */
export interface CatalogChoice {
  size?: { nativeId: string; normalized: string; reason: string };
  image?: { nativeId: string; normalized: string; reason: string };
  /** Login users to try, most likely first, and where they came from. */
  loginUsers?: { users: string[]; reason: string };
}

/**
 * - `booting`: created, not yet up (an EC2 instance `pending`, a PXE install running). Wait
 *   for it up to the readiness timeout; once that runs out, `provision` deletes it and makes another.
 * - `running`: up; the yardstick takes it from here.
 * - `stopped`: exists but is off.
 * - `error`: failed for good (a failed boot, a half-deleted machine); deleting it is safe.
 */
export type MachineState = 'booting' | 'running' | 'stopped' | 'error';
export const MACHINE_STATES: readonly MachineState[] = ['booting', 'running', 'stopped', 'error'];

export interface ProvisionedMachine {
  /** The provider's own id for the machine (instance id, server uuid, lab host name). */
  nativeId: string;
  name: string;
  state: MachineState;
  /** Why it is in `error` (or `stopped`), in the cloud's own words (Nova's fault, EC2's state reason): kept in the run's error. */
  stateReason?: string;
  addresses: NodeAddress[];
  /** Login users to try, most likely first (explicit setting, image metadata, provider table). */
  loginUsers: string[];
  /** The tags the machine carries (at least the ownership tags it was created with). */
  tags: Record<string, string>;
  /** The SSH host key fingerprint (`SHA256:…`) when the provider knows it already. */
  hostKey?: string;
  size?: { normalized: string; native: string };
  image?: { normalized: string; native: string };
  zone?: string;
  inventory?: Record<string, unknown>;
  /** What the driver chose for the machine (network, address path, security group) and why: recorded on the node. */
  decisions?: NodeDecision[];
}

export interface ProviderLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface ProviderContext {
  /** Formwork's data dir; a driver keeps its local state under `<dataDir>/providers/<provider name>/`. */
  dataDir: string;
  /** The provider object's name (several providers of one kind may coexist). */
  providerName: string;
  /** Driver settings from the provider object, valid against its descriptor's schema. */
  settings: Record<string, unknown>;
  /** Decrypted credentials, if the provider has any. Never log them. */
  credentials?: Record<string, string>;
  /** The platform's SSH public key, one authorized_keys line. */
  publicKey: string;
  log: ProviderLogger;
  signal?: AbortSignal;
}

/**
 * What `check` gets: a provider's name, settings and opened credentials, without the data
 * dir or platform key of a worker.
 *
 * @example
 *   const ctx: ProviderCheckContext = { providerName: 'os1', settings: { cloud: 'prod' }, log: console };
 */
export type ProviderCheckContext = Pick<ProviderContext, 'providerName' | 'settings' | 'credentials' | 'log' | 'signal'>;

export interface ProviderDriver {
  readonly type: string;
  /**
   * Makes the provider's shared resources and starts its long-lived services (lab's
   * bridges and package proxy; metal's DHCP/TFTP). Run when the provider is applied and
   * before any machine is created; idempotent.
   */
  prepare?(ctx: ProviderContext): Promise<void>;
  /**
   * What only the provider can say about a provider's settings and credentials — that they
   * log in, that the named cloud, region and network exist — asked when it is applied,
   * before anything is written; it creates nothing. A definitive refusal (an error that is
   * not retryable: PROVIDER_AUTH, PROVIDER_INVALID…) refuses the apply with its message,
   * which names what to fix; a transient one (retryable: the cloud unreachable, throttled)
   * lets the apply through, and `prepare` records what it finds later. Its context has no
   * data dir or platform key: it may run in an API-only process.
   *
   * @example
   *   await driver.check?.({ providerName: 'os1', settings: { cloud: 'nope' }, log }); // PROVIDER_INVALID: clouds.yaml has no cloud "nope"…
   */
  check?(ctx: ProviderCheckContext): Promise<void>;
  /** Creates a machine, or returns the one already created with `spec.idempotencyToken`. */
  createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine>;
  /** The machine with this id, if it exists (in any state). */
  getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined>;
  /** Deletes a machine; a machine already gone is not an error. */
  deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void>;
  /** The machines this provider made (the ones carrying its ownership tags), in any state. */
  listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]>;
  /** Removes provider-wide resources and stops what `prepare` started, once no machine is left. Idempotent. */
  teardown?(ctx: ProviderContext): Promise<void>;

  // Optional capabilities: a driver declares one by implementing it (docs/providers.md, "Capabilities").

  /** The native sizes (instance types, flavors, plans) machines can be made with. */
  listSizes?(ctx: ProviderContext): Promise<CatalogSize[]>;
  /** The images machines can boot from, with their properties (the catalog matches `debian-12` on them). */
  listImages?(ctx: ProviderContext): Promise<CatalogImage[]>;
  /** The networks machines can be put on, with the evidence of what each is (external, routed, NAT). */
  listNetworks?(ctx: ProviderContext): Promise<CatalogNetwork[]>;
  /** The zones (availability zones, metros) of the configured region. */
  listZones?(ctx: ProviderContext): Promise<CatalogZone[]>;
  /**
   * Gives a made machine the path the control plane reaches it by (an Elastic IP, a GCE access
   * config, an OpenStack floating IP), tagged with the machine's ownership tags. Run by
   * `provision` inside the readiness wait, once the machine exists. Idempotent: a retry finds
   * what an earlier call made by its tags, and never takes an unattached one it did not make.
   * Returns the machine as it now is (its new address classified, with the reason).
   */
  makeReachable?(machine: ProvisionedMachine, ctx: ProviderContext): Promise<ProvisionedMachine>;
  /**
   * Releases what `makeReachable` made for the machine (found by its tags), confirming the
   * release by reading back. Run when the readiness wait fails or times out and before
   * `deleteMachine`. Nothing to release is not an error.
   */
  undoReachable?(machine: ProvisionedMachine, ctx: ProviderContext): Promise<void>;
  /** Every resource carrying this provider's ownership tags (machines, addresses, keys, groups): orphan detection. */
  listOwned?(ctx: ProviderContext): Promise<OwnedResource[]>;
  /** Deletes one resource `listOwned` returned (an orphan); one already gone is not an error. */
  deleteOwned?(resource: OwnedResource, ctx: ProviderContext): Promise<void>;
}

/**
 * What Formwork knows of a provider type without loading its driver: its settings' JSON
 * Schema (checked at apply; a UI can render a form from it) and how to load it. The
 * driver's SDK loads only in a process that calls `load`, and the bundle keeps it in a
 * chunk of its own.
 */
export interface ProviderDescriptor {
  type: string;
  summary: string;
  settingsSchema: Record<string, unknown>;
  /**
   * Its machines and shared resources live on the host that prepared it (lab's bridges,
   * metal's boot network): the first worker to prepare it records its host as the
   * provider's `affinity`, and only workers of that host run its work.
   */
  hostBound?: boolean;
  /**
   * The readiness timeout of its machines when the provider sets none (`settings.readinessTimeoutSeconds`):
   * bare-metal builds take far longer than a cloud's boot. Default: the provision role's `boot-wait-seconds` (900).
   */
  readinessTimeoutSeconds?: number;
  /** Its driver has `check`, which apply awaits (the driver is loaded for it); default false. */
  checksAtApply?: boolean;
  load(): Promise<ProviderDriver>;
}

/** The ownership tags for a node's machine. */
export function ownershipTags(providerName: string, nodeId: string, labels: Record<string, string> = {}): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) tags[`formwork.io/label/${k}`] = v;
  return { ...tags, [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: providerName, [TAG_NODE_ID]: nodeId };
}
