/**
 * Where an instance boots and how the control plane will reach it, decided before launch:
 * the subnet (`settings.subnetId`, else the default subnet of the zone) and the public
 * address path (`settings.publicAddress`):
 * - `auto` (default): the subnet's own public IP when it maps one at launch
 *   (MapPublicIpOnLaunch), else an Elastic IP associated once the instance runs;
 * - `elastic-ip`: always an Elastic IP; `subnet`: the subnet's (refused when it maps none);
 * - `none`: the private address only (the control plane must sit in, or be routed to, the VPC).
 * The decision and its reason are written on the instance (tags) and recorded on the node.
 *
 * @example
 *   const { subnet, reason } = await chooseSubnet(ctx, 'us-east-1a');
 *   addressPath(ctx, subnet); // { path: 'elastic-ip', reason: 'subnet subnet-… maps no public IP (MapPublicIpOnLaunch=false): …' }
 */
import { DescribeAccountAttributesCommand, DescribeAddressesCommand, DescribeAvailabilityZonesCommand, DescribeSubnetsCommand, type DescribeAccountAttributesCommandOutput, type DescribeAddressesCommandOutput, type DescribeAvailabilityZonesCommandOutput, type DescribeSubnetsCommandOutput, type Address, type Subnet } from '@aws-sdk/client-ec2';
import { FormworkError, toFormworkError } from '../../core/errors.js';
import { TAG_NODE_ID, type ProviderCheckContext } from '../provider.js';
import { ec2Call } from './client.js';
import { awsCode, QUOTA_FIX } from './errors.js';

/** A public address path. @example const path: AddressPath = 'elastic-ip'; */
export type AddressPath = 'subnet' | 'elastic-ip' | 'none';

type Ctx = Pick<ProviderCheckContext, 'providerName' | 'settings' | 'credentials' | 'signal'>;

/**
 * The subnet to boot in and why.
 *
 * @example
 *   (await chooseSubnet(ctx, undefined)).reason; // 'the default subnet of zone us-east-1a (DefaultForAz), the first available zone'
 */
export async function chooseSubnet(ctx: Ctx, zone: string | undefined): Promise<{ subnet: Subnet; reason: string }> {
  const id = ctx.settings.subnetId;
  if (typeof id === 'string') {
    let subnets: Subnet[] = [];
    try {
      subnets = (await ec2Call<DescribeSubnetsCommandOutput>(ctx, new DescribeSubnetsCommand({ SubnetIds: [id] }))).Subnets ?? [];
    } catch (e) {
      if (!/^InvalidSubnetID\./.test(awsCode(e) ?? '')) throw e;
    }
    const subnet = subnets.find((s) => s.SubnetId === id);
    if (!subnet) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: subnet ${id} does not exist in region ${String(ctx.settings.region)}; fix settings.subnetId`, { provider: ctx.providerName, setting: 'subnetId' });
    if (zone && subnet.AvailabilityZone !== zone) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.subnetId ${id} is in zone ${subnet.AvailabilityZone}, not in the zone asked for (${zone}); drop the zone or name a subnet of it`, { provider: ctx.providerName, setting: 'subnetId' });
    return { subnet, reason: `settings.subnetId (zone ${subnet.AvailabilityZone})` };
  }
  let z = zone ?? (typeof ctx.settings.zone === 'string' ? ctx.settings.zone : undefined);
  const zoneReason = zone ? 'the zone asked for' : z ? 'settings.zone' : 'the first available zone';
  if (!z) {
    const zones = (await ec2Call<DescribeAvailabilityZonesCommandOutput>(ctx, new DescribeAvailabilityZonesCommand({}))).AvailabilityZones ?? [];
    z = zones.filter((x) => x.State === 'available' && x.ZoneName).map((x) => x.ZoneName!).sort()[0];
    if (!z) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: region ${String(ctx.settings.region)} has no available zone; fix settings.region`, { provider: ctx.providerName, setting: 'region' });
  }
  const subnets = (await ec2Call<DescribeSubnetsCommandOutput>(ctx, new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: [z] }, { Name: 'default-for-az', Values: ['true'] }] }))).Subnets ?? [];
  const subnet = subnets.find((s) => s.DefaultForAz && s.AvailabilityZone === z) ?? subnets[0];
  if (!subnet) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: zone ${z} has no default subnet (the account has no default VPC there); name a subnet in settings.subnetId`, { provider: ctx.providerName, setting: 'subnetId', zone: z });
  return { subnet, reason: `the default subnet of zone ${z} (DefaultForAz), ${zoneReason}` };
}

