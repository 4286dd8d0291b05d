import type { DeprovisionedKind, StepOutcome } from '../core/deletion.js';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { forgetPrepared } from '../providers/lifecycle.js';
import { TAG_NODE_ID, type ProviderDriver, type ProvisionedMachine } from '../providers/provider.js';
import { releaseMachine } from '../providers/readiness.js';
import { loadDriver as registryDriver, providerContext, providerFailure } from '../providers/registry.js';
import type { Services } from '../context/services.js';
import { markDeleting } from './deletion.js';

/**
 * The deprovision steps: what deleting an object that owns real resources does, one step at a
 * time, run by the annealer (engine/deprovision.ts) under a claim on the object, never inside
 * an HTTP request. A step either finishes (the row is gone), says what it waits for (running
 * node-roles, nodes still being deleted), or throws; the annealer retries it.
 *
 *  - node: its node-roles off the schedule; once none runs, its machine (recorded id, and
 *    every machine with its node-id tag) deleted by the provider, then its node-roles and row;
 *  - deployment: its node-roles off the schedule; once none runs, its nodes marked deleting
 *    (each deprovisioned on its own, in parallel); once they are gone, its node-roles and row;
 *  - provider: once its nodes are gone, its driver's `teardown` (bridges, pools), then its row.
 *
 * Nothing is leaked: no machine is created after its node's step ran, since no node-role of
 * it is scheduled or running by then.
 *
 * @example
 *   const outcome = await deprovision(services, 'deployments', deployment, { actor: 'worker-1' });
 *   if (outcome !== 'done') console.log(outcome.waitingFor);
 */

export interface StepOptions {
  /** Who the writes are by (the worker). */
  actor: string;
  /** The driver of a provider type (default: the registry's; tests pass a fake). */
  loadDriver?: (type: string) => Promise<ProviderDriver>;
}

export function deprovision(services: Services, kind: DeprovisionedKind, object: StoredObject, opts: StepOptions): Promise<StepOutcome> {
  switch (kind) {
    case 'nodes':
      return deprovisionNode(services, object, opts);
    case 'deployments':
      return deprovisionDeployment(services, object, opts);
    case 'providers':
      return deprovisionProvider(services, object, opts);
  }
}

async function deprovisionNode(services: Services, node: StoredObject, opts: StepOptions): Promise<StepOutcome> {
  const running = await unschedule(services, { node: node.name }, opts.actor);
  if (running.length) return { waitingFor: `node-roles still running: ${running.join(', ')}` };
  if (node.provider) {
    const provider = await services.store.objects('providers').find(node.provider as string);
    if (provider) {
      const driver = await (opts.loadDriver ?? registryDriver)(provider.type).catch((e: unknown) => {
        throw providerFailure(e, `provider ${provider.name}: loading its driver`);
      });
      const ctx = await providerContext(services, provider);
      // Its recorded id, and every machine carrying its node-id tag (an interrupted provisioning
      // may not have recorded the id); never names: others' machines may share them.
      try {
        // What made each reachable (an Elastic IP, a floating IP) is released first (readiness.ts).
        const doomed = new Map<string, ProvisionedMachine | string>((await driver.listMachines(ctx)).filter((m) => m.tags?.[TAG_NODE_ID] === node.id).map((m) => [m.nativeId, m]));
        if (typeof node.nativeId === 'string' && node.nativeId && !doomed.has(node.nativeId)) doomed.set(node.nativeId, node.nativeId);
        for (const machine of doomed.values()) await releaseMachine(driver, machine, ctx);
      } catch (e) {
        throw providerFailure(e, `node ${node.name}: deleting its machine`);
      }
    }
  }
  await deleteNodeRoles(services, { node: node.name }, opts.actor);
  await services.store.objects('nodes').delete(node.id, { actor: opts.actor });
  return 'done';
}

