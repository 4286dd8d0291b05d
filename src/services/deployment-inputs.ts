import { FormworkError } from '../core/errors.js';
import { checkBoundInputs, type InputProblem } from '../core/input-check.js';
import type { PlannedNodeRole } from '../core/planner.js';
import type { RoleSpec } from '../core/roles.js';
import type { FieldProblem } from '../core/schema.js';
import type { Store } from '../store/store.js';
import type { DeploymentDocument } from './deployments.js';
import type { PendingWrites } from './writes.js';

/**
 * A Deployment's inputs, checked before anything is written (core/input-check.ts): what
 * the check needs from the store (existing nodes' attribs, workloads' defaults, with the
 * same apply's other documents over them), and its problems as apply reports them.
 *
 * @example
 *   const problems = await deploymentInputProblems(tx, doc, byName, planned);
 *   if (problems.length) throw inputsInvalid(doc.name, problems);
 */

export async function deploymentInputProblems(store: Store, doc: DeploymentDocument, roles: Map<string, RoleSpec>, planned: PlannedNodeRole[], pending: PendingWrites = new Map()): Promise<InputProblem[]> {
  const nodeNames = doc.spec.nodes.map((n) => n.name);
  const nodeAttribs = new Map<string, Record<string, unknown>>();
  const repo = store.objects('nodes');
  for (let i = 0; i < nodeNames.length; i += 500) {
    const rows = await store.db.selectFrom('nodes').selectAll().where('name', 'in', nodeNames.slice(i, i + 500)).execute();
    for (const n of rows.map((r) => repo.toObject(r))) nodeAttribs.set(n.name, (n.attribs ?? {}) as Record<string, unknown>);
  }
  for (const [name, n] of pending.get('nodes') ?? []) if (nodeNames.includes(name)) nodeAttribs.set(name, (n.attribs ?? {}) as Record<string, unknown>);
  const workloads = new Map((await store.objects('workloads').all()).map((w) => [w.name, (w.defaults ?? {}) as Record<string, unknown>] as const));
  for (const [name, w] of pending.get('workloads') ?? []) workloads.set(name, (w.defaults ?? {}) as Record<string, unknown>);
  return checkBoundInputs({ planned, roles, bindings: doc.spec.roles, deploymentAttribs: doc.attribs, nodeAttribs, workloadDefaults: workloads });
}

function describe(deployment: string, p: InputProblem): string {
  return `deployment "${deployment}", role "${p.role}", input "${p.input}" (node${p.nodes.length === 1 ? '' : 's'} ${p.nodes.join(', ')}): ${p.message}`;
}

/** The problems as apply's field problems, paths into the Deployment document. */
export function inputFieldProblems(deployment: string, problems: InputProblem[]): FieldProblem[] {
  return problems.map((p) => ({ path: '/' + p.field.split('.').join('/'), message: describe(deployment, p) }));
}

/** One error listing every problem (the applier's own check, when called outside apply). */
export function inputsInvalid(deployment: string, problems: InputProblem[]): FormworkError {
  return new FormworkError(
    'INPUT_INVALID',
    `deployment "${deployment}" was not applied: ${problems.length} input problem${problems.length === 1 ? '' : 's'}: ${problems.map((p) => describe(deployment, p)).join('; ')}`,
    { deployment, errors: inputFieldProblems(deployment, problems) },
  );
}
