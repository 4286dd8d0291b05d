import { IMPLEMENTATION_KINDS, validateRoles, type AttribSpec, type RoleError, type RoleImplementation, type RoleSpec } from './roles.js';

/**
 * Role specs as written — a role of a pack's workload.yaml, a role object sent to the API
 * or applied — parsed into their stored form, and the one check every role write passes
 * (checkRoleObject for objects; the pack loader runs the same parser and validateRoles).
 * Pure: no I/O.
 *
 * @example
 *   const { role, errors } = checkRoleObject({ name: 'web', workload: 'web', spec: { requires: ['node-ready'], implementation: { kind: 'script', file: 'web.sh' } } }, stored);
 */

const ROLE_KEYS = ['name', 'description', 'requires', 'provides', 'conflicts', 'flags', 'inputs', 'outputs', 'implementation', 'removal', 'timeoutSeconds', 'retries'];
const ATTRIB_KEYS = ['schema', 'default', 'secret', 'from', 'required', 'description'];
const IMPLEMENTATION_KEYS = ['kind', 'file', 'handler', 'sudo'];

/** Reports one problem of a role spec being parsed: `role` is its name when known, `field` the path in the spec. */
export type RoleProblemSink = (message: string, role?: string, field?: string) => void;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function strings(v: unknown, field: string, role: string, err: RoleProblemSink): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  err(`"${field}" must be a list of names`, role, field);
  return [];
}

/**
 * Parses one role spec as written into its stored form (`inputs: { n: integer }` becomes
 * `{ n: { schema: { type: 'integer' } } }`), reporting structural problems: unknown keys,
 * wrong types, unknown implementation kinds. The role comes back even when some are found,
 * so the catalogue checks (validateRoles) can still run and report theirs in the same pass.
 * A spec in stored form parses to itself.
 */
export function parseRoleSpec(raw: unknown, index: number, workload: string, err: RoleProblemSink): RoleSpec | undefined {
  if (!isObject(raw)) {
    err(`roles[${index}] must be a mapping`, undefined, `roles[${index}]`);
    return undefined;
  }
  const name = typeof raw.name === 'string' ? raw.name : `roles[${index}]`;
  for (const k of Object.keys(raw)) if (!ROLE_KEYS.includes(k)) err(`unknown key "${k}"; known: ${ROLE_KEYS.join(', ')}`, name, k);
  if (typeof raw.name !== 'string') {
    // Nothing else can name its problems, or be required by another role.
    err(`roles[${index}] needs a "name"`, undefined, `roles[${index}].name`);
    return undefined;
  }
  const attribs = (field: 'inputs' | 'outputs'): Record<string, AttribSpec> => {
    const v = raw[field];
    if (v === undefined || v === null) return {};
    if (!isObject(v)) {
      err(`"${field}" must be a mapping of name → spec`, name, field);
      return {};
    }
    const out: Record<string, AttribSpec> = {};
    for (const [k, spec] of Object.entries(v)) {
      const a = parseAttrib(spec, (m) => err(m, name, `${field}.${k}`));
      if (a) out[k] = a;
    }
    return out;
  };
  const role: RoleSpec = {
    name,
    workload,
    ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    requires: strings(raw.requires, 'requires', name, err),
    provides: strings(raw.provides, 'provides', name, err),
    conflicts: strings(raw.conflicts, 'conflicts', name, err),
    flags: strings(raw.flags, 'flags', name, err) as RoleSpec['flags'],
    inputs: attribs('inputs'),
    outputs: attribs('outputs'),
    implementation: parseImplementation(raw.implementation, (m, f) => err(m, name, f)) as RoleImplementation,
  };
  if (raw.removal !== undefined) role.removal = parseImplementation(raw.removal, (m, f) => err(m, name, f), 'removal') as RoleImplementation;
  for (const k of ['timeoutSeconds', 'retries'] as const) {
    if (raw[k] === undefined) continue;
    if (typeof raw[k] !== 'number') err(`"${k}" must be a number`, name, k);
    else role[k] = raw[k] as number;
  }
  return role;
}

/** An attrib as written: `{ type: string, secret: true }` (schema keywords inline), `{ schema: {…} }`, or `string` (a type). */
function parseAttrib(v: unknown, err: (m: string) => void): AttribSpec | undefined {
  if (v === null || v === undefined) return {};
  if (typeof v === 'string') return { schema: { type: v } };
  if (!isObject(v)) {
    err('must be a mapping (e.g. { type: string }) or a type name');
    return undefined;
  }
  const spec: AttribSpec = {};
  const inline: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!ATTRIB_KEYS.includes(k)) inline[k] = x;
  if (v.schema !== undefined && !isObject(v.schema)) err('"schema" must be a JSON Schema mapping');
  const schema = { ...(isObject(v.schema) ? v.schema : {}), ...inline };
  if (Object.keys(schema).length) spec.schema = schema;
  if (v.default !== undefined) spec.default = v.default;
  if (v.secret !== undefined) {
    if (typeof v.secret !== 'boolean') err('"secret" must be true or false');
    else spec.secret = v.secret;
  }
  if (v.required !== undefined) {
    if (typeof v.required !== 'boolean') err('"required" must be true or false');
    else spec.required = v.required;
  }
  if (v.from !== undefined) {
    if (typeof v.from !== 'string') err('"from" must be an expression string');
    else spec.from = v.from;
  }
  if (typeof v.description === 'string') spec.description = v.description;
  return spec;
}

