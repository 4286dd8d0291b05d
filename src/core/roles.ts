import type { StoredObject } from './kinds.js';
import { parseExpression } from './expressions.js';
import { compileSchema } from './schema.js';

/**
 * Roles: the units of automation, and the checks a catalogue of roles must pass before
 * any of it is stored (docs/engine-contract.md, docs/workloads.md). Pure: no I/O.
 *
 * @example
 *   const errors = validateRoles(roles, { files: { etcd: pack.files } });
 *   // [{ file: 'etcd/workload.yaml', role: 'etcd-member', field: 'requires', message: 'unknown role or alias "nod-ready"' }]
 */

export const ROLE_FLAGS = ['cluster', 'service', 'destructive'] as const;
export type RoleFlag = (typeof ROLE_FLAGS)[number];

export interface AttribSpec {
  /** JSON Schema of the value. */
  schema?: Record<string, unknown>;
  /** The value when nothing else gives one; `'generated'` = a random token fixed at bind time. */
  default?: unknown;
  /** Redacted in run records, logs and events. */
  secret?: boolean;
  /** An expression: `node.addresses.private[0]`, `node.name`, `outputs(ROLE).FIELD`, `deployment.attribs.NAME`. */
  from?: string;
  /** Resolution fails (INPUT_INVALID) when no level gives a value. Extension of the contract; default false. */
  required?: boolean;
  description?: string;
}

export type RoleImplementation =
  | { kind: 'script'; file: string; sudo?: boolean }
  | { kind: 'local'; file: string }
  | { kind: 'ansible'; file: string }
  | { kind: 'builtin'; handler: string };

export const IMPLEMENTATION_KINDS = ['script', 'local', 'ansible', 'builtin'] as const;

export interface RoleSpec {
  name: string;
  workload: string;
  description?: string;
  requires: string[];
  provides: string[];
  conflicts: string[];
  flags: RoleFlag[];
  inputs: Record<string, AttribSpec>;
  outputs: Record<string, AttribSpec>;
  implementation: RoleImplementation;
  /** Run on the node before its node-role is deleted, when the role's binding leaves the node (docs/workloads.md, "Removal"). */
  removal?: RoleImplementation;
  timeoutSeconds?: number;
  retries?: number;
}

/** One problem found in a role or pack. `file` is the file it was found in (the pack's workload.yaml for role fields). */
export interface RoleError {
  file: string;
  role?: string;
  field?: string;
  message: string;
}

export interface ValidateRolesOptions {
  /** Files of each workload (path → text). When given, implementation files must be among them. */
  files?: Record<string, Record<string, string>>;
  /** The file a role is defined in, for error reports. Default: `<workload>/workload.yaml`. */
  fileOf?: (role: RoleSpec) => string;
  /**
   * The roles being written, when the others are only context (roles already stored or
   * loaded): only their problems are reported, and a cycle through one of them is reported
   * on it. Default: every role.
   */
  subjects?: ReadonlySet<RoleSpec>;
}

export const ROLE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export function hasFlag(role: RoleSpec, flag: RoleFlag): boolean {
  return role.flags.includes(flag);
}

/** True when `role` satisfies the requirement `name`: it is that role or provides that alias. */
export function satisfies(role: RoleSpec, name: string): boolean {
  return role.name === name || role.provides.includes(name);
}

/**
 * The roles that can satisfy a requirement: the role of that name if there is one,
 * else every role providing it as an alias (sorted by name).
 */
