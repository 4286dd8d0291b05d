/**
 * Making an instance reachable from the control plane, inside the readiness wait
 * (../readiness.ts), and undoing it. The path was decided before launch (network.ts) and
 * written on the instance: `subnet` (its public IP from launch) and `none` (its private
 * address) need nothing made; `elastic-ip` takes the Elastic IP tagged for the node (a retry
 * after a lost answer finds it: AllocateAddress is not idempotent) or allocates one, tagged
 * at allocation, and associates it once the instance runs (EC2 refuses a pending instance:
 * IncorrectInstanceState, retried by the wait). A used-up address quota is PROVIDER_QUOTA
 * naming the fix. Either way the SSH host key is read from the console output when
 * cloud-init printed it.
 *
 * `undoReachable` disassociates and releases the Elastic IPs tagged for the node, confirmed
 * by reading back.
 *
 * @example
 *   const reachable = await makeReachable(machine, ctx); // a public address: the Elastic IP, with its reason
 *   await undoReachable(machine, ctx);
 */
import { AllocateAddressCommand, AssociateAddressCommand, DisassociateAddressCommand, GetConsoleOutputCommand, ReleaseAddressCommand, type Address, type AllocateAddressCommandOutput, type GetConsoleOutputCommandOutput } from '@aws-sdk/client-ec2';
import type { NodeDecision } from '../../core/decisions.js';
import { FormworkError, toFormworkError } from '../../core/errors.js';
import { TAG_NODE_ID, type ProviderContext, type ProvisionedMachine } from '../provider.js';
import { bootPoll } from '../readiness.js';
import { ec2Call } from './client.js';
import { awsCode } from './errors.js';
import { describeAddresses, describeInstance, toMachine } from './machines.js';
import { ownershipOf, TAG_INTERNAL, tagFilters, tagRecord, tagSpecs } from './tags.js';

/** How long a release is read back before it counts as lingering (tests set it lower). @example releaseConfirm.ms = 2000; // a unit test's */
export const releaseConfirm = { ms: 60_000 };

/**
 * The SSH host key fingerprint cloud-init printed on the console (the ED25519 one when
 * there are several), or undefined.
 *
 * @example
 *   hostKeyFromConsole('-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:abc root@h (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----'); // 'SHA256:abc'
 */
export function hostKeyFromConsole(text: string): string | undefined {
  const block = /-----BEGIN SSH HOST KEY FINGERPRINTS-----([\s\S]*?)-----END SSH HOST KEY FINGERPRINTS-----/.exec(text)?.[1];
  if (!block) return undefined;
  const keys = [...block.matchAll(/^\s*(?:ec2:\s*)?\d+\s+(SHA256:[A-Za-z0-9+/=]+)\s.*\((\w+)\)\s*$/gm)].map((m) => ({ fp: m[1], type: m[2] }));
  return (keys.find((k) => k.type === 'ED25519') ?? keys[0])?.fp;
}

async function consoleHostKey(ctx: ProviderContext, id: string): Promise<string | undefined> {
  let out: GetConsoleOutputCommandOutput;
  try {
    out = await ec2Call<GetConsoleOutputCommandOutput>(ctx, new GetConsoleOutputCommand({ InstanceId: id }));
  } catch (e) {
    // The host key is optional (trusted on first use without it): a policy without ec2:GetConsoleOutput must not fail the node.
    ctx.log.warn(`provider ${ctx.providerName}: no SSH host key from the console of instance ${id} (${toFormworkError(e).message}); it is trusted on first use`, { nativeId: id });
    return undefined;
  }
  return out.Output ? hostKeyFromConsole(Buffer.from(out.Output, 'base64').toString('utf8')) : undefined;
}

