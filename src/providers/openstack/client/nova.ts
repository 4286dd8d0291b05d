/**
 * Nova: servers (create, get, list by metadata, delete), flavors and keypairs.
 *
 * Servers are found by their metadata, never by name (a shared project holds other
 * people's servers): Nova cannot filter on metadata for non-admins, so the list is read in
 * pages and filtered here. Nova's tags would filter server-side, but they may not contain
 * `/` or `,`, which Formwork's ownership tags do. Metadata keys may not contain `/` either
 * (a real Nova answers 400): each key is stored as `novaMetadataKey` spells it, and the
 * filters of `listServers` and `hasMetadata` spell the wanted keys the same way.
 *
 * @example
 *   const nova = new NovaApi(session);
 *   const { id } = await nova.createServer({ name: 'web-1', imageRef, flavorRef, networks: [{ uuid: netId }], keyName: 'fw-web-1', metadata: { 'formwork.io/node-id': 'n1' } });
 */
import { FormworkError } from '../../../core/errors.js';
import { deleted, orUndefined } from './not-found.js';
import { listAll } from './pagination.js';
import type { OpenStackSession } from './session.js';

/** A Nova server, as `GET /servers/{id}` answers (the fields Formwork reads; the rest are kept). */
export interface NovaServer {
  id: string;
  name: string;
  status: string;
  metadata: Record<string, string>;
  addresses: Record<string, { addr: string; version: number; 'OS-EXT-IPS:type'?: string; 'OS-EXT-IPS-MAC:mac_addr'?: string }[]>;
  /** `{id}` before microversion 2.47, the flavor itself (with `original_name`) from it on. */
  flavor: { id?: string; original_name?: string; vcpus?: number; ram?: number; disk?: number };
  /** `""` for a server booted from a volume. */
  image: { id: string } | string;
  key_name?: string | null;
  fault?: { code: number; message: string; details?: string };
  [field: string]: unknown;
}

/** A flavor with its details. */
export interface NovaFlavor {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  'OS-FLV-EXT-DATA:ephemeral'?: number;
  'os-flavor-access:is_public'?: boolean;
  extra_specs?: Record<string, string>;
  [field: string]: unknown;
}

/** A keypair (`private_key` only when Nova generated it, before 2.92). */
export interface NovaKeypair {
  name: string;
  public_key: string;
  fingerprint: string;
  type?: string;
  private_key?: string;
}

/** What to boot: image (or none for boot-from-volume with `blockDeviceMapping`), flavor, networks, key, user data, metadata. */
export interface ServerCreate {
  name: string;
  imageRef?: string;
  flavorRef: string;
  /** Always named: Nova refuses a boot when several networks are visible and none is chosen. */
  networks: ({ uuid: string; fixed_ip?: string } | { port: string })[];
  keyName?: string;
  /** Plain text: it is base64-encoded here, as Nova wants. */
  userData?: string;
  /** Keys as Formwork writes them (`formwork.io/node-id`): stored as `novaMetadataKey` spells them. */
  metadata?: Record<string, string>;
  securityGroups?: string[];
  availabilityZone?: string;
  blockDeviceMapping?: Record<string, unknown>[];
  configDrive?: boolean;
}

/**
 * The characters Nova accepts in a server metadata key (its API schema: `^[a-zA-Z0-9-_:. ]{1,255}$`).
 *
 * @example
 *   NOVA_METADATA_KEY_CHARS.test('formwork.io:node-id'); // true
 */
export const NOVA_METADATA_KEY_CHARS = /^[a-zA-Z0-9\-_:. ]+$/;

/**
 * The key Nova stores for `key`: each character it refuses (the `/` of `formwork.io/node-id`)
 * becomes `:`, so Formwork's ownership keys can be written as everywhere else.
 *
 * @example
 *   novaMetadataKey('formwork.io/node-id'); // 'formwork.io:node-id'
 */
export function novaMetadataKey(key: string): string {
  return key.replace(/[^a-zA-Z0-9\-_:. ]/g, ':');
}

/**
 * Server metadata as Nova accepts it: keys spelled by `novaMetadataKey`; a key or value
 * Nova would refuse for its length (empty key, over 255 characters) is refused here,
 * naming it, before anything is sent.
 *
 * @example
 *   novaMetadata({ 'formwork.io/node-id': 'n1' }); // { 'formwork.io:node-id': 'n1' }
 */
export function novaMetadata(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (key.length === 0 || key.length > 255) throw new FormworkError('PROVIDER_INVALID', `Nova metadata key "${key.slice(0, 40)}${key.length > 40 ? '…' : ''}" must be 1 to 255 characters long (it has ${key.length})`, { key });
    if (value.length > 255) throw new FormworkError('PROVIDER_INVALID', `Nova metadata value of "${key}" must be at most 255 characters long (it has ${value.length})`, { key });
    out[novaMetadataKey(key)] = value;
  }
  return out;
}

/**
 * `metadata` (as Nova answers it) contains every key/value of `wanted` (keys spelled as `novaMetadataKey` does).
 *
 * @example
 *   hasMetadata({ 'formwork.io:node-id': 'n1', b: '2' }, { 'formwork.io/node-id': 'n1' }); // true
 */
