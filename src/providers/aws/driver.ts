/**
 * The `aws` provider driver: EC2 instances through the AWS SDK v3, with every capability of
 * the contract: the catalog (catalog.ts), the boot subnet and the public address path
 * decided before launch (network.ts), Elastic IPs made and released inside the readiness
 * wait (reachable.ts), the provider's key pair and security group and everything it owns
 * (shared.ts). Every call goes through the provider's call policy (client.ts).
 *
 * A create looks for the instance an earlier try made (by its ClientToken, a hash of the
 * idempotency token, among the provider's instances) before launching, and launches with
 * the same ClientToken, so a retry after a lost answer gets the same instance back from EC2
 * itself; everything is tagged at launch (TagSpecifications: instance and volume), never
 * after. A delete terminates, releases the node's Elastic IPs and is confirmed by reading back.
 *
 * @example
 *   const driver = await loadDriver('aws');
 *   const m = await driver.createMachine(spec, ctx); // { state: 'booting', addresses: [private], … }
 */
import { RunInstancesCommand, TerminateInstancesCommand, type Instance, type RunInstancesCommandOutput } from '@aws-sdk/client-ec2';
import { FormworkError } from '../../core/errors.js';
import { TAG_NODE_ID, type MachineSpec, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from '../provider.js';
import { confirmGone } from '../readiness.js';
import { bootChoice, listImages, listNetworks, listSizes, listZones } from './catalog.js';
import { ec2Call } from './client.js';
import { awsCode } from './errors.js';
import { consistency, describeAddresses, describeInstance, listInstances, noteLaunched, readMachine, toMachine } from './machines.js';
import { addressPath, checkAddressQuota, chooseSubnet } from './network.js';
import { makeReachable, releaseAddress, undoReachable } from './reachable.js';
import { check, deleteOwned, ensureKeyPair, ensureSecurityGroup, listOwned, prepare, teardown } from './shared.js';
import { clientToken, TAG_INTERNAL, tagFilters, tagSpecs, tagValue } from './tags.js';

/** How long a terminated instance is read back before its delete counts as stuck (tests set it lower). @example deleteConfirm.ms = 2000; // a unit test's */
export const deleteConfirm = { ms: 180_000 };

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

async function createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
  if (!spec.name.trim()) throw new FormworkError('PROVIDER_INVALID', 'a machine needs a name (its Name tag)', { nodeId: spec.nodeId });
  const token = clientToken(spec.idempotencyToken);
  const [existing] = await listInstances(ctx, [...tagFilters(ctx), { Name: 'client-token', Values: [token] }]);
  if (existing) return asMachine(ctx, existing);

  const choice = await bootChoice(spec, ctx);
  const { subnet, reason: subnetReason } = await chooseSubnet(ctx, spec.zone);
  const path = addressPath(ctx, subnet);
  if (path.path === 'none') ctx.log.warn(`provider ${ctx.providerName}: node ${spec.nodeId} gets no public address: ${path.reason}`);
  if (path.path === 'elastic-ip') await checkAddressQuota(ctx, spec.nodeId);
  const keyName = await ensureKeyPair(ctx);
  const groupId = await ensureSecurityGroup(ctx, subnet.VpcId!);
  const instanceTags: Record<string, string> = {
    Name: spec.name,
    ...spec.tags,
    [TAG_INTERNAL.size]: choice.size.normalized,
    [TAG_INTERNAL.image]: choice.image.normalized,
    [TAG_INTERNAL.loginUsers]: tagValue(choice.loginUsers.users.join(',')).replace(/,[^,]*…$/, ''),
    [TAG_INTERNAL.loginUsersReason]: choice.loginUsers.reason,
    [TAG_INTERNAL.subnet]: subnetReason,
    [TAG_INTERNAL.addressPath]: path.path,
    [TAG_INTERNAL.addressPathReason]: path.reason,
    [TAG_INTERNAL.securityGroup]: groupId,
  };
  let out: RunInstancesCommandOutput;
  try {
    // The ClientToken makes a repeat safe: EC2 answers it with the instance the first call made.
    out = await ec2Call<RunInstancesCommandOutput>(ctx, new RunInstancesCommand({
      ImageId: choice.image.nativeId,
      InstanceType: choice.size.nativeId as never,
      MinCount: 1,
      MaxCount: 1,
      KeyName: keyName,
      SubnetId: subnet.SubnetId,
      SecurityGroupIds: [groupId],
      ClientToken: token,
      TagSpecifications: [...tagSpecs(['instance'], instanceTags), ...tagSpecs(['volume'], { Name: spec.name, ...spec.tags })],
    }));
  } catch (e) {
    if (awsCode(e) !== 'IdempotentParameterMismatch') throw e;
    // The token's instance may exist and not be listed yet (EC2's lag), or have been launched with other parameters.
    const launched = await findByToken(ctx, token);
    if (launched) return asMachine(ctx, launched);
    throw new FormworkError('PROVIDER_ERROR', `provider ${ctx.providerName}: EC2 refused RunInstances for node ${spec.nodeId}: its idempotency token ${spec.idempotencyToken} (ClientToken ${token}) was used, within the last day, by a RunInstances with other parameters (image, size, subnet or key pair changed since), and no instance of this provider carries it yet; nothing was launched by this one. The next attempt looks for that instance again with the same token; EC2 accepts the token with other parameters once a day has passed since its first use`, { nodeId: spec.nodeId, clientToken: token, awsCode: 'IdempotentParameterMismatch' }, { retryable: true, cause: e });
  }
  const instance = out.Instances?.[0];
  if (!instance?.InstanceId) throw new FormworkError('PROVIDER_ERROR', `provider ${ctx.providerName}: RunInstances answered without an instance`, { nodeId: spec.nodeId });
  noteLaunched(ctx, instance.InstanceId);
  const m = await asMachine(ctx, instance);
  // The catalog's normalized names, as chosen, even when the instance was launched by an earlier try.
  return { ...m, size: { normalized: choice.size.normalized, native: instance.InstanceType ?? choice.size.nativeId }, image: { normalized: choice.image.normalized, native: instance.ImageId ?? choice.image.nativeId } };
}

