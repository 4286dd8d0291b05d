import { createHash, createHmac, randomBytes } from 'node:crypto';
import { FormworkError } from './errors.js';
import { compileSchema, stableStringify } from './schema.js';
import { parseExpression, type PathSegment } from './expressions.js';
import type { AttribSpec, RoleSpec } from './roles.js';

/**
 * Attrib resolution: the inputs a node-role runs with, from its overrides, its node, its
 * deployment, `from` expressions (node facts, parents' outputs), and defaults — in the
 * precedence documented in docs/attribs.md. Pure: no I/O (the caller gathers the context).
 *
 * @example
 *   const { inputs, sources } = resolveInputs(role, { noderole, node, deployment, parents, peers, workloadDefaults });
 *   if (hashInputs(inputs) !== noderole.inputHash) { … the inputs changed: run again … }
 *   // secret inputs, by role or by value: src/engine/secrecy.ts
 */

/** Key in a node-role's `attribs` holding values generated at bind time (`default: generated`). */
export const GENERATED_KEY = '$generated';
/**
 * Key in a node-role's `attribs` marking it as leaving its node: its binding was removed and
 * its role has a `removal` step, which the engine runs before deleting it (docs/workloads.md).
 */
export const REMOVING_KEY = '$removing';

/** Whether a node-role's attribs (an object, or its stored JSON text) mark it as being removed. */
export function isRemoving(attribs: unknown): boolean {
  const a = typeof attribs === 'string' ? (JSON.parse(attribs) as unknown) : attribs;
  return !!a && typeof a === 'object' && (a as Record<string, unknown>)[REMOVING_KEY] === true;
}

/** An override value `{ "$from": "outputs(etcd-member).client-url" }` is an expression, evaluated at resolve time. */
export const FROM_KEY = '$from';
export const REDACTED = '[redacted]';
/**
 * A value given for a secret input is stored as `{ "$sealed": "v2:…" }`: its JSON, encrypted
 * with the store's key for its owner on every write (src/store/sealing.ts), and opened
 * only to run (src/engine/inputs.ts).
 */
export const SEALED_KEY = '$sealed';

/** Whether `v` is a sealed value (`{ "$sealed": "v2:…" }`). */
export function isSealed(v: unknown): v is { [SEALED_KEY]: string } {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === SEALED_KEY && typeof (v as Record<string, unknown>)[SEALED_KEY] === 'string';
}

// ---------------------------------------------------------------------------------------
// Expressions as override values (parsing: core/expressions.ts)

/** True when a value given as an override is an expression (a string that parses, or `{from}` / `{$from}`). */
export function isExpressionValue(v: unknown): boolean {
  return expressionOf(v) !== undefined;
}

function expressionOf(v: unknown): string | undefined {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    const o = v as Record<string, unknown>;
    if (keys.length === 1 && typeof o[FROM_KEY] === 'string') return o[FROM_KEY] as string;
  }
  return undefined;
}

/**
 * How a deployment document's binding input is stored in node-role attribs: a string that
 * is a valid expression (or `{ from: "…" }`) becomes `{ $from: "…" }`; anything else stays a literal.
 */
export function normalizeOverride(v: unknown): unknown {
  if (typeof v === 'string' && !('error' in parseExpression(v))) return { [FROM_KEY]: v.trim() };
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && (keys[0] === 'from' || keys[0] === FROM_KEY) && typeof o[keys[0]] === 'string') return { [FROM_KEY]: o[keys[0]] };
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Context

export interface ResolveAddress {
  address: string;
  family?: number;
  role: string;
  network?: string;
}
export interface ResolveNode {
  name: string;
  addresses?: ResolveAddress[];
  attribs?: Record<string, unknown>;
  [field: string]: unknown;
}
export interface ResolveParent {
  /** The parent node-role's name. */
  name: string;
  role: string;
  /** The aliases the parent's role provides (lets `outputs(ALIAS)` match it). */
  provides?: string[];
  node?: string;
  outputs?: Record<string, unknown>;
}
export interface Peer {
  /** The member node-role's name. */
  name: string;
  node: string;
  addresses: { public: string[]; private: string[] };
}
export interface ResolveContext {
  noderole: { name: string; attribs?: Record<string, unknown> };
  node?: ResolveNode;
  deployment: { name: string; attribs?: Record<string, unknown> };
  /** The node-role's parents (in the order of its `parents`), with their last outputs. */
  parents?: ResolveParent[];
  /** For cluster roles: every member, in node order (see clusterPeers). */
  peers?: Peer[];
  /** The `defaults` of the role's workload. */
  workloadDefaults?: Record<string, unknown>;
}

