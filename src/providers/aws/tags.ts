/**
 * Ownership tags as EC2 carries them (`Tags: [{Key, Value}]`, at most 50 per resource, keys
 * of 128 characters, values of 256), the filters that find a provider's or a node's
 * resources (`tag:K`), the names of the provider-wide key pair and security group, and the
 * RunInstances ClientToken made from the idempotency token (at most 64 characters).
 *
 * @example
 *   ec2Tags({ 'formwork.io/node-id': 'n1' }); // [{ Key: 'formwork.io/node-id', Value: 'n1' }]
 *   clientToken('formwork-n1-0'); // 'fw-3f2a…' (64 characters at most)
 */
import type { Filter, Tag, TagSpecification, ResourceType } from '@aws-sdk/client-ec2';
import { createHash } from 'node:crypto';
import { TAG_MANAGED_BY, TAG_NODE_ID, TAG_PROVIDER, type ProviderCheckContext } from '../provider.js';

/** What a create decided, kept in the instance's tags (not reported as tags). @example tags[TAG_INTERNAL.addressPath]; // 'elastic-ip' */
export const TAG_INTERNAL = {
  size: 'formwork.io/size',
  image: 'formwork.io/image',
  loginUsers: 'formwork.io/login-users',
  loginUsersReason: 'formwork.io/login-users-reason',
  subnet: 'formwork.io/subnet-reason',
  addressPath: 'formwork.io/public-address',
  addressPathReason: 'formwork.io/public-address-reason',
  securityGroup: 'formwork.io/security-group',
} as const;

const INTERNAL = new Set<string>(Object.values(TAG_INTERNAL));

/**
 * A tag value as EC2 keeps it: at most 256 characters.
 *
 * @example
 *   tagValue('x'.repeat(300)).length; // 256
 */
export function tagValue(v: string): string {
  return v.length > 256 ? `${v.slice(0, 255)}…` : v;
}

/**
 * Tags as EC2 takes them.
 *
 * @example
 *   ec2Tags({ a: '1' }); // [{ Key: 'a', Value: '1' }]
 */
export function ec2Tags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, v]) => ({ Key, Value: tagValue(v) }));
}

/**
 * TagSpecifications tagging each of `types` at creation.
 *
 * @example
 *   tagSpecs(['instance', 'volume'], tags);
 */
export function tagSpecs(types: ResourceType[], tags: Record<string, string>): TagSpecification[] {
  return types.map((ResourceType) => ({ ResourceType, Tags: ec2Tags(tags) }));
}

/**
 * EC2's tags as a record; Formwork's own bookkeeping (TAG_INTERNAL) left out unless `all`.
 *
 * @example
 *   tagRecord([{ Key: 'formwork.io/node-id', Value: 'n1' }]); // { 'formwork.io/node-id': 'n1' }
 */
export function tagRecord(tags: Tag[] | undefined, all = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key && (all || !INTERNAL.has(t.Key))) out[t.Key] = t.Value ?? '';
  return out;
}

/**
 * The tags every provider-wide resource carries (key pair, security group): no node id, so never an orphan.
 *
 * @example
 *   providerTags(ctx); // { 'formwork.io/managed-by': 'formwork', 'formwork.io/provider': 'aws1' }
 */
export function providerTags(ctx: Pick<ProviderCheckContext, 'providerName'>): Record<string, string> {
  return { [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName };
}

/**
 * The ownership tags of a machine (those its Elastic IP carries too).
 *
 * @example
 *   ownershipOf({ 'formwork.io/node-id': 'n1', 'formwork.io/label/app': 'x', other: 'y' }); // the formwork.io/ ones
 */
export function ownershipOf(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => k.startsWith('formwork.io/') && !INTERNAL.has(k)));
}

/**
 * The filters for this provider's resources, or one node's.
 *
 * @example
 *   tagFilters(ctx, 'n1'); // [{ Name: 'tag:formwork.io/managed-by', Values: ['formwork'] }, …]
 */
export function tagFilters(ctx: Pick<ProviderCheckContext, 'providerName'>, nodeId?: string): Filter[] {
  const tags: Record<string, string> = { ...providerTags(ctx), ...(nodeId ? { [TAG_NODE_ID]: nodeId } : {}) };
  return Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
}

/**
 * The provider's key pair name.
 *
 * @example
 *   keyPairName(ctx); // 'formwork-aws1'
 */
export function keyPairName(ctx: Pick<ProviderCheckContext, 'providerName'>): string {
  return `formwork-${ctx.providerName}`;
}

/**
 * The provider's security group name: settings.securityGroupName, else `formwork-<provider>`.
 *
 * @example
 *   securityGroupName(ctx); // 'formwork-aws1'
 */
export function securityGroupName(ctx: Pick<ProviderCheckContext, 'providerName' | 'settings'>): string {
  return typeof ctx.settings.securityGroupName === 'string' ? ctx.settings.securityGroupName : `formwork-${ctx.providerName}`;
}

/**
 * The ClientToken of a create: a hash of the idempotency token (EC2 takes 64 characters at most).
 *
 * @example
 *   clientToken('formwork-n1-0').length; // 64
 */
export function clientToken(idempotencyToken: string): string {
  return `fw-${createHash('sha256').update(idempotencyToken).digest('hex').slice(0, 61)}`;
}