async function deprovisionDeployment(services: Services, deployment: StoredObject, opts: StepOptions): Promise<StepOutcome> {
  const running = await unschedule(services, { deployment: deployment.name }, opts.actor);
  if (running.length) return { waitingFor: `node-roles still running: ${running.join(', ')}` };
  const nodes = await services.store.objects('nodes').all({ filters: { deployment: deployment.name } });
  if (nodes.length) {
    refuseFailedNodes(nodes, `deployment ${deployment.name}`);
    for (const n of nodes) if (!n.deletion) await markDeleting(services.store, 'nodes', n, opts.actor);
    return { waitingFor: `nodes still being deleted: ${names(nodes)}` };
  }
  await deleteNodeRoles(services, { deployment: deployment.name }, opts.actor);
  await services.store.objects('deployments').delete(deployment.id, { actor: opts.actor });
  return 'done';
}

async function deprovisionProvider(services: Services, provider: StoredObject, opts: StepOptions): Promise<StepOutcome> {
  const nodes = await services.store.objects('nodes').all({ filters: { provider: provider.name } });
  if (nodes.length) {
    const kept = nodes.filter((n) => !n.deletion);
    if (kept.length) {
      throw new FormworkError('CONFLICT', `provider ${provider.name} has ${kept.length} node(s) not being deleted (${names(kept)}): delete them or their deployment, then delete the provider again`, {
        provider: provider.name,
        nodes: kept.map((n) => n.name),
      }, { retryable: false });
    }
    refuseFailedNodes(nodes, `provider ${provider.name}`);
    return { waitingFor: `nodes still being deleted: ${names(nodes)}` };
  }
  const driver = await (opts.loadDriver ?? registryDriver)(provider.type as string).catch((e: unknown) => {
    throw providerFailure(e, `provider ${provider.name}: loading its driver`);
  });
  try {
    await driver.teardown?.(await providerContext(services, provider));
  } catch (e) {
    throw providerFailure(e, `provider ${provider.name}: teardown`);
  }
  forgetPrepared(services, provider.name);
  await services.store.objects('providers').delete(provider.id, { actor: opts.actor });
  return 'done';
}

const names = (objects: StoredObject[]) => objects.slice(0, 5).map((o) => o.name).join(', ') + (objects.length > 5 ? ', …' : '');

/** A node whose own deletion gave up stops its owner's too (a DELETE of the owner tries both again). */
function refuseFailedNodes(nodes: StoredObject[], owner: string): void {
  const failed = nodes.filter((n) => (n.deletion as { failed?: boolean } | undefined)?.failed);
  if (!failed.length) return;
  const why = failed.map((n) => `${n.name}: ${(n.deletion as { lastError?: { message?: string } }).lastError?.message ?? 'failed'}`).join('; ');
  throw new FormworkError('CONFLICT', `${owner}: ${failed.length} node(s) could not be deleted (${why}); fix the cause and delete it again`, {
    nodes: failed.map((n) => n.name),
  }, { retryable: false });
}

/** Takes node-roles off the schedule (version-checked, so one claimed meanwhile is seen as running); returns those still running. */
async function unschedule(services: Services, filter: { node?: string; deployment?: string }, actor: string): Promise<string[]> {
  const repo = services.store.objects('noderoles');
  const running: string[] = [];
  for (let nr of await repo.all({ filters: filter })) {
    for (;;) {
      if (nr.state === 'running') running.push(nr.name);
      if (nr.state === 'running' || nr.state === 'proposed') break;
      try {
        await repo.update(nr.id, { state: 'proposed' }, { actor, expectedVersion: nr.version });
        break;
      } catch (e) {
        if ((e as FormworkError).code !== 'VERSION_MISMATCH') throw e;
        nr = await repo.get(nr.id);
      }
    }
  }
  return running;
}

async function deleteNodeRoles(services: Services, filter: { node?: string; deployment?: string }, actor: string): Promise<void> {
  const repo = services.store.objects('noderoles');
  const doomed = await repo.all({ filters: filter });
  if (!doomed.length) return;
  await services.store.transaction(async (tx) => {
    const ids = doomed.map((d) => d.id);
    await tx.db.deleteFrom('noderole_links').where((eb) => eb.or([eb('parent_id', 'in', ids), eb('child_id', 'in', ids)])).execute();
    // Their run history goes with them: a later deployment may reuse the names.
    await tx.db.deleteFrom('runs').where('noderole', 'in', doomed.map((d) => d.name)).execute();
    for (const nr of doomed) await tx.objects('noderoles').delete(nr.id, { actor });
  });
}
