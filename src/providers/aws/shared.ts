/**
 * The provider's own resources and its checks. `check` (at apply) and `prepare` refuse wrong
 * credentials, an unknown region, zone or subnet and a malformed endpoint, naming the
 * setting to fix; `prepare` imports the platform's key as the key pair `formwork-<provider>`
 * and makes the security group allowing TCP/22 (from `settings.sshSourceCidr`, default
 * 0.0.0.0/0) in the boot subnet's VPC, both tagged with the provider; `teardown` removes
 * both. `listOwned`/`deleteOwned` see everything carrying the provider's tags: instances,
 * Elastic IPs, the key pair and the group.
 *
 * @example
 *   await check(ctx); // PROVIDER_AUTH: provider aws1: EC2 DescribeAvailabilityZones refused the credentials (AuthFailure: …); fix the access key in the provider's credentialsSecret …
 */
import {
  AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, DeleteKeyPairCommand, DeleteSecurityGroupCommand, DescribeAvailabilityZonesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, ImportKeyPairCommand,
  type CreateSecurityGroupCommandOutput, type DescribeAvailabilityZonesCommandOutput, type DescribeKeyPairsCommandOutput, type DescribeSecurityGroupsCommandOutput, type KeyPairInfo, type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { FormworkError } from '../../core/errors.js';
import { type OwnedResource, type ProviderCheckContext, type ProviderContext } from '../provider.js';
import { clientSettings, ec2Call } from './client.js';
import { awsCode } from './errors.js';
import { describeAddresses, endedByFailure, listInstances } from './machines.js';
import { chooseSubnet } from './network.js';
import { releaseAddress } from './reachable.js';
import { keyPairName, providerTags, securityGroupName, tagFilters, tagRecord, tagSpecs } from './tags.js';

/** The driver's `check` (run at apply; creates nothing). @example await check({ providerName: 'aws1', settings: { region: 'us-east-1' }, credentials, log }); */
export async function check(ctx: ProviderCheckContext): Promise<void> {
  clientSettings(ctx);
  let zones: DescribeAvailabilityZonesCommandOutput;
  try {
    zones = await ec2Call<DescribeAvailabilityZonesCommandOutput>(ctx, new DescribeAvailabilityZonesCommand({}));
  } catch (e) {
    // AWS's own endpoint of an unknown region does not resolve.
    const cause = e instanceof Error ? (e.cause as { code?: string } | undefined) : undefined;
    if (ctx.settings.endpoint === undefined && (cause?.code === 'ENOTFOUND' || /ENOTFOUND/.test(String((e as Error).message)))) {
      throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: AWS has no EC2 endpoint for region "${String(ctx.settings.region)}"; fix settings.region`, { provider: ctx.providerName, setting: 'region' }, { cause: e });
    }
    throw e;
  }
  const names = (zones.AvailabilityZones ?? []).map((z) => z.ZoneName).filter((z): z is string => !!z);
  const zone = ctx.settings.zone;
  if (typeof zone === 'string' && !names.includes(zone)) {
    throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: region ${String(ctx.settings.region)} has no zone "${zone}"; its zones are: ${names.join(', ')}; fix settings.zone`, { provider: ctx.providerName, setting: 'zone' });
  }
  await chooseSubnet(ctx, undefined);
}

/** Checks the provider, imports its key pair and makes its security group (idempotent). @example await prepare(ctx); // key pair formwork-aws1, group formwork-aws1 */
export async function prepare(ctx: ProviderContext): Promise<void> {
  await check(ctx);
  const { subnet } = await chooseSubnet(ctx, undefined);
  await ensureKeyPair(ctx);
  await ensureSecurityGroup(ctx, subnet.VpcId!);
}

const keyBody = (k: string) => k.trim().split(/\s+/).slice(0, 2).join(' ');

async function findKeyPair(ctx: ProviderContext): Promise<KeyPairInfo | undefined> {
  try {
    const out = await ec2Call<DescribeKeyPairsCommandOutput>(ctx, new DescribeKeyPairsCommand({ KeyNames: [keyPairName(ctx)], IncludePublicKey: true }));
    return out.KeyPairs?.[0];
  } catch (e) {
    if (awsCode(e) === 'InvalidKeyPair.NotFound') return undefined;
    throw e;
  }
}

/**
 * The provider's key pair: the platform's public key imported once, replaced when the platform's key changed.
 *
 * @example
 *   await ensureKeyPair(ctx); // 'formwork-aws1'
 */
export async function ensureKeyPair(ctx: ProviderContext): Promise<string> {
  const name = keyPairName(ctx);
  const existing = await findKeyPair(ctx);
  if (existing && (!existing.PublicKey || keyBody(existing.PublicKey) === keyBody(ctx.publicKey))) return name;
  if (existing) {
    ctx.log.warn(`key pair ${name} holds another key than the platform's: replacing it`);
    await ec2Call(ctx, new DeleteKeyPairCommand({ KeyName: name }));
  }
  try {
    await ec2Call(ctx, new ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(ctx.publicKey.trim()), TagSpecifications: tagSpecs(['key-pair'], providerTags(ctx)) }));
  } catch (e) {
    // Imported meanwhile by another worker, or by a try whose answer was lost (so a repeat is safe).
    if (awsCode(e) !== 'InvalidKeyPair.Duplicate') throw e;
  }
  return name;
}

/**
 * The provider's security group in `vpcId` allowing TCP/22 (found by name, made and tagged
 * once). The rule is ensured whichever way the group was had: a lost CreateSecurityGroup
 * answer (its retry meets InvalidGroup.Duplicate) or a crash before the authorize leaves a
 * group without it.
 *
 * @example
 *   await ensureSecurityGroup(ctx, 'vpc-0abc'); // 'sg-0123…'
 */
