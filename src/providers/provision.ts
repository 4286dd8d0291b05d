import { causeChain, FormworkError, toFormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { BuiltinContext, RunIO, RunJob, RunResult } from '../engine/types.js';
import type { Services } from '../context/services.js';
import { prepareProvider } from './lifecycle.js';
import { ownershipTags, TAG_NODE_ID, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from './provider.js';
import { loadDriver, providerContext, providerFailure, runLogger } from './registry.js';

/**
 * `provider.create` (role `provision`): asks the node's provider for its machine, or finds
 * the one already made for it — by its recorded id, else by its node-id tag, never by
 * name — and records addresses, size, image, zone and inventory. A machine still booting
 * is waited for; only one in `error` or `stopped` is deleted and made again.
 *
 * @example
 *   registerBuiltin('provider.create', provisionHandler);
 */

const DEFAULT_BOOT_WAIT_SECONDS = 900;
/** How often a booting machine is looked at (tests set it lower). */
export const bootPoll = { ms: 2_000 };

/** Counts the machines made for a node, so a replacement's idempotency token differs from the failed one's. */
const generationOf = (node: StoredObject) => Number(((node.inventory ?? {}) as Record<string, unknown>).machineGeneration ?? 0);

export async function provisionHandler(job: RunJob, io: RunIO, { services }: BuiltinContext): Promise<RunResult> {
  if (!job.node) throw new FormworkError('VALIDATION', `role ${job.role.name} must be bound to a node`, { role: job.role.name }, { retryable: false });
  if (!job.node.provider) throw new FormworkError('VALIDATION', `node ${job.node.name} names no provider`, { node: job.node.name }, { retryable: false });
  const provider = await services.store.objects('providers').get(job.node.provider as string);
  const driver = await loadDriver(provider.type).catch((e: unknown) => {
    throw providerFailure(e, `provider ${provider.name}: loading its driver`);
  });
  return provisionMachine(services, { node: job.node, provider, driver }, io, Number(job.inputs['boot-wait-seconds'] ?? DEFAULT_BOOT_WAIT_SECONDS));
}

/** The handler's work once the driver is loaded (tests drive it with the fake driver). */
export async function provisionMachine(
  services: Services,
  subject: { node: StoredObject; provider: StoredObject; driver: ProviderDriver },
  io: RunIO,
  bootWaitSeconds = DEFAULT_BOOT_WAIT_SECONDS,
): Promise<RunResult> {
  const { provider, driver } = subject;
  let node = subject.node;
  const log = runLogger(io.log);
  let machine: ProvisionedMachine | undefined;
  try {
    await prepareProvider(services, provider, log, driver);
    const ctx = await providerContext(services, provider, { log, signal: io.signal });
    machine = await findMachine(driver, node, ctx);
    if (machine && (machine.state === 'error' || machine.state === 'stopped')) {
      io.log(`machine ${machine.nativeId} is ${machine.state}: deleting it and creating another\n`);
      await driver.deleteMachine(machine.nativeId, ctx);
      const inventory = { ...((node.inventory as object) ?? {}), machineGeneration: generationOf(node) + 1 };
      node = await services.store.objects('nodes').update(node.id, { nativeId: null, inventory }, { actor: 'formwork' });
      machine = undefined;
    }
    if (machine) io.log(`machine ${machine.nativeId} already exists (${machine.state})\n`);
    machine ??= await driver.createMachine(
      {
        name: node.name,
        nodeId: node.id,
        idempotencyToken: `formwork-${node.id}-${generationOf(node)}`,
        tags: ownershipTags(provider.name, node.id, (node.labels as Record<string, string> | undefined) ?? {}),
        size: node.sizeNormalized as string | undefined,
        image: node.imageNormalized as string | undefined,
        labels: node.labels as Record<string, string> | undefined,
      },
      ctx,
    );
    if (machine.state === 'booting') machine = await waitWhileBooting(driver, machine, ctx, io, bootWaitSeconds);
  } catch (e) {
    const err = providerFailure(e, `provider ${provider.name}`);
    const cause = causeChain(err);
    if (cause) io.log(`provider error: ${err.message}; cause: ${cause}\n`);
    // The machine made so far is recorded, so the next attempt finds it by id.
    if (machine) Object.assign(err, { nodeUpdate: { nativeId: machine.nativeId } });
    throw err;
  }
  io.log(`machine ${machine.nativeId}: ${machine.addresses.map((a) => `${a.address} (${a.role})`).join(', ')}\n`);
  return {
    exitCode: 0,
    outputs: { 'native-id': machine.nativeId },
    nodeUpdate: {
      nativeId: machine.nativeId,
      state: 'provisioned',
      addresses: machine.addresses,
      sizeNormalized: machine.size?.normalized ?? node.sizeNormalized,
      sizeNative: machine.size?.native,
      imageNormalized: machine.image?.normalized ?? node.imageNormalized,
      imageNative: machine.image?.native,
      zone: machine.zone,
      ...(machine.hostKey && !node.hostKey ? { hostKey: machine.hostKey } : {}),
      inventory: { ...((node.inventory as object) ?? {}), ...(machine.inventory ?? {}), loginUsers: machine.loginUsers },
    },
  };
}

/** The node's machine: by its recorded id, else by the node-id tag a driver put on it. */
export async function findMachine(driver: ProviderDriver, node: StoredObject, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
  if (typeof node.nativeId === 'string' && node.nativeId) {
    const m = await driver.getMachine(node.nativeId, ctx);
    if (m) return m;
  }
  const tagged = (await driver.listMachines(ctx)).filter((m) => m.tags?.[TAG_NODE_ID] === node.id);
  return tagged.find((m) => m.state === 'running') ?? tagged.find((m) => m.state === 'booting') ?? tagged[0];
}

async function waitWhileBooting(driver: ProviderDriver, first: ProvisionedMachine, ctx: ProviderContext, io: RunIO, waitSeconds: number): Promise<ProvisionedMachine> {
  const deadline = Date.now() + waitSeconds * 1000;
  io.log(`machine ${first.nativeId} is booting: waiting up to ${waitSeconds} s\n`);
  let m: ProvisionedMachine | undefined = first;
  while (m && m.state === 'booting') {
    if (Date.now() > deadline) {
      throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} is still booting after ${waitSeconds} s; it is waited for again on the next attempt`, { nativeId: first.nativeId });
    }
    await new Promise((r) => setTimeout(r, bootPoll.ms));
    if (io.signal?.aborted) throw toFormworkError(io.signal.reason ?? new Error('aborted'));
    m = await driver.getMachine(first.nativeId, ctx);
  }
  if (!m) throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} disappeared while booting`, { nativeId: first.nativeId });
  if (m.state !== 'running') throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} went to ${m.state} while booting`, { nativeId: first.nativeId, state: m.state });
  return m;
}
