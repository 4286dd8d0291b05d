/**
 * Removal: when a binding leaves a node, a node-role whose role declares a `removal` step is
 * not deleted at once: apply marks it (`attribs.$removing`, src/services/deployments.ts) and
 * queues it; the annealer runs the step on its node like any run (same executors, inputs,
 * retries), and deletes the node-role once the step succeeds. docs/workloads.md, "Removal".
 */
import { isRemoving } from '../core/attribs.js';
import type { ErrorCode } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { RoleSpec } from '../core/roles.js';
import type { Store } from '../store/store.js';
import { withTxRetry } from './graph.js';
import type { RunResult } from './types.js';

/**
 * The role as its removal step runs: the same role (inputs, timeout, retries), with `removal`
 * as its implementation and no outputs to write (nothing reads a removed node-role's).
 */
export function removalRole(role: RoleSpec): RoleSpec {
  if (!role.removal) throw new Error(`role ${role.name} has no removal step`);
  return { ...role, implementation: role.removal, outputs: {} };
}

/**
 * Records the removal run as succeeded and deletes the node-role with its links (its runs
 * stay, as the record of what was done). A run whose lease passed to another worker, or a
 * node-role bound again meanwhile (no longer marked), only records the run.
 */
export async function finishRemoval(
  store: Store,
  nr: StoredObject,
  runId: string,
  result: RunResult,
  log: string,
  o: { actor: string; leaseLost: boolean },
): Promise<void> {
  await withTxRetry(store, async (tx) => {
    const cur = await tx.objects('noderoles').find(nr.id);
    const runFields = { endedAt: new Date().toISOString(), exitCode: result.exitCode, log, outputs: result.outputs };
    if (!cur || cur.state !== 'running' || cur.leaseOwner !== o.actor || o.leaseLost) {
      await tx.objects('runs').update(runId, { ...runFields, state: 'abandoned', error: { code: 'LEASE_LOST' satisfies ErrorCode, message: `the lease of ${nr.name} passed to another worker before its removal step ended; its result was discarded` } }, { actor: o.actor });
      return;
    }
    await tx.objects('runs').update(runId, { ...runFields, state: 'succeeded' }, { actor: o.actor });
    if (!isRemoving(cur.attribs)) {
      // Bound again while its removal ran: it runs again as a member.
      await tx.objects('noderoles').update(cur.id, { state: 'todo', leaseOwner: null, leaseExpiresAt: null, attempts: 0, nextAttemptAt: null, outputs: null, inputHash: null }, { actor: o.actor, expectedVersion: cur.version });
      return;
    }
    await tx.db.deleteFrom('noderole_links').where((eb) => eb.or([eb('parent_id', '=', cur.id), eb('child_id', '=', cur.id)])).execute();
    await tx.objects('noderoles').delete(cur.id, { actor: o.actor, expectedVersion: cur.version });
  });
}