export async function ensureSecurityGroup(ctx: ProviderContext, vpcId: string): Promise<string> {
  const name = securityGroupName(ctx);
  const cidr = typeof ctx.settings.sshSourceCidr === 'string' ? ctx.settings.sshSourceCidr : '0.0.0.0/0';
  const find = async () => (await ec2Call<DescribeSecurityGroupsCommandOutput>(ctx, new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }, { Name: 'vpc-id', Values: [vpcId] }] }))).SecurityGroups?.find((g) => g.GroupName === name && (!g.VpcId || g.VpcId === vpcId));
  let group = await find();
  let made = false;
  if (!group) {
    try {
      group = { GroupId: (await ec2Call<CreateSecurityGroupCommandOutput>(ctx, new CreateSecurityGroupCommand({ GroupName: name, Description: `Formwork provider ${ctx.providerName}: SSH from the control plane`, VpcId: vpcId, TagSpecifications: tagSpecs(['security-group'], providerTags(ctx)) }))).GroupId! };
      made = true;
    } catch (e) {
      if (awsCode(e) !== 'InvalidGroup.Duplicate') throw e;
      group = await find();
      if (!group) throw e;
    }
  }
  const groupId = group.GroupId!;
  if (allowsSsh(group, cidr)) return groupId;
  try {
    await ec2Call(ctx, new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr, Description: 'SSH from the Formwork control plane' }] }] }));
  } catch (e) {
    if (awsCode(e) !== 'InvalidPermission.Duplicate') {
      // Only a group this call made is removed: nothing half-made is left, and a group in use is never deleted.
      if (made) await ec2Call(ctx, new DeleteSecurityGroupCommand({ GroupId: groupId })).catch(() => undefined);
      throw e;
    }
  }
  return groupId;
}

/** Whether the group already lets TCP/22 in from `cidr`. */
const allowsSsh = (g: SecurityGroup, cidr: string) =>
  (g.IpPermissions ?? []).some((p) => p.IpProtocol === 'tcp' && p.FromPort === 22 && p.ToPort === 22 && (p.IpRanges ?? []).some((r) => r.CidrIp === cidr));

/** Removes the provider's security groups and key pair (idempotent). @example await teardown(ctx); */
export async function teardown(ctx: ProviderContext): Promise<void> {
  const groups = (await ec2Call<DescribeSecurityGroupsCommandOutput>(ctx, new DescribeSecurityGroupsCommand({ Filters: tagFilters(ctx) }))).SecurityGroups ?? [];
  for (const g of groups) await deleteGroup(ctx, g.GroupId!);
  await ec2Call(ctx, new DeleteKeyPairCommand({ KeyName: keyPairName(ctx) }));
}

async function deleteGroup(ctx: ProviderContext, groupId: string): Promise<void> {
  try {
    await ec2Call(ctx, new DeleteSecurityGroupCommand({ GroupId: groupId }));
  } catch (e) {
    if (awsCode(e) !== 'InvalidGroup.NotFound') throw e;
  }
}

/** Every resource carrying the provider's tags. @example (await listOwned(ctx)).map((r) => r.kind); // ['machine', 'address', 'key-pair', 'security-group'] */
export async function listOwned(ctx: ProviderContext): Promise<OwnedResource[]> {
  const filters = tagFilters(ctx);
  const [instances, addresses, keys, groups] = await Promise.all([
    listInstances(ctx, [...filters, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }]),
    describeAddresses(ctx, filters),
    ec2Call<DescribeKeyPairsCommandOutput>(ctx, new DescribeKeyPairsCommand({ Filters: filters })),
    ec2Call<DescribeSecurityGroupsCommandOutput>(ctx, new DescribeSecurityGroupsCommand({ Filters: filters })),
  ]);
  return [
    ...instances.filter((i) => i.State?.Name !== 'shutting-down' || endedByFailure(i)).map((i) => ({ kind: 'machine', id: i.InstanceId!, name: tagRecord(i.Tags).Name, tags: tagRecord(i.Tags) })),
    ...addresses.map((a) => ({ kind: 'address', id: a.AllocationId!, name: a.PublicIp, tags: tagRecord(a.Tags) })),
    ...(keys.KeyPairs ?? []).map((k) => ({ kind: 'key-pair', id: k.KeyPairId ?? k.KeyName!, name: k.KeyName, tags: tagRecord(k.Tags) })),
    ...(groups.SecurityGroups ?? []).map((g) => ({ kind: 'security-group', id: g.GroupId!, name: g.GroupName, tags: tagRecord(g.Tags) })),
  ];
}

/** Deletes one resource `listOwned` returned; gone already is no error. Machines go through `deleteMachine`. @example await deleteOwned({ kind: 'address', id: 'eipalloc-0abc', tags }, ctx, (id) => deleteMachine(id, ctx)); */
export async function deleteOwned(resource: OwnedResource, ctx: ProviderContext, deleteMachine: (id: string) => Promise<void>): Promise<void> {
  switch (resource.kind) {
    case 'machine':
      return deleteMachine(resource.id);
    case 'address': {
      const [a] = (await describeAddresses(ctx, [{ Name: 'allocation-id', Values: [resource.id] }])).filter((x) => x.AllocationId === resource.id);
      if (a) await releaseAddress(ctx, a);
      return;
    }
    case 'key-pair':
      await ec2Call(ctx, new DeleteKeyPairCommand(resource.id.startsWith('key-') ? { KeyPairId: resource.id } : { KeyName: resource.id }));
      return;
    case 'security-group':
      return deleteGroup(ctx, resource.id);
    default:
      throw new FormworkError('PROVIDER_INVALID', `aws provider ${ctx.providerName} owns no resources of kind "${resource.kind}"`, { kind: resource.kind });
  }
}