export function hasMetadata(metadata: Record<string, string> | undefined, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => metadata?.[novaMetadataKey(k)] === v);
}

/**
 * Nova's API (see the file's comment).
 *
 * @example
 *   const flavors = await new NovaApi(session).listFlavors();
 */
export class NovaApi {
  constructor(private readonly session: OpenStackSession) {}

  /**
   * Boots a server; answers its id (and `adminPass` when Nova made one).
   *
   * @example
   *   await nova.createServer({ name: 'db-1', imageRef, flavorRef, networks: [{ uuid }], metadata: tags });
   */
  async createServer(spec: ServerCreate): Promise<{ id: string; adminPass?: string }> {
    const server: Record<string, unknown> = { name: spec.name, flavorRef: spec.flavorRef, networks: spec.networks };
    if (spec.imageRef !== undefined) server.imageRef = spec.imageRef;
    if (spec.keyName) server.key_name = spec.keyName;
    if (spec.userData !== undefined) server.user_data = Buffer.from(spec.userData, 'utf8').toString('base64');
    if (spec.metadata) server.metadata = novaMetadata(spec.metadata);
    if (spec.securityGroups) server.security_groups = spec.securityGroups.map((name) => ({ name }));
    if (spec.availabilityZone) server.availability_zone = spec.availabilityZone;
    if (spec.blockDeviceMapping) server.block_device_mapping_v2 = spec.blockDeviceMapping;
    if (spec.configDrive !== undefined) server.config_drive = spec.configDrive;
    const res = await this.session.request('compute', 'POST', '/servers', { body: { server } });
    const created = (res.body as { server: { id: string; adminPass?: string } }).server;
    return { id: created.id, ...(created.adminPass ? { adminPass: created.adminPass } : {}) };
  }

  /**
   * The server, or `undefined` when it is gone.
   *
   * @example
   *   (await nova.getServer(id))?.status; // 'ACTIVE'
   */
  async getServer(id: string): Promise<NovaServer | undefined> {
    const res = await orUndefined(this.session.request('compute', 'GET', `/servers/${encodeURIComponent(id)}`));
    return res && (res.body as { server: NovaServer }).server;
  }

  /**
   * The servers (with details) whose metadata holds every key/value of `metadata` (keys as given to `createServer`).
   *
   * @example
   *   await nova.listServers({ 'formwork.io/provider': 'os1' });
   */
  async listServers(metadata: Record<string, string> = {}): Promise<NovaServer[]> {
    const all = await listAll<NovaServer>(this.session, 'compute', '/servers/detail', 'servers');
    return all.filter((s) => hasMetadata(s.metadata, metadata));
  }

  /**
   * Deletes a server: `false` when it was already gone. Nova deletes asynchronously: read it
   * back until `getServer` answers `undefined` to know it is gone.
   *
   * @example
   *   await nova.deleteServer(id);
   */
  deleteServer(id: string): Promise<boolean> {
    return deleted(this.session.request('compute', 'DELETE', `/servers/${encodeURIComponent(id)}`));
  }

  /**
   * Every flavor with its details.
   *
   * @example
   *   (await nova.listFlavors()).filter((f) => f.vcpus >= 2 && f.ram >= 4096);
   */
  listFlavors(): Promise<NovaFlavor[]> {
    return listAll<NovaFlavor>(this.session, 'compute', '/flavors/detail', 'flavors', { query: { is_public: 'None' } });
  }

  /**
   * Imports a public key as a keypair.
   *
   * @example
   *   await nova.createKeypair('formwork-n1', 'ssh-ed25519 AAAA…');
   */
  async createKeypair(name: string, publicKey: string): Promise<NovaKeypair> {
    const res = await this.session.request('compute', 'POST', '/os-keypairs', { body: { keypair: { name, public_key: publicKey } } });
    return (res.body as { keypair: NovaKeypair }).keypair;
  }

  /**
   * The keypair, or `undefined`.
   *
   * @example
   *   await nova.getKeypair('formwork-n1');
   */
  async getKeypair(name: string): Promise<NovaKeypair | undefined> {
    const res = await orUndefined(this.session.request('compute', 'GET', `/os-keypairs/${encodeURIComponent(name)}`));
    return res && (res.body as { keypair: NovaKeypair }).keypair;
  }

  /**
   * Every keypair of the user (Nova wraps each one as `{keypair}`).
   *
   * @example
   *   (await nova.listKeypairs()).map((k) => k.name);
   */
  async listKeypairs(): Promise<NovaKeypair[]> {
    const wrapped = await listAll<{ keypair: NovaKeypair }>(this.session, 'compute', '/os-keypairs', 'keypairs');
    return wrapped.map((w) => w.keypair);
  }

  /**
   * Deletes a keypair: `false` when it was already gone.
   *
   * @example
   *   await nova.deleteKeypair('formwork-n1');
   */
  deleteKeypair(name: string): Promise<boolean> {
    return deleted(this.session.request('compute', 'DELETE', `/os-keypairs/${encodeURIComponent(name)}`));
  }
}
