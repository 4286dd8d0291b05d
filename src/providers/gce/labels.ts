/**
 * Ownership tags as Compute Engine can carry them. GCE labels allow only lower-case letters,
 * digits, `_` and `-`, at most 63 characters, so the tags become labels of an encoded form
 * (`formwork.io/node-id` → `formwork-node-id`, values lower-cased with other characters as
 * `_`), used to filter lists (`(labels.formwork-provider = "gce1")`); the exact tags are kept in a
 * metadata item (`formwork-tags`, JSON) and read back from it. The idempotency token is a
 * label of its hash, and the insert's `requestId` a UUID derived from it, so a retried insert
 * is the same insert.
 *
 * @example
 *   gceLabels({ 'formwork.io/provider': 'GCE 1' }); // { 'formwork-provider': 'gce_1' }
 *   requestIdFor('formwork-n1-0'); // '3f1c…-…' (the same for the same token)
 */
import { createHash } from 'node:crypto';
import { TAG_MANAGED_BY, TAG_NODE_ID, TAG_PROVIDER, type ProviderCheckContext } from '../provider.js';

/** Metadata keys the driver writes beside `ssh-keys`. */
export const META = {
  tags: 'formwork-tags',
  token: 'formwork-token',
  size: 'formwork-size',
  image: 'formwork-image',
  imageNative: 'formwork-image-native',
  loginUsers: 'formwork-login-users',
  decisions: 'formwork-decisions',
} as const;

/** The label holding the hash of the idempotency token. */
export const TOKEN_LABEL = 'formwork-token';
/** The network tag the provider's firewall rule targets. */
export const SSH_NETWORK_TAG = 'formwork-ssh';

/**
 * A label key or value as GCE accepts it: lower case, `[a-z0-9_-]`, at most 63 characters.
 *
 * @example
 *   labelValue('Web.1'); // 'web_1'
 */
export function labelValue(v: string): string {
  return v.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 63);
}

/**
 * The label key of a tag key: `formwork.io/x` → `formwork-x`, `formwork.io/label/app` → `formwork-label-app`.
 *
 * @example
 *   labelKey('formwork.io/managed-by'); // 'formwork-managed-by'
 */
export function labelKey(k: string): string {
  const key = labelValue(k.replace(/^formwork\.io\//, 'formwork-').replace(/\//g, '-'));
  return /^[a-z]/.test(key) ? key : `k${key}`.slice(0, 63);
}

/**
 * The labels for tags (see the file's comment).
 *
 * @example
 *   gceLabels({ 'formwork.io/node-id': 'n1' }); // { 'formwork-node-id': 'n1' }
 */
export function gceLabels(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [labelKey(k), labelValue(v)]));
}

/**
 * The labels a list of this provider's resources (and one node's, or one token's) asks for.
 *
 * @example
 *   filterLabels(ctx, { 'formwork-node-id': 'n1' }); // { 'formwork-managed-by': 'formwork', 'formwork-provider': 'gce1', 'formwork-node-id': 'n1' }
 */
export function filterLabels(ctx: Pick<ProviderCheckContext, 'providerName'>, extra: Record<string, string> = {}): Record<string, string> {
  return { [labelKey(TAG_MANAGED_BY)]: 'formwork', [labelKey(TAG_PROVIDER)]: labelValue(ctx.providerName), ...extra };
}

/**
 * The list filter for `filterLabels`, in the form Compute documents for several terms: each
 * a parenthesised expression with a quoted value, ANDed by juxtaposition.
 *
 * @example
 *   labelFilter(ctx); // '(labels.formwork-managed-by = "formwork") (labels.formwork-provider = "gce1")'
 */
export function labelFilter(ctx: Pick<ProviderCheckContext, 'providerName'>, extra: Record<string, string> = {}): string {
  return Object.entries(filterLabels(ctx, extra)).map(([k, v]) => `(labels.${k} = "${v}")`).join(' ');
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The label value of an idempotency token (its hash: tokens may hold any character).
 *
 * @example
 *   tokenLabel('formwork-n1-0').length; // 40
 */
export function tokenLabel(token: string): string {
  return sha(`token:${token}`).slice(0, 40);
}

/**
 * The insert's `requestId`: a UUID derived from the token, so a retried insert is one insert.
 *
 * @example
 *   /^[0-9a-f-]{36}$/.test(requestIdFor('t')); // true
 */
export function requestIdFor(token: string, purpose = 'insert'): string {
  const h = sha(`${purpose}:${token}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The instance name for a node: the node's name made valid, and a hash of the token, so two
 * nodes of one name never clash and a retried create names the same instance.
 *
 * @example
 *   instanceName('Web_1', 'formwork-n1-0'); // 'web-1-a1b2c3d4'
 */
export function instanceName(name: string, token: string): string {
  let base = name.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(base)) base = `fw-${base}`;
  return `${base.slice(0, 54).replace(/-+$/, '')}-${sha(`name:${token}`).slice(0, 8)}`;
}

/**
 * The name of the provider's firewall rule (firewalls carry no labels: the name is the mark).
 *
 * @example
 *   firewallName(ctx); // 'formwork-gce1-ssh'
 */
export function firewallName(ctx: Pick<ProviderCheckContext, 'providerName'>): string {
  const p = ctx.providerName.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40).replace(/-+$/, '');
  return `formwork-${p}-ssh`;
}

/**
 * The tags every provider-wide resource carries (the firewall rule): no node id, never an orphan.
 *
 * @example
 *   providerTags(ctx); // { 'formwork.io/managed-by': 'formwork', 'formwork.io/provider': 'gce1' }
 */
export function providerTags(ctx: Pick<ProviderCheckContext, 'providerName'>): Record<string, string> {
  return { [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName };
}

/**
 * The ownership tags of a machine's tags (managed-by, provider, node id).
 *
 * @example
 *   ownership({ ...tags, 'formwork.io/label/app': 'x' }); // without the label
 */
export function ownership(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => k === TAG_MANAGED_BY || k === TAG_PROVIDER || k === TAG_NODE_ID));
}