/** How many times an instance is looked for by its ClientToken after EC2 said the token was used. */
const TOKEN_LOOKS = 5;

async function findByToken(ctx: ProviderContext, token: string): Promise<Instance | undefined> {
  for (let look = 1; ; look++) {
    const [found] = await listInstances(ctx, [...tagFilters(ctx), { Name: 'client-token', Values: [token] }]);
    if (found || look >= TOKEN_LOOKS) return found;
    await new Promise((r) => setTimeout(r, consistency.pollMs));
  }
}

/** An instance as a machine; a terminated one found by its token is reported as failed (its node takes a new token). */
async function asMachine(ctx: ProviderContext, i: Instance): Promise<ProvisionedMachine> {
  const m = await readMachine(ctx, i);
  if (m) return m;
  return { ...toMachine({ ...i, StateReason: { Code: 'Server.Terminated', Message: `the instance is ${i.State?.Name}: ${i.StateReason?.Message ?? 'terminated'}` } })!, state: 'error' };
}

async function getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
  const i = await describeInstance(ctx, nativeId);
  return i ? readMachine(ctx, i) : undefined;
}

async function listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
  const instances = await listInstances(ctx, [...tagFilters(ctx), { Name: 'instance-state-name', Values: [...LIVE_STATES, 'shutting-down', 'terminated'] }]);
  const eips = instances.some((i) => i.PublicIpAddress) ? await describeAddresses(ctx, tagFilters(ctx)) : [];
  return instances.map((i) => toMachine(i, { elasticIps: eips })).filter((m): m is ProvisionedMachine => !!m);
}

async function deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
  const instance = await describeInstance(ctx, nativeId);
  if (instance && instance.State?.Name !== 'terminated') {
    try {
      await ec2Call(ctx, new TerminateInstancesCommand({ InstanceIds: [nativeId] }));
    } catch (e) {
      if (awsCode(e) !== 'InvalidInstanceID.NotFound') throw e;
    }
  }
  // Termination disassociates an Elastic IP but keeps it: the node's are released too.
  const nodeId = instance?.Tags?.find((t) => t.Key === TAG_NODE_ID)?.Value;
  if (nodeId) for (const a of await describeAddresses(ctx, tagFilters(ctx, nodeId))) await releaseAddress(ctx, a);
  if (!instance) return;
  await confirmGone(`instance ${nativeId}`, nativeId, async () => {
    const i = await describeInstance(ctx, nativeId);
    return !i || i.State?.Name === 'terminated' ? undefined : String(i.State?.Name);
  }, deleteConfirm.ms);
}

/** The `aws` driver (see the file's comment). @example await awsDriver.createMachine(spec, ctx); */
export const awsDriver: ProviderDriver = {
  type: 'aws',
  check,
  prepare,
  createMachine,
  getMachine,
  listMachines,
  deleteMachine,
  teardown,
  listSizes,
  listImages,
  listZones,
  listNetworks,
  makeReachable,
  undoReachable,
  listOwned,
  deleteOwned: (resource, ctx) => deleteOwned(resource, ctx, (id) => deleteMachine(id, ctx)),
};
