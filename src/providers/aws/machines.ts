/**
 * Instances as machines: EC2's states mapped to the contract's, addresses classified with
 * the API field that decided each, what a create decided read back from the instance's
 * tags; and reading instances through EC2's eventual consistency (an instance just launched
 * is unknown to DescribeInstances for a moment: looked at again within a bound, never taken
 * for gone) and its paging (`NextToken`).
 *
 * States: pending → booting; running → running; stopping, stopped → stopped; shutting-down
 * and terminated → gone after a termination by a user (Formwork's delete), else → error,
 * keeping the reason: a failed launch (`Server.*`, `Client.VolumeLimitExceeded`,
 * `Client.InvalidSnapshot.NotFound`, `Client.InstanceInitiatedShutdown`…) is a machine
 * `provision` deletes and replaces with a new token, never one to look for again.
 *
 * @example
 *   const m = toMachine(instance, { elasticIps }); // { nativeId: 'i-…', state: 'booting', addresses: [...] }
 */
import { DescribeAddressesCommand, DescribeInstancesCommand, type Address, type DescribeAddressesCommandOutput, type DescribeInstancesCommandOutput, type Filter, type Instance } from '@aws-sdk/client-ec2';
import type { NodeAddress } from '../../core/addresses.js';
import type { NodeDecision } from '../../core/decisions.js';
import { FormworkError } from '../../core/errors.js';
import { TAG_NODE_ID, type MachineState, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { ec2Call } from './client.js';
import { awsCode } from './errors.js';
import { TAG_INTERNAL, tagRecord } from './tags.js';

/**
 * How long an instance id this process launched may be unknown to DescribeInstances, and how
 * often it is looked at again (tests set them lower).
 *
 * @example
 *   consistency.windowMs = 3000; // a unit test's
 */
export const consistency = { windowMs: 60_000, pollMs: 1000 };

/** Per provider and endpoint, the ids this process launched, and when: an InvalidInstanceID.NotFound for them within the window is EC2's lag. */
const launchedBy = new Map<string, Map<string, number>>();

const launchedFor = (ctx: ProviderContext) => {
  const key = `${ctx.providerName} ${String(ctx.settings.endpoint ?? ctx.settings.region)}`;
  let m = launchedBy.get(key);
  if (!m) launchedBy.set(key, (m = new Map()));
  return m;
};

/**
 * Marks an instance id as just launched by the provider.
 *
 * @example
 *   noteLaunched(ctx, 'i-0abc');
 */
export function noteLaunched(ctx: ProviderContext, id: string): void {
  const launched = launchedFor(ctx);
  launched.set(id, Date.now());
  for (const [k, at] of launched) if (Date.now() - at > consistency.windowMs) launched.delete(k);
}

/** @internal: tests start from no launched ids. @example afterEach(() => forgetLaunched()); */
export function forgetLaunched(): void {
  launchedBy.clear();
}

/**
 * The contract state of an instance, or undefined when it is gone.
 *
 * @example
 *   machineState({ State: { Name: 'pending' } }); // 'booting'
 */
export function machineState(i: Instance): MachineState | undefined {
  switch (i.State?.Name) {
    case 'pending': return 'booting';
    case 'running': return 'running';
    case 'stopping':
    case 'stopped': return 'stopped';
    case 'shutting-down':
    case 'terminated': return endedByFailure(i) ? 'error' : undefined;
    default: return 'error';
  }
}

/**
 * Whether a Formwork instance is ending, or ended, by anything other than a user's
 * termination (Formwork's delete): EC2's documented launch failures and shutdowns.
 *
 * @example
 *   endedByFailure({ State: { Name: 'terminated' }, StateReason: { Code: 'Client.VolumeLimitExceeded' }, Tags }); // true
 */
export function endedByFailure(i: Instance): boolean {
  const code = i.StateReason?.Code;
  return !!code && code !== 'Client.UserInitiatedShutdown' && !!tagRecord(i.Tags)[TAG_NODE_ID];
}

/** What classifying an instance's addresses may know besides the instance. @example toMachine(instance, { elasticIps: [], hostKey: 'SHA256:…' }); */
export interface AddressEvidence {
  /** The Elastic IPs associated with it (DescribeAddresses). */
  elasticIps?: Address[];
  /** The SSH host key fingerprint its console output printed. */
  hostKey?: string;
}

/**
 * An instance's addresses, each with the field that decided its role: `PrivateIpAddress`
 * (private: the subnet's), `PublicIpAddress` (public: an associated Elastic IP, or one the
 * subnet mapped at launch).
 *
 * @example
 *   classify(instance, []); // [{ address: '10.0.1.5', role: 'private', reason: 'PrivateIpAddress of the instance in subnet subnet-…' }]
 */
export function classify(i: Instance, elasticIps: Address[] | undefined): NodeAddress[] {
  const out: NodeAddress[] = [];
  if (i.PrivateIpAddress) out.push({ address: i.PrivateIpAddress, family: 4, role: 'private', network: i.SubnetId, reason: `PrivateIpAddress of the instance in subnet ${i.SubnetId ?? '(unknown)'}` });
  if (i.PublicIpAddress) {
    const eip = elasticIps?.find((a) => a.PublicIp === i.PublicIpAddress);
    const mapped = tagRecord(i.Tags, true)[TAG_INTERNAL.addressPath] === 'subnet';
    const reason = eip
      ? `PublicIpAddress: Elastic IP ${eip.AllocationId} associated with the instance (${eip.AssociationId})`
      : mapped
        ? `PublicIpAddress mapped at launch: subnet ${i.SubnetId} maps public IPs (MapPublicIpOnLaunch)`
        : 'PublicIpAddress of the instance';
    out.push({ address: i.PublicIpAddress, family: 4, role: 'public', reason });
  }
  for (const ni of i.NetworkInterfaces ?? []) for (const v6 of ni.Ipv6Addresses ?? []) if (v6.Ipv6Address) out.push({ address: v6.Ipv6Address, family: 6, role: 'private', network: i.SubnetId, reason: `Ipv6Addresses of network interface ${ni.NetworkInterfaceId}` });
  return out;
}

/**
 * An instance as a machine (undefined when it is gone).
 *
 * @example
 *   toMachine(instance, {})?.state; // 'booting'
 */
export function toMachine(i: Instance, ev: AddressEvidence = {}): ProvisionedMachine | undefined {
  const state = machineState(i);
  if (!state || !i.InstanceId) return undefined;
  const all = tagRecord(i.Tags, true);
  const decisions: NodeDecision[] = [];
  if (i.SubnetId) decisions.push({ subject: 'network', chosen: i.SubnetId, reason: all[TAG_INTERNAL.subnet] ?? 'the subnet the instance is in' });
  if (all[TAG_INTERNAL.securityGroup]) decisions.push({ subject: 'security-group', chosen: all[TAG_INTERNAL.securityGroup], reason: "the provider's group allowing TCP/22 (made by prepare)" });
  if (all[TAG_INTERNAL.addressPath]) decisions.push({ subject: 'public-address', chosen: all[TAG_INTERNAL.addressPath], reason: all[TAG_INTERNAL.addressPathReason] ?? '' });
  if (all[TAG_INTERNAL.loginUsers]) decisions.push({ subject: 'login-users', chosen: all[TAG_INTERNAL.loginUsers], reason: all[TAG_INTERNAL.loginUsersReason] ?? '' });
  const inventory: Record<string, unknown> = { state: i.State?.Name };
  if (i.StateReason?.Message && state !== 'running') inventory.fault = i.StateReason.Message;
  if (i.PrivateDnsName) inventory.privateDnsName = i.PrivateDnsName;
  return {
    nativeId: i.InstanceId,
    name: tagRecord(i.Tags).Name ?? i.InstanceId,
    state,
    ...(inventory.fault && state !== 'booting' ? { stateReason: String(inventory.fault) } : {}),
    addresses: classify(i, ev.elasticIps),
    loginUsers: (all[TAG_INTERNAL.loginUsers] ?? 'admin').split(',').filter(Boolean),
    tags: tagRecord(i.Tags),
    ...(ev.hostKey ? { hostKey: ev.hostKey } : {}),
    ...(i.InstanceType ? { size: { normalized: all[TAG_INTERNAL.size] ?? i.InstanceType, native: i.InstanceType } } : {}),
    ...(i.ImageId ? { image: { normalized: all[TAG_INTERNAL.image] ?? i.ImageId, native: i.ImageId } } : {}),
    ...(i.Placement?.AvailabilityZone ? { zone: i.Placement.AvailabilityZone } : {}),
    inventory,
    decisions,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One instance by id, or undefined when EC2 does not have it; an id this process launched
 * is looked at again while EC2 may still be catching up.
 *
 * @example
 *   const i = await describeInstance(ctx, 'i-0abc');
 */
export async function describeInstance(ctx: ProviderContext, id: string): Promise<Instance | undefined> {
  for (;;) {
    try {
      const out = await ec2Call<DescribeInstancesCommandOutput>(ctx, new DescribeInstancesCommand({ InstanceIds: [id] }));
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
    } catch (e) {
      const code = awsCode(e);
      if (code === 'InvalidInstanceID.Malformed') return undefined;
      if (code !== 'InvalidInstanceID.NotFound') throw e;
      const at = launchedFor(ctx).get(id);
      if (at === undefined || Date.now() - at > consistency.windowMs) return undefined;
      await sleep(consistency.pollMs);
    }
  }
}

/** How many instances a DescribeInstances page holds (tests set it lower, 5 at least). @example instancePage.size = 5; // paging in a unit test */
export const instancePage = { size: 100 };

/**
 * Every instance matching `filters`, page by page.
 *
 * @example
 *   await listInstances(ctx, tagFilters(ctx));
 */
export async function listInstances(ctx: ProviderContext, filters: Filter[]): Promise<Instance[]> {
  const out: Instance[] = [];
  let token: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await ec2Call<DescribeInstancesCommandOutput>(ctx, new DescribeInstancesCommand({ Filters: filters, MaxResults: instancePage.size, ...(token ? { NextToken: token } : {}) }));
    for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
    token = page.NextToken;
    if (!token) return [...out, ...(await lagging(ctx, filters, out))];
  }
  throw new FormworkError('PROVIDER_ERROR', `provider ${ctx.providerName}: DescribeInstances gave more than 1000 pages`, { provider: ctx.providerName });
}

/**
 * Whether an instance passes the filters the driver uses (`tag:K`, `instance-state-name`, `client-token`).
 *
 * @example
 *   passes(instance, [{ Name: 'instance-state-name', Values: ['running'] }]); // true when it runs
 */
export function passes(i: Instance, filters: Filter[]): boolean {
  const tags = tagRecord(i.Tags, true);
  return filters.every((f) => {
    const values = f.Values ?? [];
    if (f.Name?.startsWith('tag:')) return values.includes(tags[f.Name.slice(4)]);
    if (f.Name === 'instance-state-name') return values.includes(i.State?.Name ?? '');
    if (f.Name === 'client-token') return values.includes(i.ClientToken ?? '');
    return true;
  });
}

/**
 * The instances this process launched moments ago that a filtered DescribeInstances does not
 * show yet (EC2's lag), read by id, when they pass the filters.
 */
async function lagging(ctx: ProviderContext, filters: Filter[], listed: Instance[]): Promise<Instance[]> {
  const seen = new Set(listed.map((i) => i.InstanceId));
  const out: Instance[] = [];
  for (const [id, at] of launchedFor(ctx)) {
    if (seen.has(id) || Date.now() - at > consistency.windowMs) continue;
    const i = await describeInstance(ctx, id);
    if (i && passes(i, filters)) out.push(i);
  }
  return out;
}

/**
 * The Elastic IPs matching `filters`.
 *
 * @example
 *   await describeAddresses(ctx, [{ Name: 'instance-id', Values: [id] }]);
 */
export async function describeAddresses(ctx: ProviderContext, filters: Filter[]): Promise<Address[]> {
  return (await ec2Call<DescribeAddressesCommandOutput>(ctx, new DescribeAddressesCommand({ Filters: filters }))).Addresses ?? [];
}

/**
 * An instance read as a machine, its Elastic IP looked up when it has a public address.
 *
 * @example
 *   await readMachine(ctx, instance);
 */
export async function readMachine(ctx: ProviderContext, i: Instance, ev: AddressEvidence = {}): Promise<ProvisionedMachine | undefined> {
  const elasticIps = ev.elasticIps ?? (i.PublicIpAddress ? await describeAddresses(ctx, [{ Name: 'instance-id', Values: [i.InstanceId!] }]) : []);
  return toMachine(i, { ...ev, elasticIps });
}
