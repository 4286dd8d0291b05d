import { FormworkError } from '../core/errors.js';
import { deletionOf, type Deletion } from '../core/deletion.js';
import { kindByName, type StoredObject } from '../core/kinds.js';
import { versionMismatch } from '../store/repository.js';
import type { Store } from '../store/store.js';
import type { ApplyContext, Services } from '../context/services.js';

/**
 * Asking for a deletion: `DELETE` of a node, deployment or provider only marks it (its
 * `deletion` field) and answers 202; the annealer of any worker claims it and runs its
 * deprovision step (services/teardown.ts, engine/deprovision.ts), and removes the row when its
 * resources are gone, with a final `deleted` event. So no request waits on a cloud, and a
 * process that only serves the API needs no driver, credentials or root.
 *
 * A deployment's nodes are marked with it. Asking again resets the attempts (a deletion that
 * gave up, `failed`, is tried again, and so are its deployment's failed nodes).
 *
 * @example
 *   const marked = await requestDeletion(services, 'deployments', 'demo', { actor: 'alice' });
 *   marked.deletion; // {requestedAt, requestedBy: 'alice', attempts: 0}
 */

/** Marks an object deleting (or resets its attempts); version-checked against `object`. */
export async function markDeleting(store: Store, plural: string, object: StoredObject, actor?: string): Promise<StoredObject> {
  const prev = deletionOf(object);
  const deletion: Deletion = {
    requestedAt: prev?.requestedAt ?? new Date().toISOString(),
    ...(prev?.requestedBy ?? actor ? { requestedBy: prev?.requestedBy ?? actor } : {}),
    attempts: 0,
    // A step running now keeps its claim; its result is recorded against the new attempts.
    ...(prev?.leaseOwner ? { leaseOwner: prev.leaseOwner, leaseExpiresAt: prev.leaseExpiresAt } : {}),
    ...(prev?.lastError ? { lastError: prev.lastError } : {}),
  };
  return store.objects(plural).update(object.id, { deletion }, { actor, expectedVersion: object.version });
}

/** DELETE of a kind that owns real resources: marks it and wakes this process's engine, if any. */
export async function requestDeletion(services: Services, plural: string, idOrName: string, ctx: ApplyContext): Promise<StoredObject> {
  const kind = kindByName(plural)!;
  const store = services.store;
  const current = await store.objects(plural).get(idOrName);
  if (ctx.expectedVersion !== undefined && ctx.expectedVersion !== current.version) throw versionMismatch(kind, current, ctx.expectedVersion);
  if (plural === 'providers') {
    const kept = (await store.objects('nodes').all({ filters: { provider: current.name } })).filter((n) => !n.deletion);
    if (kept.length) {
      throw new FormworkError(
        'CONFLICT',
        `provider ${current.name} still has ${kept.length} node(s) (${kept.slice(0, 5).map((n) => n.name).join(', ')}): delete them or their deployment first`,
        { provider: current.name, nodes: kept.map((n) => n.name) },
      );
    }
  }
  const marked = await markDeleting(store, plural, current, ctx.actor);
  if (plural === 'deployments') {
    // Its nodes at once, so its provider may be deleted right after (failed ones try again).
    // One written meanwhile (a run finishing) is marked by the deployment's step instead.
    for (const n of await store.objects('nodes').all({ filters: { deployment: current.name } })) {
      if (deletionOf(n) && !deletionOf(n)?.failed) continue;
      await markDeleting(store, 'nodes', n, ctx.actor).catch((e: unknown) => {
        if (!(e instanceof FormworkError && e.code === 'VERSION_MISMATCH')) throw e;
      });
    }
  }
  services.engine?.kick();
  return marked;
}