export type InputSource = 'noderole' | 'node' | 'deployment' | 'from' | 'peers' | 'default' | 'generated' | 'workload';

export interface ResolvedInputs {
  inputs: Record<string, unknown>;
  /** Which level each input came from. */
  sources: Record<string, InputSource>;
}

/** The address strings of one network role, IPv4 before IPv6, otherwise in stored order. */
export function addressesOf(node: ResolveNode | undefined, role: string): string[] {
  const list = (node?.addresses ?? []).filter((a) => a.role === role);
  return [...list.filter((a) => a.family !== 6), ...list.filter((a) => a.family === 6)].map((a) => a.address);
}

/**
 * The `peers` of a cluster role's node-role: every node-role of that role in the
 * deployment, ordered as `nodes` (the deployment's node order).
 */
export function clusterPeers(members: Array<{ name: string; node?: string | null }>, nodes: ResolveNode[]): Peer[] {
  const index = new Map(nodes.map((n, i) => [n.name, i] as const));
  return members
    .filter((m) => m.node && index.has(m.node))
    .sort((a, b) => index.get(a.node!)! - index.get(b.node!)!)
    .map((m) => {
      const n = nodes[index.get(m.node!)!];
      return { name: m.name, node: n.name, addresses: { public: addressesOf(n, 'public'), private: addressesOf(n, 'private') } };
    });
}