/** The machine given the path the control plane reaches it by (see the file's comment). @example const ready = await makeReachable(machine, ctx); // the Elastic IP among ready.addresses */
export async function makeReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<ProvisionedMachine> {
  const instance = await describeInstance(ctx, machine.nativeId);
  if (!instance) throw new FormworkError('MACHINE_FAILED', `instance ${machine.nativeId} is gone`, { nativeId: machine.nativeId });
  const tags = tagRecord(instance.Tags, true);
  const path = tags[TAG_INTERNAL.addressPath] ?? 'elastic-ip';
  const hostKey = instance.State?.Name === 'running' ? await consoleHostKey(ctx, machine.nativeId) : undefined;
  const nodeId = tags[TAG_NODE_ID] ?? machine.tags[TAG_NODE_ID];
  const ours = nodeId ? await describeAddresses(ctx, tagFilters(ctx, nodeId)) : [];
  const as = (i: typeof instance, d: NodeDecision, eips: Address[]) => {
    const m = toMachine(i, { elasticIps: eips, hostKey })!;
    return { ...m, decisions: [...(m.decisions ?? []), d] };
  };
  if (path !== 'elastic-ip') {
    if (path === 'subnet' && !instance.PublicIpAddress) throw new FormworkError('MACHINE_FAILED', `instance ${machine.nativeId} has no public IP although its subnet ${instance.SubnetId} was to map one`, { nativeId: machine.nativeId }, { retryable: true });
    return as(instance, { subject: 'elastic-ip', chosen: 'none', reason: path === 'subnet' ? `not needed: ${instance.PublicIpAddress} was mapped at launch by subnet ${instance.SubnetId}` : 'not made: settings.publicAddress is none' }, ours);
  }
  const attached = ours.find((a) => a.InstanceId === machine.nativeId);
  if (attached) return as(instance, { subject: 'elastic-ip', chosen: attached.PublicIp!, reason: `Elastic IP ${attached.AllocationId}, made earlier for this node, associated with the instance` }, ours);
  if (instance.State?.Name !== 'running') throw new FormworkError('PROVIDER_ERROR', `instance ${machine.nativeId} is ${instance.State?.Name}: an Elastic IP is associated once it runs`, { nativeId: machine.nativeId }, { retryable: true, nextDelayMs: bootPoll.ms });
  // One made for this node and left unattached (a lost answer, a failed association) is used; never someone else's.
  let eip = ours.find((a) => !a.InstanceId);
  let made = false;
  if (!eip) {
    const out = await ec2Call<AllocateAddressCommandOutput>(ctx, new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: tagSpecs(['elastic-ip'], ownershipOf(machine.tags)) }), { idempotent: false });
    eip = { AllocationId: out.AllocationId, PublicIp: out.PublicIp, Tags: [] };
    made = true;
  }
  let assoc: { AssociationId?: string };
  try {
    assoc = await ec2Call<{ AssociationId?: string }>(ctx, new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: machine.nativeId }));
  } catch (e) {
    // EC2's lag, or the instance gone: the readiness wait tries again, and its DescribeInstances tells which.
    if (awsCode(e) === 'InvalidInstanceID.NotFound') throw new FormworkError('PROVIDER_ERROR', toFormworkError(e).message, { nativeId: machine.nativeId, awsCode: 'InvalidInstanceID.NotFound' }, { retryable: true, nextDelayMs: bootPoll.ms, cause: e });
    throw e;
  }
  const after = { ...instance, PublicIpAddress: eip.PublicIp };
  const withEip: Address = { ...eip, InstanceId: machine.nativeId, AssociationId: assoc.AssociationId };
  return as(after, { subject: 'elastic-ip', chosen: eip.PublicIp!, reason: `${made ? 'allocated' : 'taken (made earlier for this node, unattached)'}: Elastic IP ${eip.AllocationId} associated with the instance once it ran, since ${tags[TAG_INTERNAL.addressPathReason] ?? 'the subnet maps no public IP'}` }, [withEip]);
}

/** Releases the Elastic IPs tagged for the machine's node, confirmed by reading back. @example await undoReachable(machine, ctx); */
export async function undoReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<void> {
  const nodeId = machine.tags[TAG_NODE_ID];
  if (!nodeId) return;
  for (const a of await describeAddresses(ctx, tagFilters(ctx, nodeId))) await releaseAddress(ctx, a);
}

/**
 * Disassociates (when associated) and releases one Elastic IP; confirmed by reading back.
 *
 * @example
 *   await releaseAddress(ctx, address);
 */
export async function releaseAddress(ctx: ProviderContext, a: Address): Promise<void> {
  if (a.AssociationId) {
    try {
      await ec2Call(ctx, new DisassociateAddressCommand({ AssociationId: a.AssociationId }));
    } catch (e) {
      if (awsCode(e) !== 'InvalidAssociationID.NotFound') throw e;
    }
  }
  try {
    await ec2Call(ctx, new ReleaseAddressCommand({ AllocationId: a.AllocationId }));
  } catch (e) {
    if (awsCode(e) === 'InvalidAllocationID.NotFound') return;
    throw e;
  }
  const deadline = Date.now() + releaseConfirm.ms;
  while ((await describeAddresses(ctx, [{ Name: 'allocation-id', Values: [a.AllocationId!] }])).some((x) => x.AllocationId === a.AllocationId)) {
    if (Date.now() > deadline) throw new FormworkError('PROVIDER_ERROR', `Elastic IP ${a.PublicIp} (${a.AllocationId}) still exists ${releaseConfirm.ms / 1000} s after its release was accepted`, { allocationId: a.AllocationId }, { retryable: true });
    await new Promise((r) => setTimeout(r, bootPoll.ms));
  }
}