export function candidatesFor(name: string, byName: Map<string, RoleSpec>, all: RoleSpec[]): RoleSpec[] {
  const direct = byName.get(name);
  if (direct) return [direct];
  return all.filter((r) => r.provides.includes(name)).sort((a, b) => cmp(a.name, b.name));
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks a catalogue of roles (all loaded packs together, since requires may cross
 * packs) and returns every problem found, not just the first.
 */
export function validateRoles(roles: RoleSpec[], opts: ValidateRolesOptions = {}): RoleError[] {
  const errors: RoleError[] = [];
  const fileOf = opts.fileOf ?? ((r: RoleSpec) => `${r.workload}/workload.yaml`);
  const isSubject = (r: RoleSpec) => !opts.subjects || opts.subjects.has(r);
  const err = (r: RoleSpec, field: string | undefined, message: string) => {
    if (isSubject(r)) errors.push({ file: fileOf(r), role: r.name, ...(field ? { field } : {}), message });
  };

  const byName = new Map<string, RoleSpec>();
  for (const r of roles) {
    if (!ROLE_NAME_PATTERN.test(r.name ?? '')) err(r, 'name', `role name ${JSON.stringify(r.name)} must be lower-case letters, digits, ".", "_" or "-"`);
    const other = byName.get(r.name);
    if (other) err(r, 'name', `role "${r.name}" is defined twice (also in workload "${other.workload}")`);
    else byName.set(r.name, r);
  }
  const aliases = new Set(roles.flatMap((r) => r.provides));

  for (const r of roles) {
    for (const req of r.requires) {
      if (req === r.name) err(r, 'requires', `role "${r.name}" requires itself`);
      else if (!byName.has(req) && !aliases.has(req)) err(r, 'requires', `unknown role or alias "${req}": no loaded role has that name or provides it`);
    }
    for (const c of r.conflicts) {
      if (r.requires.includes(c)) err(r, 'conflicts', `"${c}" is both required and conflicting`);
      else {
        // A required role that is, or provides, a conflicting name.
        for (const req of r.requires) {
          const cands = candidatesFor(req, byName, roles);
          if (cands.length > 0 && cands.every((cand) => satisfies(cand, c))) {
            err(r, 'conflicts', `"${c}" conflicts with the required "${req}" (which is or provides it)`);
          }
        }
      }
    }
    for (const f of r.flags) {
      if (!(ROLE_FLAGS as readonly string[]).includes(f)) err(r, 'flags', `unknown flag "${f}"; known: ${ROLE_FLAGS.join(', ')}`);
    }
    if (r.flags.includes('cluster') && r.flags.includes('service')) err(r, 'flags', 'a role cannot be both "cluster" and "service"');
    for (const [kind, specs] of [['inputs', r.inputs], ['outputs', r.outputs]] as const) {
      for (const [name, spec] of Object.entries(specs ?? {})) {
        const field = `${kind}.${name}`;
        if (kind === 'outputs' && spec.secret) {
          // Outputs are stored, shown and passed on as they are: a flag that protected nothing would mislead.
          err(r, `${field}.secret`, 'outputs cannot be secret (they are stored and shown as they are); make the secret an input (`secret: true`, `default: generated`) that both roles read');
        }
        if (spec.schema !== undefined) {
          const res = compileSchema(spec.schema);
          if ('error' in res) err(r, `${field}.schema`, `invalid JSON Schema: ${res.error}`);
          else if (spec.default !== undefined && spec.default !== 'generated' && !res.validate(spec.default)) {
            err(r, `${field}.default`, `default ${JSON.stringify(spec.default)} does not match the schema: ${res.errors()}`);
          }
        }
        if (spec.from !== undefined) {
          if (kind === 'outputs') err(r, `${field}.from`, 'outputs cannot have a "from" expression');
          else {
            const p = parseExpression(spec.from);
            if ('error' in p) err(r, `${field}.from`, p.error);
            else if (p.kind === 'outputs' && !byName.has(p.role) && !aliases.has(p.role)) {
              err(r, `${field}.from`, `"${spec.from}" names the unknown role "${p.role}"`);
            }
          }
        }
      }
    }
    // The removal step is an implementation like the role's own, checked the same way.
    const checkImplementation = (value: unknown, field: string, required: boolean) => {
      const impl = value as RoleImplementation | undefined;
      if (!impl || typeof impl !== 'object') {
        if (required || impl !== undefined) err(r, field, `missing ${field}`);
      } else if (!(IMPLEMENTATION_KINDS as readonly string[]).includes(impl.kind)) {
        err(r, `${field}.kind`, `unknown implementation kind "${String(impl.kind)}"; known: ${IMPLEMENTATION_KINDS.join(', ')}`);
      } else if (impl.kind === 'builtin') {
        if (typeof impl.handler !== 'string' || !impl.handler) err(r, `${field}.handler`, `a builtin ${field} needs a "handler" name`);
      } else if (typeof impl.file !== 'string' || !impl.file) {
        err(r, `${field}.file`, `a ${impl.kind} ${field} needs a "file"`);
      } else if (opts.files?.[r.workload] && !(impl.file in opts.files[r.workload])) {
        err(r, `${field}.file`, `${field} file "${impl.file}" does not exist in the pack`);
      }
    };
    checkImplementation(r.implementation, 'implementation', true);
    if (r.removal !== undefined) checkImplementation(r.removal, 'removal', false);
    if (r.timeoutSeconds !== undefined && !(Number.isInteger(r.timeoutSeconds) && r.timeoutSeconds > 0)) {
      err(r, 'timeoutSeconds', 'timeoutSeconds must be a positive integer');
    }
    if (r.retries !== undefined && !(Number.isInteger(r.retries) && r.retries >= 0)) err(r, 'retries', 'retries must be an integer ≥ 0');
  }

  for (const cycle of findCycles(roles, byName)) {
    const first = cycle.map((n) => byName.get(n)!).find(isSubject);
    if (first) err(first, 'requires', `roles require each other in a cycle: ${cycle.join(' → ')}`);
  }
  return errors;
}

/**
 * Every elementary cycle found by a depth-first walk of the requires graph (a requirement
 * leads to each role that can satisfy it), each reported once, as role names with the
 * first repeated at the end: ['a', 'b', 'a'].
 */
export function findCycles(roles: RoleSpec[], byName = new Map(roles.map((r) => [r.name, r] as const))): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (r: RoleSpec) => {
    if (done.has(r.name)) return;
    stack.push(r.name);
    onStack.add(r.name);
    for (const req of r.requires) {
      if (req === r.name) continue; // reported as "requires itself"
      for (const next of candidatesFor(req, byName, roles)) {
        if (onStack.has(next.name)) {
          const cycle = [...stack.slice(stack.indexOf(next.name)), next.name];
          const key = [...cycle.slice(0, -1)].sort().join(',');
          if (!seen.has(key)) {
            seen.add(key);
            cycles.push(cycle);
          }
        } else visit(next);
      }
    }
    stack.pop();
    onStack.delete(r.name);
    done.add(r.name);
  };
  for (const r of [...roles].sort((a, b) => cmp(a.name, b.name))) visit(r);
  return cycles;
}

/**
 * A stored role object's spec, normalized: lists and maps present even when the row omits them.
 *
 * @example
 *   const roles = (await store.objects('roles').all()).map(roleFromObject);
 */
export function roleFromObject(row: StoredObject): RoleSpec {
  const spec = (row.spec ?? {}) as Partial<RoleSpec>;
  return {
    ...spec,
    name: spec.name ?? row.name,
    workload: spec.workload ?? (row.workload as string) ?? '',
    requires: spec.requires ?? [],
    provides: spec.provides ?? [],
    conflicts: spec.conflicts ?? [],
    flags: spec.flags ?? [],
    inputs: spec.inputs ?? {},
    outputs: spec.outputs ?? {},
    implementation: spec.implementation ?? { kind: 'builtin', handler: '(none)' },
  } as RoleSpec;
}
