import { isExpressionValue, isSealed, normalizeOverride } from './attribs.js';
import type { AttribSpec, RoleSpec } from './roles.js';
import { compileSchema } from './schema.js';

/**
 * The inputs of a deployment's node-roles that can be judged before anything is written:
 * every required input has some level that can give it a value, and every literal value
 * that would be used has the input's type. Levels and their order are resolveInputs'
 * (core/attribs.ts); an expression (`from:`, `{ $from }`) is judged only when the role
 * runs, as are values sealed by another apply. Pure: no I/O.
 *
 * @example
 *   checkBoundInputs({ planned, roles, bindings: doc.spec.roles, deploymentAttribs: doc.attribs, nodeAttribs, workloadDefaults });
 *   // [{ role: 'web', input: 'count', nodes: ['demo-0'], field: 'roles.web.inputs.count', message: 'the value "two" … must be integer; …' }]
 */

export interface InputProblem {
  role: string;
  input: string;
  /** The nodes whose node-roles have the problem. */
  nodes: string[];
  /** Where in the deployment document to fix it: `roles.R.inputs.I`, `attribs.I`, or `roles.R` for a missing value. */
  field: string;
  message: string;
}

export interface BoundInputsContext {
  /** The node-roles the deployment would have (bound by the document or automatically). */
  planned: Array<{ role: string; node: string }>;
  roles: Map<string, RoleSpec>;
  /** The document's bindings: role → nodes and input values. */
  bindings: Record<string, { nodes: string[]; inputs?: Record<string, unknown> }>;
  deploymentAttribs: Record<string, unknown>;
  /** Attribs of nodes that already exist, by name. */
  nodeAttribs: Map<string, Record<string, unknown>>;
  /** `defaults` of each workload, by name. */
  workloadDefaults: Map<string, Record<string, unknown>>;
}

type Found = { value: unknown; where: string; field: string } | 'runtime' | undefined;

function own(o: Record<string, unknown> | undefined, key: string): unknown {
  return o && Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** The level that would give a node-role's input its value, as resolveInputs orders them. */
function valueOf(name: string, spec: AttribSpec, role: RoleSpec, node: string, ctx: BoundInputsContext): Found {
  const binding = ctx.bindings[role.name];
  // A binding's input is stored as normalizeOverride makes it (an expression string becomes `{ $from }`); attribs as they are.
  const levels: Array<[unknown, string, string]> = [
    [binding?.nodes.includes(node) ? normalizeOverride(own(binding.inputs, name)) : undefined, "the binding's inputs", `roles.${role.name}.inputs.${name}`],
    [own(ctx.nodeAttribs.get(node), name), `node "${node}"'s attribs`, `roles.${role.name}`],
    [own(ctx.deploymentAttribs, name), "the deployment's attribs", `attribs.${name}`],
  ];
  for (const [value, where, field] of levels) {
    if (value === undefined) continue;
    if (isExpressionValue(value) || isSealed(value)) return 'runtime';
    return { value, where, field };
  }
  if (spec.from !== undefined) return 'runtime';
  if (name === 'peers' && role.flags.includes('cluster')) return 'runtime';
  if (spec.default === 'generated') return 'runtime';
  if (spec.default !== undefined) return { value: spec.default, where: `role "${role.name}"'s default`, field: `roles.${role.name}` };
  const fromWorkload = own(ctx.workloadDefaults.get(role.workload), name);
  if (fromWorkload !== undefined) return { value: fromWorkload, where: `workload "${role.workload}"'s defaults`, field: `roles.${role.name}` };
  return undefined;
}

function typeName(schema: Record<string, unknown> | undefined): string {
  const t = schema?.type;
  return Array.isArray(t) ? t.join(' or ') : typeof t === 'string' ? t : 'the schema';
}

/** Every problem, one per role, input and kind of problem (with the nodes it concerns). */
export function checkBoundInputs(ctx: BoundInputsContext): InputProblem[] {
  const problems = new Map<string, InputProblem>();
  const add = (role: string, input: string, node: string, field: string, message: string) => {
    const key = `${role}\u0000${input}\u0000${message}`;
    const p = problems.get(key) ?? { role, input, nodes: [], field, message };
    if (!p.nodes.includes(node)) p.nodes.push(node);
    problems.set(key, p);
  };
  for (const [roleName, b] of Object.entries(ctx.bindings)) {
    const role = ctx.roles.get(roleName);
    if (!role) continue; // the planner names unknown roles
    for (const input of Object.keys(b.inputs ?? {})) {
      if (role.inputs[input] || (input === 'peers' && role.flags.includes('cluster'))) continue;
      for (const node of b.nodes) add(roleName, input, node, `roles.${roleName}.inputs.${input}`, `role "${roleName}" has no input "${input}"; its inputs: ${Object.keys(role.inputs).join(', ') || 'none'}`);
    }
  }
  // Once per role's input, not per node-role: a deployment may have thousands of them.
  const compiled = new Map<string, ReturnType<typeof compileSchema>>();
  for (const { role: roleName, node } of ctx.planned) {
    const role = ctx.roles.get(roleName);
    if (!role) continue;
    for (const [name, spec] of Object.entries(role.inputs)) {
      const found = valueOf(name, spec, role, node, ctx);
      if (found === 'runtime') continue;
      if (found === undefined) {
        if (spec.required) {
          add(roleName, name, node, `roles.${roleName}.inputs.${name}`, `required, and nothing gives it a value: set roles.${roleName}.inputs.${name} or attribs.${name} in the deployment (or the node's attribs), or give the role a default or a "from"`);
        }
        continue;
      }
      if (!spec.schema) continue;
      const key = `${roleName}\u0000${name}`;
      const c = compiled.get(key) ?? compiled.set(key, compileSchema(spec.schema)).get(key)!;
      if ('error' in c || c.validate(found.value)) continue; // an invalid schema is the pack's problem, refused when it is stored
      const shown = spec.secret ? 'the value' : `the value ${JSON.stringify(found.value)}`;
      add(roleName, name, node, found.field, `${shown} from ${found.where} does not match the input's schema (${c.errors()}); give a value of type ${typeName(spec.schema)}`);
    }
  }
  return [...problems.values()];
}
