/**
 * Ownership tags as each OpenStack service can carry them. Neutron resources (ports, floating
 * IPs, security groups) take string tags, written `key=value`; Nova servers take metadata,
 * whose keys may not hold `/` (client/nova.ts spells `formwork.io/node-id` as
 * `formwork.io:node-id`), read back here to the keys Formwork wrote; Nova keypairs take
 * neither, so the provider's one keypair is known by its name (`keypairName`).
 *
 * @example
 *   neutronTags({ 'formwork.io/node-id': 'n1' }); // ['formwork.io/node-id=n1']
 *   tagsFromNeutron(['formwork.io/node-id=n1', 'other']); // { 'formwork.io/node-id': 'n1' }
 */
import { TAG_MANAGED_BY, TAG_NODE_ID, TAG_PROVIDER, type ProviderContext } from '../provider.js';

/** The metadata key holding a server's idempotency token (a retried create finds the server by it). */
export const TAG_TOKEN = 'formwork.io/idempotency-token';
/** Marks a floating IP taken over under `settings.reuseFloatingIps`: released by detaching it, never by deleting it. */
export const TAG_REUSED = 'formwork.io/reused';

// Neutron refuses tags over 255 characters (60 on old clouds) and splits tag filters at commas.
const NEUTRON_TAG_MAX = 60;

/**
 * The Neutron tags for ownership tags: `key=value` each, leaving out those Neutron could not hold or filter on.
 *
 * @example
 *   neutronTags({ 'formwork.io/provider': 'os1' }); // ['formwork.io/provider=os1']
 */
export function neutronTags(tags: Record<string, string>): string[] {
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).filter((t) => t.length <= NEUTRON_TAG_MAX && !t.includes(','));
}

/**
 * The `key=value` tags of a Neutron resource as a record (tags of other forms are not ours and are left out).
 *
 * @example
 *   tagsFromNeutron(['formwork.io/managed-by=formwork']); // { 'formwork.io/managed-by': 'formwork' }
 */
export function tagsFromNeutron(tags: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) {
    const i = t.indexOf('=');
    if (i > 0) out[t.slice(0, i)] = t.slice(i + 1);
  }
  return out;
}

/**
 * Formwork's keys of a server's metadata, spelled back as they were written (`formwork.io:label:app` → `formwork.io/label/app`).
 *
 * @example
 *   tagsFromNova({ 'formwork.io:node-id': 'n1', owner: 'x' }); // { 'formwork.io/node-id': 'n1' }
 */
export function tagsFromNova(metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (!k.startsWith('formwork.io:')) continue;
    const label = /^formwork\.io:label:(.+)$/.exec(k);
    out[label ? `formwork.io/label/${label[1]}` : k.replace(/^formwork\.io:/, 'formwork.io/')] = v;
  }
  return out;
}

/**
 * The tags every provider-wide resource carries (the security group, the keypair as listed): no node id, so never an orphan.
 *
 * @example
 *   providerTags(ctx); // { 'formwork.io/managed-by': 'formwork', 'formwork.io/provider': 'os1' }
 */
export function providerTags(ctx: ProviderContext): Record<string, string> {
  return { [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName };
}

/**
 * The Neutron `tags` filter for this provider's resources, or one node's.
 *
 * @example
 *   tagFilter(ctx, 'n1'); // 'formwork.io/managed-by=formwork,formwork.io/provider=os1,formwork.io/node-id=n1'
 */
export function tagFilter(ctx: ProviderContext, nodeId?: string): string {
  return neutronTags({ ...providerTags(ctx), ...(nodeId ? { [TAG_NODE_ID]: nodeId } : {}) }).join(',');
}

/**
 * The name of the provider's keypair (Nova keypairs carry no tags: the name is the mark).
 *
 * @example
 *   keypairName(ctx); // 'formwork-os1'
 */
export function keypairName(ctx: ProviderContext): string {
  return `formwork-${ctx.providerName}`;
}

/**
 * The name of the provider's security group (found by its tags, named for people).
 *
 * @example
 *   securityGroupName(ctx); // 'formwork-os1-ssh'
 */
export function securityGroupName(ctx: ProviderContext): string {
  return `formwork-${ctx.providerName}-ssh`;
}