/** `implementation:` or `removal:` (the same shape; `field` names which). */
function parseImplementation(v: unknown, err: (m: string, field: string) => void, field = 'implementation'): RoleImplementation | Record<string, unknown> {
  if (!isObject(v)) {
    err(`${field === 'implementation' ? 'the role needs an "implementation"' : `"${field}" must be`}: { kind: script|local|ansible, file: … } or { kind: builtin, handler: … }`, field);
    return {};
  }
  for (const k of Object.keys(v)) if (!IMPLEMENTATION_KEYS.includes(k)) err(`unknown key "${k}"; known: ${IMPLEMENTATION_KEYS.join(', ')}`, `${field}.${k}`);
  if (!(IMPLEMENTATION_KINDS as readonly string[]).includes(String(v.kind))) {
    err(`unknown implementation kind ${JSON.stringify(v.kind)}; known: ${IMPLEMENTATION_KINDS.join(', ')}`, `${field}.kind`);
  }
  return v;
}

/**
 * Merges the problems of parsing (parseRoleSpec) and of checking the parsed roles
 * (validateRoles) into one list: a check's problem with a field that parsing already
 * reported on for that role is the same problem seen twice, and is dropped.
 */
export function mergeRoleErrors(parsed: RoleError[], checked: RoleError[]): RoleError[] {
  const top = (e: RoleError) => `${e.file}\u0000${e.role ?? ''}\u0000${(e.field ?? '').split('.')[0]}`;
  const seen = new Set(parsed.map(top));
  return [...parsed, ...checked.filter((e) => !seen.has(top(e)))];
}

/**
 * A role object's spec (`{ name, workload, spec }` as the roles API and `Role` documents
 * carry it) parsed into its stored form, with its structural problems: fields as
 * parseRoleSpec reads them, and a spec whose `name` or `workload` disagrees with the object's.
 */
export function parseRoleObject(object: { name: string; workload?: unknown; spec?: unknown }): { role?: RoleSpec; errors: RoleError[] } {
  const errors: RoleError[] = [];
  const file = `role ${object.name}`;
  const err: RoleProblemSink = (message, role, field) => errors.push({ file, role: role ?? object.name, ...(field ? { field } : {}), message });
  const { workload: specWorkload, ...raw } = isObject(object.spec) ? object.spec : {};
  const workload = typeof object.workload === 'string' ? object.workload : typeof specWorkload === 'string' ? specWorkload : '';
  if (specWorkload !== undefined && specWorkload !== workload) err(`the spec says workload ${JSON.stringify(specWorkload)} but the role's "workload" is ${JSON.stringify(workload)}; give one`, object.name, 'workload');
  if (raw.name !== undefined && raw.name !== object.name) err(`the spec names role ${JSON.stringify(raw.name)} but the object is "${object.name}"; give one name`, object.name, 'name');
  const role = parseRoleSpec({ ...raw, name: object.name }, 0, workload, err);
  return { ...(role ? { role } : {}), errors };
}

/**
 * The one check every role write passes outside a pack — a role object created or changed
 * through `/api/v1/roles` or applied as a `Role` document — as packs pass it when loaded:
 * the spec is parsed (parseRoleObject), then checked against the catalogue it joins
 * (validateRoles: requires, self-requirement, cycles, schemas, `from`, implementation).
 * `files` are the files of the role's workload, when it has one (implementation files must
 * be among them). Returns the stored form and every problem.
 *
 * @example
 *   const { role, errors } = checkRoleObject({ name: 'web', workload: 'web', spec }, otherRoles);
 */
export function checkRoleObject(
  object: { name: string; workload?: unknown; spec?: unknown },
  catalogue: RoleSpec[],
  files?: Record<string, string>,
): { role?: RoleSpec; errors: RoleError[] } {
  const { role, errors } = parseRoleObject(object);
  if (!role) return { errors };
  const file = `role ${object.name}`;
  const checked = validateRoles([...catalogue.filter((r) => r.name !== role.name), role], {
    subjects: new Set([role]),
    fileOf: () => file,
    ...(files && role.workload ? { files: { [role.workload]: files } } : {}),
  });
  return { role, errors: mergeRoleErrors(errors, checked) };
}