/**
 * The public address path for an instance in `subnet`, and why (see the file's comment).
 *
 * @example
 *   addressPath({ ...ctx, settings: { publicAddress: 'none' } }, subnet).path; // 'none'
 */
export function addressPath(ctx: Ctx, subnet: Subnet): { path: AddressPath; reason: string } {
  const asked = typeof ctx.settings.publicAddress === 'string' ? ctx.settings.publicAddress : 'auto';
  const maps = subnet.MapPublicIpOnLaunch === true;
  const field = `subnet ${subnet.SubnetId} ${maps ? 'maps' : 'maps no'} public IP${maps ? 's' : ''} (MapPublicIpOnLaunch=${maps})`;
  switch (asked) {
    case 'none':
      return { path: 'none', reason: `settings.publicAddress is none: no public path; the control plane reaches the private address, so it must sit in VPC ${subnet.VpcId} or be routed to it (${field})` };
    case 'elastic-ip':
      return { path: 'elastic-ip', reason: `settings.publicAddress is elastic-ip: an Elastic IP is associated once the instance runs (${field})` };
    case 'subnet':
      if (!maps) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.publicAddress is subnet, but ${field}; choose settings.publicAddress auto or elastic-ip, or a subnet that maps public IPs (settings.subnetId)`, { provider: ctx.providerName, setting: 'publicAddress' });
      return { path: 'subnet', reason: `settings.publicAddress is subnet: ${field}` };
    default:
      return maps ? { path: 'subnet', reason: `${field}: its public IP is the path` } : { path: 'elastic-ip', reason: `${field}: an Elastic IP is associated once the instance runs` };
  }
}

/**
 * Refuses, before launch, a node whose path is an Elastic IP when the account already holds
 * as many as its quota (DescribeAccountAttributes `vpc-max-elastic-ips`) and none is the
 * node's own (made by an earlier try). Advisory: AllocateAddress still enforces the quota,
 * so a check that cannot be made (a policy without the call) lets the launch go on.
 *
 * @example
 *   await checkAddressQuota(ctx, 'n1'); // PROVIDER_QUOTA: … holds 5 Elastic IPs of 5 …
 */
export async function checkAddressQuota(ctx: Ctx & Pick<ProviderCheckContext, 'log'>, nodeId: string): Promise<void> {
  let max: number;
  let held: Address[];
  try {
    const attrs = await ec2Call<DescribeAccountAttributesCommandOutput>(ctx, new DescribeAccountAttributesCommand({}));
    max = Number(attrs.AccountAttributes?.find((a) => a.AttributeName === 'vpc-max-elastic-ips')?.AttributeValues?.[0]?.AttributeValue);
    // EC2-Classic addresses (domain standard) count against another quota.
    held = ((await ec2Call<DescribeAddressesCommandOutput>(ctx, new DescribeAddressesCommand({}))).Addresses ?? []).filter((a) => a.Domain !== 'standard');
  } catch (e) {
    ctx.log.warn(`provider ${ctx.providerName}: the Elastic IP quota could not be checked before launching node ${nodeId} (${toFormworkError(e).message}); AllocateAddress will tell`, { nodeId });
    return;
  }
  if (!Number.isFinite(max) || held.length < max) return;
  if (held.some((a) => a.Tags?.some((t) => t.Key === TAG_NODE_ID && t.Value === nodeId))) return;
  throw new FormworkError('PROVIDER_QUOTA', `provider ${ctx.providerName}: node ${nodeId} needs an Elastic IP (its subnet maps no public IP, or settings.publicAddress is elastic-ip), but the account already holds ${held.length} of its quota of ${max} (DescribeAccountAttributes vpc-max-elastic-ips); nothing was launched. ${QUOTA_FIX.AddressLimitExceeded}`, { provider: ctx.providerName, nodeId, awsCode: 'AddressLimitExceeded', elasticIps: held.length, quota: max });
}
