/**
 * Ownership tags as a Metal device carries them. Device tags are plain strings, so each tag
 * is written `key=value` (`formwork.io/node-id=n1`), and the idempotency token is one more
 * (`formwork.io/idempotency-token=…`): a retried create finds the device by it. The exact
 * tags and what a create decided also go in the device's `customdata` (a JSON object the API
 * keeps as given), which wins when read back. SSH keys take no tags here: the provider's one
 * key is known by its label.
 *
 * @example
 *   deviceTags({ 'formwork.io/node-id': 'n1' }, 'tok'); // ['formwork.io/node-id=n1', 'formwork.io/idempotency-token=tok']
 */
import { TAG_MANAGED_BY, TAG_PROVIDER, type ProviderCheckContext } from '../provider.js';
import type { MetalDevice } from './wire.js';

/** The tag (and customdata key) holding a device's idempotency token. */
export const TAG_TOKEN = 'formwork.io/idempotency-token';

/** The customdata key holding Formwork's record of a device. */
export const CUSTOMDATA_KEY = 'formwork';

/** What a create writes into `customdata.formwork`. */
export interface DeviceRecord {
  idempotencyToken: string;
  tags: Record<string, string>;
  size?: string;
  image?: string;
  loginUsers?: string[];
  loginUsersReason?: string;
}

/**
 * A device's tag strings for ownership tags and a token.
 *
 * @example
 *   deviceTags({ 'formwork.io/provider': 'm1' }); // ['formwork.io/provider=m1']
 */
export function deviceTags(tags: Record<string, string>, token?: string): string[] {
  return [...Object.entries(tags).map(([k, v]) => `${k}=${v}`), ...(token ? [`${TAG_TOKEN}=${token}`] : [])];
}

/**
 * The `key=value` tags of a list as a record (other tags are not ours and are left out).
 *
 * @example
 *   parseTags(['formwork.io/node-id=n1', 'web']); // { 'formwork.io/node-id': 'n1' }
 */
export function parseTags(tags: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) {
    const i = typeof t === 'string' ? t.indexOf('=') : -1;
    if (i > 0) out[t.slice(0, i)] = t.slice(i + 1);
  }
  return out;
}

/**
 * Formwork's record of a device from its customdata, when it has one.
 *
 * @example
 *   deviceRecord(device)?.idempotencyToken; // 'formwork-n1-0'
 */
export function deviceRecord(d: MetalDevice): DeviceRecord | undefined {
  const rec = d.customdata && typeof d.customdata === 'object' ? (d.customdata as Record<string, unknown>)[CUSTOMDATA_KEY] : undefined;
  if (!rec || typeof rec !== 'object') return undefined;
  const r = rec as Partial<DeviceRecord>;
  return typeof r.idempotencyToken === 'string' && r.tags && typeof r.tags === 'object' ? (r as DeviceRecord) : undefined;
}

/**
 * A device's ownership tags: its customdata record's when present (exact), else its `key=value` tags (without the token).
 *
 * @example
 *   ownershipTagsOf(device)['formwork.io/node-id']; // 'n1'
 */
export function ownershipTagsOf(d: MetalDevice): Record<string, string> {
  const rec = deviceRecord(d);
  if (rec) return { ...rec.tags };
  const { [TAG_TOKEN]: _token, ...tags } = parseTags(d.tags);
  return Object.fromEntries(Object.entries(tags).filter(([k]) => k.startsWith('formwork.io/')));
}

/**
 * A device's idempotency token (its record's, else its tag's).
 *
 * @example
 *   tokenOf(device); // 'formwork-n1-0'
 */
export function tokenOf(d: MetalDevice): string | undefined {
  return deviceRecord(d)?.idempotencyToken ?? parseTags(d.tags)[TAG_TOKEN];
}

/**
 * Whether a device is this provider's (managed by Formwork, its provider tag).
 *
 * @example
 *   devices.filter((d) => isOurs(d, ctx));
 */
export function isOurs(d: MetalDevice, ctx: Pick<ProviderCheckContext, 'providerName'>): boolean {
  const t = ownershipTagsOf(d);
  return t[TAG_MANAGED_BY] === 'formwork' && t[TAG_PROVIDER] === ctx.providerName;
}

/**
 * The label of the provider's project SSH key.
 *
 * @example
 *   keyLabel(ctx); // 'formwork-m1'
 */
export function keyLabel(ctx: Pick<ProviderCheckContext, 'providerName'>): string {
  return `formwork-${ctx.providerName}`;
}

/**
 * The tags of provider-wide resources (the SSH key as listOwned reports it): no node id, so never an orphan.
 *
 * @example
 *   providerTags(ctx); // { 'formwork.io/managed-by': 'formwork', 'formwork.io/provider': 'm1' }
 */
export function providerTags(ctx: Pick<ProviderCheckContext, 'providerName'>): Record<string, string> {
  return { [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName };
}