function getPath(v: unknown, path: PathSegment[]): unknown {
  let cur = v;
  for (const seg of path) {
    if (cur === null || cur === undefined) return undefined;
    if (typeof seg === 'number') cur = Array.isArray(cur) ? cur[seg] : undefined;
    else cur = typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return cur;
}

function wantsArray(spec: AttribSpec | undefined): boolean {
  const t = spec?.schema?.type;
  return t === 'array' || (Array.isArray(t) && t.includes('array'));
}

/**
 * Evaluates an expression in a context. `outputs(ROLE).FIELD` collects FIELD from every
 * parent that is (or provides) ROLE, in parent order, skipping parents without it: the
 * list when the input's schema is an array or more than one parent has it, the single
 * value when exactly one does, undefined when none does.
 */
export function evaluateExpression(expr: string, ctx: ResolveContext, spec?: AttribSpec): unknown {
  const p = parseExpression(expr);
  if ('error' in p) throw new FormworkError('INPUT_INVALID', p.error, { noderole: ctx.noderole.name, expression: expr });
  if (p.kind === 'deployment') return getPath(ctx.deployment, p.path);
  if (p.kind === 'node') {
    if (!ctx.node) return undefined;
    if (p.path[0] === 'addresses' && typeof p.path[1] === 'string') {
      return getPath(addressesOf(ctx.node, p.path[1]), p.path.slice(2));
    }
    return getPath(ctx.node, p.path);
  }
  const values = (ctx.parents ?? [])
    .filter((par) => par.role === p.role || (par.provides ?? []).includes(p.role))
    .map((par) => getPath(par.outputs, p.path))
    .filter((v) => v !== undefined);
  if (values.length === 0) return undefined;
  if (wantsArray(spec)) return values;
  return values.length === 1 ? values[0] : values;
}

// ---------------------------------------------------------------------------------------
// Resolution

function own(o: Record<string, unknown> | undefined, key: string): unknown {
  return o && Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/**
 * The inputs of a node-role. Precedence, highest first (docs/attribs.md):
 * node-role override > node attribs > deployment attribs > the input's `from` expression
 * (cluster roles: `peers`) > role default (`generated`: the value fixed at bind time) > workload defaults.
 * An override that is an expression (`{ $from }`) is evaluated; one that gives nothing
 * falls through to the next level. Throws INPUT_INVALID naming the role, node and field.
 */
export function resolveInputs(role: RoleSpec, ctx: ResolveContext): ResolvedInputs {
  const inputs: Record<string, unknown> = {};
  const sources: Record<string, InputSource> = {};
  const specs: Record<string, AttribSpec> = { ...role.inputs };
  const isCluster = role.flags.includes('cluster');
  if (isCluster && !specs.peers) specs.peers = { schema: { type: 'array' } };
  const where = `role "${role.name}"${ctx.node ? ` on node "${ctx.node.name}"` : ''} (${ctx.noderole.name})`;
  const fail = (field: string, message: string) =>
    new FormworkError('INPUT_INVALID', `input "${field}" of ${where}: ${message}`, {
      role: role.name,
      node: ctx.node?.name ?? null,
      noderole: ctx.noderole.name,
      field,
    });
  const value = (v: unknown, spec: AttribSpec, field: string): unknown => {
    const expr = expressionOf(v);
    if (expr === undefined) return v;
    try {
      return evaluateExpression(expr, ctx, spec);
    } catch (e) {
      throw fail(field, e instanceof Error ? e.message : String(e));
    }
  };

  for (const [name, spec] of Object.entries(specs)) {
    const levels: Array<[InputSource, () => unknown]> = [
      ['noderole', () => (name.startsWith('$') ? undefined : own(ctx.noderole.attribs, name))],
      ['node', () => own(ctx.node?.attribs, name)],
      ['deployment', () => own(ctx.deployment.attribs, name)],
      ['from', () => (spec.from !== undefined ? { [FROM_KEY]: spec.from } : undefined)],
      ['peers', () => (isCluster && name === 'peers' ? ctx.peers : undefined)],
      [spec.default === 'generated' ? 'generated' : 'default', () => {
        if (spec.default !== 'generated') return spec.default;
        const g = own(own(ctx.noderole.attribs, GENERATED_KEY) as Record<string, unknown> | undefined, name);
        if (g === undefined) throw fail(name, 'its generated value is missing (it is created when the role is bound; re-apply the deployment)');
        return g;
      }],
      ['workload', () => own(ctx.workloadDefaults, name)],
    ];
    for (const [source, get] of levels) {
      const v = value(get(), spec, name);
      if (v !== undefined) {
        inputs[name] = v;
        sources[name] = source;
        break;
      }
    }
    if (inputs[name] === undefined) {
      if (spec.required) throw fail(name, 'no value: set it on the node-role, the node or the deployment, or give the role a default');
      continue;
    }
    if (spec.schema) {
      const c = compileSchema(spec.schema);
      if ('error' in c) throw fail(name, `the role's schema is invalid: ${c.error}`);
      if (!c.validate(inputs[name])) {
        const shown = spec.secret ? '' : ` ${truncate(JSON.stringify(inputs[name]))}`;
        throw fail(name, `the value${shown} (from ${sources[name]}) does not match the schema: ${c.errors()}`);
      }
    }
  }
  return { inputs, sources };
}

function truncate(s: string | undefined, n = 200): string {
  if (s === undefined) return 'undefined';
  return s.length > n ? s.slice(0, n) + '…' : s;
}

/** A stable hash of resolved inputs ("sha256:<hex>"), independent of key order. */
export function hashInputs(inputs: Record<string, unknown>, key?: Buffer): string {
  // Keyed where a key is given (the engine gives the store's): the hash is shown beside the
  // other inputs, and a plain one would let a reader test guesses of a secret input offline.
  if (key) return 'hmac-sha256:' + createHmac('sha256', key).update(stableStringify(inputs)).digest('hex');
  return 'sha256:' + createHash('sha256').update(stableStringify(inputs)).digest('hex');
}

/** A random token for `default: generated` (32 url-safe characters). */
export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The `$generated` values a node-role needs: keeps the ones it has, takes the ones a
 * cluster sibling already has (members of a cluster share them, e.g. a cluster token),
 * and generates the rest. Returns undefined when the role has no generated input.
 */
export function generatedValues(
  role: RoleSpec,
  current: Record<string, unknown> | undefined,
  sibling: Record<string, unknown> | undefined,
  random: () => string = randomToken,
): Record<string, unknown> | undefined {
  const names = Object.entries(role.inputs).filter(([, s]) => s.default === 'generated').map(([n]) => n).sort();
  if (names.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const n of names) {
    out[n] = own(current, n) ?? (role.flags.includes('cluster') ? own(sibling, n) : undefined) ?? random();
  }
  return out;
}
