import { FormworkError } from '../core/errors.js';
import { TAG_NODE_ID, TAG_PROVIDER, type OwnedResource, type ProviderDriver } from '../providers/provider.js';
import { releaseMachine } from '../providers/readiness.js';
import { loadDriver as registryDriver, providerContext, providerFailure } from '../providers/registry.js';
import type { Services } from '../context/services.js';

/**
 * Orphans: resources carrying a provider's ownership tags (`formwork.io/provider`,
 * `formwork.io/node-id`) whose node Formwork no longer stores — what a crash, a lost
 * response or a failed cleanup left behind in the cloud account. Resources without a node id
 * are the provider's own (a security group `prepare` made) and never orphans; those tagged
 * for another provider are that provider's business. A driver without `listOwned` is asked
 * for its machines only.
 *
 * @example
 *   const report = await findOrphans(services, 'aws-eu');
 *   report.orphans; // [{ kind: 'address', id: 'eipalloc-0a1b', tags: { 'formwork.io/node-id': 'n-gone', … } }]
 *   await deleteOrphans(services, 'aws-eu'); // { …report, deleted: ['address eipalloc-0a1b'] }
 */

/** What `findOrphans` found. @example { provider: 'aws-eu', source: 'listOwned', owned: 12, orphans: [] } */
export interface OrphanReport {
  provider: string;
  /** Where the resources came from: the driver's `listOwned`, or only its machines. */
  source: 'listOwned' | 'listMachines';
  /** How many resources carry this provider's tag. */
  owned: number;
  orphans: OwnedResource[];
  /** With `deleteOrphans`: what was deleted (`kind id`). */
  deleted?: string[];
}

/** How the driver is loaded. @example { loadDriver: async () => fakeDriver() } */
export interface OrphanOptions {
  /** The driver of a provider type (default: the registry's; tests pass a fake). */
  loadDriver?: (type: string) => Promise<ProviderDriver>;
}

/** Lists the provider's orphans (resources tagged with a node id no stored node has). */
export async function findOrphans(services: Services, providerName: string, opts: OrphanOptions = {}): Promise<OrphanReport> {
  const { driver, ctx } = await open(services, providerName, opts);
  return survey(services, providerName, driver, ctx);
}

/** Deletes the provider's orphans (a machine released first, as every deletion does) and reports what went. */
export async function deleteOrphans(services: Services, providerName: string, opts: OrphanOptions = {}): Promise<OrphanReport> {
  const { driver, ctx } = await open(services, providerName, opts);
  const report = await survey(services, providerName, driver, ctx);
  const deleted: string[] = [];
  // Machines first: releasing one also frees what was attached to it.
  const ordered = [...report.orphans].sort((a, b) => Number(b.kind === 'machine') - Number(a.kind === 'machine'));
  for (const r of ordered) {
    try {
      if (r.kind === 'machine' && !driver.deleteOwned) await releaseMachine(driver, r.id, ctx);
      else if (driver.deleteOwned) await driver.deleteOwned(r, ctx);
      else throw new FormworkError('PROVIDER_INVALID', `provider ${providerName} (type ${driver.type}) cannot delete a ${r.kind}: its driver has no deleteOwned`, { kind: r.kind, id: r.id }, { retryable: false });
    } catch (e) {
      throw providerFailure(e, `provider ${providerName}: deleting orphan ${r.kind} ${r.id} (deleted so far: ${deleted.join(', ') || 'none'})`);
    }
    deleted.push(`${r.kind} ${r.id}`);
  }
  return { ...report, deleted };
}

async function open(services: Services, providerName: string, opts: OrphanOptions) {
  const provider = await services.store.objects('providers').get(providerName);
  const driver = await (opts.loadDriver ?? registryDriver)(provider.type as string).catch((e: unknown) => {
    throw providerFailure(e, `provider ${provider.name}: loading its driver`);
  });
  return { driver, ctx: await providerContext(services, provider) };
}

async function survey(services: Services, providerName: string, driver: ProviderDriver, ctx: Awaited<ReturnType<typeof providerContext>>): Promise<OrphanReport> {
  let all: OwnedResource[];
  try {
    all = driver.listOwned
      ? await driver.listOwned(ctx)
      : (await driver.listMachines(ctx)).map((m) => ({ kind: 'machine', id: m.nativeId, name: m.name, tags: m.tags ?? {} }));
  } catch (e) {
    throw providerFailure(e, `provider ${providerName}: listing what it owns`);
  }
  const ours = all.filter((r) => r.tags[TAG_PROVIDER] === providerName);
  // Every stored node counts, one being deleted included: its own deletion releases its resources.
  const nodeIds = new Set((await services.store.objects('nodes').all({ filters: { provider: providerName } })).map((n) => n.id));
  const orphans = ours.filter((r) => r.tags[TAG_NODE_ID] !== undefined && !nodeIds.has(r.tags[TAG_NODE_ID]!));
  return { provider: providerName, source: driver.listOwned ? 'listOwned' : 'listMachines', owned: ours.length, orphans };
}
