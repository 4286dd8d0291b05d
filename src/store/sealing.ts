/**
 * Sealing on every write path: the one place values given for secret inputs are encrypted
 * before the store (and so the API, events and logs) ever holds them. Deployment apply,
 * and the generic create/PATCH/PUT of deployments, nodes and node-roles, all go through
 * `sealAttribs`.
 *
 * Which names are secret: every input any stored role marks `secret` (the whole catalogue,
 * not only the roles bound now, so a value stays sealed when a role that reads it is bound
 * later). A value is sealed for its owner (`sealOwner`: the deployment for its attribs, its
 * bindings' inputs and its node-roles' attribs; the node for its own), with the owner as
 * authenticated data: a sealed value copied into another owner's attribs does not open.
 *
 * @example
 *   const attribs = sealAttribs(tx.secrets, { password: 'x' }, before, await secretInputNames(tx), sealOwner('deployments', doc), 'deployment "d"');
 *   // { password: { $sealed: 'v2:…' } }
 */
import { FROM_KEY, GENERATED_KEY, isSealed, normalizeOverride, SEALED_KEY } from '../core/attribs.js';
import { FormworkError } from '../core/errors.js';
import { roleFromObject } from '../core/roles.js';
import { sameValue } from './repository.js';
import { isSealedText, type SecretStore } from './secrets.js';
import type { Store } from './store.js';

/** The kinds whose objects carry attribs that feed role inputs. */
const ATTRIB_KINDS = new Set(['deployments', 'nodes', 'noderoles']);

/** Who a sealed value belongs to: `deployment:NAME` (its attribs, bindings, node-roles) or `node:NAME`. */
export function sealOwner(plural: string, object: { name?: unknown; deployment?: unknown }): string {
  if (plural === 'nodes') return `node:${String(object.name)}`;
  if (plural === 'noderoles') return `deployment:${String(object.deployment)}`;
  return `deployment:${String(object.name)}`;
}

/** Every input name a stored role marks `secret`. */
export async function secretInputNames(tx: Store): Promise<Set<string>> {
  const names = new Set<string>();
  for (const row of await tx.objects('roles').all()) {
    for (const [name, spec] of Object.entries(roleFromObject(row).inputs)) if (spec.secret) names.add(name);
  }
  return names;
}

/**
 * A copy of `attribs` with the value of every secret name sealed for `owner`. A value equal
 * to the one sealed before keeps its sealed form (re-applying changes nothing); `from`
 * expressions are not values and stay. Any sealed value given — under any name, `$generated`
 * included — must be the one stored before at that place or one sealed for this owner:
 * otherwise it was copied from another object (or store), and is refused.
 */
export function sealAttribs(
  secrets: SecretStore,
  attribs: Record<string, unknown>,
  before: Record<string, unknown> | undefined,
  secretNames: Set<string>,
  owner: string,
  where: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const opens = (sealed: string, prior: unknown): boolean => {
    if (prior === sealed || (isSealed(prior) && prior[SEALED_KEY] === sealed)) return true;
    if (!sealed.startsWith('v2:')) return false; // an unbound (v1) value could come from anywhere
    try {
      secrets.unseal(sealed, owner);
      return true;
    } catch {
      return false;
    }
  };
  const refuse = (name: string) =>
    new FormworkError('VALIDATION', `${where}: the sealed value of "${name}" was not sealed for this object (it was copied from another object or Formwork store); give the value itself`, {
      field: `attribs.${name}`,
    });
  for (const [name, value] of Object.entries(attribs)) {
    const prior = before?.[name];
    if (name === GENERATED_KEY && value && typeof value === 'object') {
      const priorGen = (prior && typeof prior === 'object' ? prior : {}) as Record<string, unknown>;
      for (const [g, v] of Object.entries(value as Record<string, unknown>)) if (isSealedText(v) && !opens(v, priorGen[g])) throw refuse(`${GENERATED_KEY}.${g}`);
      out[name] = value;
      continue;
    }
    if (isSealed(value)) {
      if (!opens(value[SEALED_KEY], prior)) throw refuse(name);
      out[name] = value;
      continue;
    }
    if (!secretNames.has(name) || normalizeOverride(value) !== value || isFrom(value)) {
      out[name] = value;
      continue;
    }
    if (isSealed(prior) && sameValue(JSON.parse(secrets.unseal(prior[SEALED_KEY], owner)), value)) {
      out[name] = prior;
      continue;
    }
    out[name] = { [SEALED_KEY]: secrets.seal(JSON.stringify(value), owner) };
  }
  return out;
}

function isFrom(v: unknown): boolean {
  return !!v && typeof v === 'object' && !Array.isArray(v) && FROM_KEY in v;
}

/**
 * The fields of a generic write (create, PATCH, PUT) of a deployment, node or node-role
 * with its attribs sealed — and a deployment's bindings' inputs, which apply copies into
 * node-roles. Other kinds are returned as they are.
 */
export async function sealWriteFields(tx: Store, plural: string, fields: Record<string, unknown>, existing: Record<string, unknown> | undefined): Promise<Record<string, unknown>> {
  if (!ATTRIB_KINDS.has(plural)) return fields;
  const attribs = fields.attribs;
  const spec = fields.spec as { roles?: Record<string, { inputs?: Record<string, unknown> }> } | undefined;
  const bindings = plural === 'deployments' && spec && typeof spec === 'object' && spec.roles && typeof spec.roles === 'object' ? spec.roles : undefined;
  if ((!attribs || typeof attribs !== 'object') && !bindings) return fields;
  const names = await secretInputNames(tx);
  const owner = sealOwner(plural, { ...existing, ...fields });
  const where = `${plural.slice(0, -1)} "${String(fields.name ?? existing?.name)}"`;
  const out = { ...fields };
  if (attribs && typeof attribs === 'object' && !Array.isArray(attribs)) {
    out.attribs = sealAttribs(tx.secrets, attribs as Record<string, unknown>, existing?.attribs as Record<string, unknown> | undefined, names, owner, where);
  }
  if (bindings) {
    const beforeRoles = ((existing?.spec as typeof spec)?.roles ?? {}) as Record<string, { inputs?: Record<string, unknown> }>;
    const roles: Record<string, unknown> = {};
    for (const [role, b] of Object.entries(bindings)) {
      roles[role] = b && typeof b === 'object' && b.inputs && typeof b.inputs === 'object'
        ? { ...b, inputs: sealAttribs(tx.secrets, b.inputs, beforeRoles[role]?.inputs, names, owner, `${where}, role "${role}"`) }
        : b;
    }
    out.spec = { ...spec, roles };
  }
  return out;
}
