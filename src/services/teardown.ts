import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { forgetPrepared } from '../providers/lifecycle.js';
import { TAG_NODE_ID } from '../providers/provider.js';
import { loadDriver, providerContext, providerFailure } from '../providers/registry.js';
import type { Services } from '../context/services.js';

/**
 * Deleting what owns real resources: a node's machine, a deployment's nodes, a provider's
 * shared resources. Nothing is leaked: a deployment's node-roles are taken off the
 * schedule first and running ones are waited for, so no machine is created after its
 * node was deleted.
 *
 * @example
 *   await deleteDeployment(services, 'demo', { actor: 'admin' }); // machines, nodes, node-roles, deployment
 */

export interface DeleteOptions {
  actor?: string;
  /** How long to wait for running node-roles to finish (default 15 min). */
  waitMs?: number;
}

export async function deleteNode(services: Services, idOrName: string, opts: DeleteOptions = {}): Promise<StoredObject> {
  const nodes = services.store.objects('nodes');
  const node = await nodes.get(idOrName);
  await unschedule(services, { node: node.name }, opts);
  if (node.provider) {
    const provider = await services.store.objects('providers').find(node.provider as string);
    if (provider) {
      const driver = await loadDriver(provider.type as string);
      const ctx = await providerContext(services, provider);
      // Its recorded id, and every machine carrying its node-id tag (an interrupted provisioning
      // may not have recorded the id); never names: others' machines may share them.
      try {
        const doomed = new Set((await driver.listMachines(ctx)).filter((m) => m.tags?.[TAG_NODE_ID] === node.id).map((m) => m.nativeId));
        if (typeof node.nativeId === 'string' && node.nativeId) doomed.add(node.nativeId);
        for (const id of doomed) await driver.deleteMachine(id, ctx);
      } catch (e) {
        throw providerFailure(e, `node ${node.name}: deleting its machine`);
      }
    }
  }
  await deleteNodeRoles(services, { node: node.name }, opts);
  return nodes.delete(node.id, { actor: opts.actor });
}

export async function deleteDeployment(services: Services, idOrName: string, opts: DeleteOptions = {}): Promise<StoredObject> {
  const deployment = await services.store.objects('deployments').get(idOrName);
  await unschedule(services, { deployment: deployment.name }, opts);
  const nodes = await services.store.objects('nodes').all({ filters: { deployment: deployment.name } });
  const results = await Promise.allSettled(nodes.map((n) => deleteNode(services, n.id, opts)));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length) {
    throw new FormworkError('PROVIDER_ERROR', `deployment ${deployment.name}: ${failed.length} node(s) could not be deleted: ${failed.map((f) => (f.reason as Error).message).join('; ')}`, {
      deployment: deployment.name,
    });
  }
  await deleteNodeRoles(services, { deployment: deployment.name }, opts);
  return services.store.objects('deployments').delete(deployment.id, { actor: opts.actor });
}

/** Tears down a provider's shared resources and deletes it; refused while it still has nodes. */
export async function deleteProvider(services: Services, idOrName: string, opts: DeleteOptions = {}): Promise<StoredObject> {
  const provider = await services.store.objects('providers').get(idOrName);
  const nodes = await services.store.objects('nodes').all({ filters: { provider: provider.name } });
  if (nodes.length) {
    throw new FormworkError('CONFLICT', `provider ${provider.name} still has ${nodes.length} node(s) (${nodes.slice(0, 5).map((n) => n.name).join(', ')}): delete them or their deployment first`, {
      provider: provider.name,
      nodes: nodes.map((n) => n.name),
    });
  }
  const driver = await loadDriver(provider.type as string);
  try {
    await driver.teardown?.(await providerContext(services, provider));
  } catch (e) {
    throw providerFailure(e, `provider ${provider.name}: teardown`);
  }
  forgetPrepared(services, provider.name);
  return services.store.objects('providers').delete(provider.id, { actor: opts.actor });
}

/** Takes node-roles off the schedule, then waits until none of them is running. */
async function unschedule(services: Services, filter: { node?: string; deployment?: string }, opts: DeleteOptions): Promise<void> {
  const repo = services.store.objects('noderoles');
  for (let nr of await repo.all({ filters: filter })) {
    // With the version check a node-role claimed meanwhile is seen as running, never flipped under its run.
    for (;;) {
      if (nr.state === 'running' || nr.state === 'proposed') break;
      try {
        await repo.update(nr.id, { state: 'proposed' }, { actor: opts.actor, expectedVersion: nr.version });
        break;
      } catch (e) {
        if ((e as FormworkError).code !== 'VERSION_MISMATCH') throw e;
        nr = await repo.get(nr.id);
      }
    }
  }
  const deadline = Date.now() + (opts.waitMs ?? 15 * 60_000);
  for (;;) {
    const running = await repo.all({ filters: { ...filter, state: 'running' } });
    if (running.length === 0) return;
    if (Date.now() > deadline) {
      throw new FormworkError('CONFLICT', `still running: ${running.map((r) => r.name).join(', ')}; try again when they finish`, { running: running.map((r) => r.name) });
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function deleteNodeRoles(services: Services, filter: { node?: string; deployment?: string }, opts: DeleteOptions): Promise<void> {
  const repo = services.store.objects('noderoles');
  const doomed = await repo.all({ filters: filter });
  if (!doomed.length) return;
  await services.store.transaction(async (tx) => {
    const ids = doomed.map((d) => d.id);
    await tx.db.deleteFrom('noderole_links').where((eb) => eb.or([eb('parent_id', 'in', ids), eb('child_id', 'in', ids)])).execute();
    // Their run history goes with them: a later deployment may reuse the names.
    await tx.db.deleteFrom('runs').where('noderole', 'in', doomed.map((d) => d.name)).execute();
    for (const nr of doomed) await tx.objects('noderoles').delete(nr.id, { actor: opts.actor });
  });
}
