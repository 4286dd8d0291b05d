import { controlAddress } from '../core/addresses.js';
import { mergeDecisions, type NodeDecision } from '../core/decisions.js';
import { causeChain, FormworkError, toFormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { BuiltinContext, RunIO, RunJob, RunResult } from '../engine/types.js';
import type { Services } from '../context/services.js';
import { resolveCatalog } from './catalog/index.js';
import { prepareProvider } from './lifecycle.js';
import { ownershipTags, TAG_NODE_ID, type MachineSpec, type ProviderContext, type ProviderDriver, type ProvisionedMachine } from './provider.js';
import { awaitReadiness, readinessExpired, readinessSeconds, releaseMachine } from './readiness.js';
import { loadDriver, providerContext, providerFailure, readinessDefault, runLogger } from './registry.js';

export { bootPoll } from './readiness.js';

/**
 * `provider.create` (role `provision`): asks the node's provider for its machine, or finds
 * the one already made for it — by its recorded id, else by its node-id tag, never by
 * name — and records addresses (with the reason for each role), size, image, zone,
 * inventory and the decisions taken for it (node `decisions`). Before a create, the catalog
 * maps the node's size and image to what the provider lists. A machine still booting is
 * waited for and then made reachable (readiness.ts: released again if the wait fails); only
 * one in `error` or `stopped` is released, deleted and made again.
 *
 * @example
 *   registerBuiltin('provider.create', provisionHandler);
 */

const DEFAULT_BOOT_WAIT_SECONDS = 900;

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
  let decisions: NodeDecision[] = [];
  /**
   * The readiness timeout is how long the operator lets a machine take: once it runs out the
   * machine is given up (released and deleted, nothing left behind) and the next attempt makes
   * another. When the delete fails, the machine stays recorded and is found again.
   */
  const givenUp = async (m: ProvisionedMachine): Promise<boolean> => {
    try {
      await releaseMachine(driver, m, await providerContext(services, provider, { log, signal: io.signal }));
      io.log(`machine ${m.nativeId} deleted: it was not ready within the readiness timeout; the next attempt makes another\n`);
      return true;
    } catch (e) {
      io.log(`machine ${m.nativeId} was not ready within the readiness timeout, and deleting it failed (${toFormworkError(e).message}); the next attempt finds it again\n`);
      return false;
    }
  };
  try {
    await prepareProvider(services, provider, log, driver);
    const ctx = await providerContext(services, provider, { log, signal: io.signal });
    machine = await findMachine(driver, node, ctx);
    if (machine && (machine.state === 'error' || machine.state === 'stopped')) {
      io.log(`machine ${machine.nativeId} is ${machine.state}${machine.stateReason ? ` (${machine.stateReason})` : ''}: deleting it and creating another\n`);
      await releaseMachine(driver, machine, ctx);
      const inventory = { ...((node.inventory as object) ?? {}), machineGeneration: generationOf(node) + 1 };
      node = await services.store.objects('nodes').update(node.id, { nativeId: null, inventory }, { actor: 'formwork' });
      machine = undefined;
    }
    if (machine) io.log(`machine ${machine.nativeId} already exists (${machine.state})\n`);
    if (!machine) {
      const spec = machineSpec(provider, node);
      const catalog = await resolveCatalog(driver, spec, ctx, provider.type as string);
      for (const d of catalog.decisions) io.log(`${d.subject}: ${d.chosen} (${d.reason})\n`);
      decisions = catalog.decisions;
      machine = await driver.createMachine({ ...spec, ...(Object.keys(catalog.chosen).length ? { chosen: catalog.chosen } : {}) }, ctx);
    }
    machine = await awaitReadiness(driver, machine, ctx, { waitSeconds: readinessSeconds(ctx, readinessDefault(String(provider.type)) ?? bootWaitSeconds), log: io.log, signal: io.signal });
  } catch (e) {
    const err = providerFailure(e, `provider ${provider.name}`);
    const cause = causeChain(err);
    if (cause) io.log(`provider error: ${err.message}; cause: ${cause}\n`);
    const kept = decisions.length ? { decisions: mergeDecisions(node.decisions, decisions) } : {};
    if (machine && readinessExpired(err) && (await givenUp(machine))) {
      Object.assign(err, { nodeUpdate: { nativeId: null, inventory: { ...((node.inventory as object) ?? {}), machineGeneration: generationOf(node) + 1 }, ...kept } });
    } else if (machine) {
      // The machine made so far is recorded, so the next attempt finds it by id.
      Object.assign(err, { nodeUpdate: { nativeId: machine.nativeId, ...kept } });
    }
    throw err;
  }
  io.log(`machine ${machine.nativeId}: ${machine.addresses.map((a) => `${a.address} (${a.role}${a.reason ? `: ${a.reason}` : ''})`).join(', ')}\n`);
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
      decisions: mergeDecisions(node.decisions, [...decisions, ...(machine.decisions ?? []), ...addressDecision(machine)]),
    },
  };
}

/** The create request for a node's machine, as every driver receives it. */
function machineSpec(provider: StoredObject, node: StoredObject): MachineSpec {
  const labels = (node.labels as Record<string, string> | undefined) ?? {};
  return {
    name: node.name,
    nodeId: node.id,
    idempotencyToken: `formwork-${node.id}-${generationOf(node)}`,
    tags: ownershipTags(provider.name, node.id, labels),
    size: node.sizeNormalized as string | undefined,
    image: node.imageNormalized as string | undefined,
    ...(typeof node.zone === 'string' && node.zone ? { zone: node.zone } : {}),
    labels: node.labels as Record<string, string> | undefined,
  };
}

/** The control address and why it is the one: what every later step connects to. */
function addressDecision(machine: ProvisionedMachine): NodeDecision[] {
  const chosen = controlAddress(machine.addresses);
  const a = machine.addresses.find((x) => x.address === chosen);
  if (!a) return [];
  return [{ subject: 'address', chosen: a.address, reason: `the control address: ${a.role} (public, then admin, then private)${a.reason ? `, ${a.role} because ${a.reason}` : ''}` }];
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
