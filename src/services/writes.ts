import { FormworkError } from '../core/errors.js';
import { kindByName, type KindDef, type StoredObject } from '../core/kinds.js';
import { roleFromObject, validateRoles, type RoleSpec } from '../core/roles.js';
import { checkRoleObject, parseRoleObject } from '../core/role-spec.js';
import { validationError, type FieldProblem } from '../core/schema.js';
import { providerAccessProblems, providerProblems } from '../providers/registry.js';
import { sameValue, versionMismatch, type ApplyAction } from '../store/repository.js';
import type { Store } from '../store/store.js';
import { sealWriteFields } from '../store/sealing.js';
import type { Services } from '../context/services.js';

/**
 * Writes shared by the CRUD routes, PUT and apply. Secrets go through the SecretStore
 * (their `data` is encrypted and never echoed); every other kind through its repository.
 *
 * @example
 *   await createObject(store, kind, { name: 'aws', data: { key: '…' } }, { actor: 'alice' });
 */

export interface WriteCtx {
  actor?: string;
  expectedVersion?: number;
  /** The other writes of the same apply, which the object's checks see as if made. */
  pending?: PendingWrites;
}

/**
 * Removes the envelope fields from a body, checking `kind` names this kind: `kind`, `version`
 * and `status` (what Formwork reports, as `get -o yaml` prints it; an apply document may carry it and it is ignored).
 */
export function bodyFields(kind: KindDef, body: Record<string, unknown>): Record<string, unknown> {
  const { kind: k, version: _version, status: _status, ...rest } = body;
  if (k !== undefined && kindByName(String(k)) !== kind) {
    throw new FormworkError('VALIDATION', `the body says kind "${String(k)}" but this is the ${kind.plural} endpoint`, {
      errors: [{ path: '/kind', message: `must be "${kind.kind}"` }],
    });
  }
  return rest;
}

/**
 * What the writes checked together will store (apply's documents, by kind and name) over
 * what is stored: a Role document may require a role another document of the same apply
 * creates, or run a file a Workload document of it adds.
 */
export type PendingWrites = Map<string, Map<string, Record<string, unknown>>>;

/**
 * What a kind's schema cannot check, on the object as it would be stored: a provider's
 * type and settings, against its type's descriptor; a role's
 * spec, by the checks packs pass (core/role-spec.ts); a workload's files, which its roles
 * run. Problems are relative to the object.
 */
export async function checkObject(store: Store, kind: KindDef, object: Record<string, unknown>, pending: PendingWrites = new Map()): Promise<FieldProblem[]> {
  if (kind.plural === 'roles') return checkRole(store, object, pending);
  if (kind.plural === 'workloads') return checkWorkloadFiles(store, object, pending);
  if (kind.plural !== 'providers') return [];
  const problems = providerProblems(object);
  return problems.length ? problems : providerAccessProblems(object, await credentialsOf(store, object, pending));
}

/** A provider object's credentials as its write would leave them: its Secret from the same apply, else the stored one. */
async function credentialsOf(store: Store, provider: Record<string, unknown>, pending: PendingWrites): Promise<Record<string, string> | undefined> {
  const name = provider.credentialsSecret;
  if (typeof name !== 'string' || !name) return undefined;
  const data = pending.get('secrets')?.get(name)?.data;
  if (data && typeof data === 'object') return data as Record<string, string>;
  return (await store.objects('secrets').find(name)) ? ((await store.secrets.reveal(name)) as Record<string, string>) : undefined;
}

/** The role catalogue the writes would leave: stored roles, with the pending ones in place of (or beside) them. */
export async function catalogueWith(store: Store, pending: PendingWrites): Promise<RoleSpec[]> {
  const byName = new Map((await store.objects('roles').all()).map((o) => [o.name, roleFromObject(o)] as const));
  for (const [name, o] of pending.get('roles') ?? []) {
    const { role } = parseRoleObject(o as RoleObject);
    if (role) byName.set(name, role);
  }
  return [...byName.values()];
}

async function workloadOf(store: Store, name: string, pending: PendingWrites): Promise<Record<string, unknown> | undefined> {
  return name ? (pending.get('workloads')?.get(name) ?? (await store.objects('workloads').find(name))) : undefined;
}

type RoleObject = { name: string; workload?: unknown; spec?: unknown };

const problemPath = (field: string | undefined) => (field ? `/${field.replace(/\[(\d+)\]/g, '.$1').split('.').join('/')}` : '');

async function checkRole(store: Store, object: Record<string, unknown>, pending: PendingWrites): Promise<FieldProblem[]> {
  const role = object as RoleObject;
  const workload = parseRoleObject(role).role?.workload ?? '';
  const files = (await workloadOf(store, workload, pending))?.files as Record<string, string> | undefined;
  const { errors } = checkRoleObject(role, await catalogueWith(store, pending), files);
  return errors.map((e) => ({ path: `/spec${problemPath(e.field)}`, message: `role "${role.name}": ${e.field ? `${e.field}: ` : ''}${e.message}` }));
}

/** A workload's files must still hold every file its roles run. */
async function checkWorkloadFiles(store: Store, object: Record<string, unknown>, pending: PendingWrites): Promise<FieldProblem[]> {
  const files = object.files;
  if (!files || typeof files !== 'object' || Array.isArray(files)) return [];
  const name = String(object.name);
  const catalogue = await catalogueWith(store, pending);
  const errors = validateRoles(catalogue, { subjects: new Set(catalogue.filter((r) => r.workload === name)), files: { [name]: files as Record<string, string> } });
  return errors
    .filter((e) => e.field === 'implementation.file')
    .map((e) => ({ path: '/files', message: `role "${e.role}" of workload "${name}": ${e.message}; add the file or change the role first` }));
}

/** The fields as stored: a role's spec in its parsed form (so the engine reads `inputs.n.schema`, not `inputs.n.type`). */
function storedFields(kind: KindDef, object: Record<string, unknown>, fields: Record<string, unknown>): Record<string, unknown> {
  if (kind.plural !== 'roles') return fields;
  const { role } = parseRoleObject(object as RoleObject);
  return role ? { ...fields, spec: role } : fields;
}

async function refuseProblems(store: Store, kind: KindDef, object: Record<string, unknown>, pending?: PendingWrites): Promise<void> {
  const problems = await checkObject(store, kind, object, pending);
  if (problems.length) throw validationError(problems, `${kind.singular} "${String(object.name)}"`);
}

export async function createObject(store: Store, kind: KindDef, fields: Record<string, unknown>, ctx: WriteCtx): Promise<StoredObject> {
  await refuseProblems(store, kind, fields, ctx.pending);
  if (kind.plural === 'secrets') {
    const { name, description, labels, data } = fields as { name: string; description?: string; labels?: Record<string, string>; data: unknown };
    return store.secrets.create({ name, description, labels, data }, { actor: ctx.actor });
  }
  return store.objects(kind.plural).create(await sealWriteFields(store, kind.plural, storedFields(kind, fields, fields), undefined), { actor: ctx.actor });
}

export async function updateObject(store: Store, kind: KindDef, idOrName: string, patch: Record<string, unknown>, ctx: WriteCtx): Promise<StoredObject> {
  if (kind.plural === 'secrets') {
    const { name, ...rest } = patch as { name?: string; description?: string; labels?: Record<string, string>; data?: unknown };
    if (name !== undefined) {
      const current = await store.objects('secrets').get(idOrName);
      if (current.name !== name) throw new FormworkError('VALIDATION', `secret "${current.name}" cannot be renamed`, { field: 'name' });
    }
    return store.secrets.update(idOrName, rest, ctx);
  }
  const current = await store.objects(kind.plural).get(idOrName);
  refuseDeleting(kind, current);
  const merged = { ...current, ...patch };
  await refuseProblems(store, kind, merged, ctx.pending);
  return store.objects(kind.plural).update(idOrName, await sealWriteFields(store, kind.plural, storedFields(kind, merged, patch), current), ctx);
}

/**
 * Refuses a write that expects a version (a document's `version`, If-Match) the object is
 * not at; a missing object is at no version. Without an expectation, anything goes.
 */
export function checkVersion(kind: KindDef, name: string, existing: StoredObject | undefined, expected: number | undefined): void {
  if (expected === undefined) return;
  if (!existing) {
    throw new FormworkError('VERSION_MISMATCH', `${kind.singular} "${name}" does not exist, so it is not at version ${expected}`, {
      kind: kind.plural,
      key: name,
      expectedVersion: expected,
    });
  }
  if (existing.version !== expected) throw versionMismatch(kind, existing, expected);
}

/**
 * Refuses a write to an object being deleted (DELETE marked it; a worker is removing what it
 * owns): a change now could make what the deletion is removing.
 */
export function refuseDeleting(kind: KindDef, existing: StoredObject | undefined): void {
  const deletion = existing?.deletion as { requestedAt?: string } | undefined;
  if (!existing || !deletion) return;
  throw new FormworkError(
    'CONFLICT',
    `${kind.singular} "${existing.name}" is being deleted (asked at ${deletion.requestedAt ?? 'an unknown time'}); wait until it is gone (\`formwork delete\` waits), then write it again`,
    { kind: kind.plural, key: existing.name, deletion },
  );
}

/** Create-or-update by name (PUT and apply). Absent fields stay as they are; an identical document changes nothing. */
export async function applyObject(store: Store, kind: KindDef, fields: Record<string, unknown>, ctx: WriteCtx): Promise<{ object: StoredObject; action: ApplyAction }> {
  const name = fields.name as string;
  const repo = store.objects(kind.plural);
  const existing = await repo.find(name);
  checkVersion(kind, name, existing, ctx.expectedVersion);
  refuseDeleting(kind, existing);
  if (!existing) {
    return { object: await createObject(store, kind, fields, ctx), action: 'created' };
  }
  const opts = { actor: ctx.actor, expectedVersion: ctx.expectedVersion ?? existing.version };
  let object: StoredObject;
  if (kind.plural === 'secrets') {
    const patch: Record<string, unknown> = { ...fields };
    delete patch.name;
    // Compared here, on the server, so an unchanged value is not a new version.
    if (patch.data !== undefined && sameValue(await store.secrets.reveal(existing.id), patch.data)) delete patch.data;
    object = await store.secrets.update(existing.id, patch, opts);
  } else {
    const merged = { ...existing, ...fields };
    await refuseProblems(store, kind, merged, ctx.pending);
    object = await repo.update(existing.id, await sealWriteFields(store, kind.plural, storedFields(kind, merged, fields), existing), opts);
  }
  return { object, action: object.version === existing.version ? 'unchanged' : 'updated' };
}

/** Fields a new object of this kind still lacks (for apply's validate-everything-first pass). */
export function missingRequired(kind: KindDef, fields: Record<string, unknown>): string[] {
  const missing = kind.fields.filter((f) => f.required && (fields[f.name] === undefined || fields[f.name] === null)).map((f) => f.name);
  if (kind.plural === 'secrets' && fields.data === undefined) missing.push('data');
  return missing;
}

/**
 * Deletes an object, or asks for its deletion: a kind with a deleter (services.deleters: the
 * kinds that own real resources) is only marked deleting, and the annealer deprovisions it
 * (`accepted`: the API answers 202); other kinds are deleted from the store at once. A role
 * that node-roles still use is refused: they could not run again.
 */
export async function deleteObject(services: Services, kind: KindDef, idOrName: string, ctx: WriteCtx): Promise<{ object: StoredObject; accepted: boolean }> {
  const deleter = services.deleters?.get(kind.plural);
  if (deleter) return { object: await deleter(idOrName, ctx), accepted: true };
  if (kind.plural !== 'roles') return { object: await services.store.objects(kind.plural).delete(idOrName, ctx), accepted: false };
  const object = await services.store.transaction(async (tx) => {
    const role = await tx.objects('roles').get(idOrName);
    await refuseRoleInUse(tx, role.name);
    return tx.objects('roles').delete(role.id, ctx);
  });
  return { object, accepted: false };
}

/** Throws CONFLICT naming the deployments and nodes whose node-roles run this role, if any do. */
export async function refuseRoleInUse(store: Store, role: string): Promise<void> {
  const rows = await store.db.selectFrom('noderoles').select(['deployment', 'node']).where('role', '=', role).execute();
  if (rows.length === 0) return;
  const byDeployment = new Map<string, string[]>();
  for (const r of rows) {
    const nodes = byDeployment.get(r.deployment as string) ?? [];
    if (r.node) nodes.push(r.node as string);
    byDeployment.set(r.deployment as string, nodes);
  }
  const usedBy = [...byDeployment].sort(([a], [b]) => (a < b ? -1 : 1)).map(([deployment, nodes]) => ({ deployment, nodes: nodes.sort() }));
  const named = usedBy.map((u) => `deployment "${u.deployment}" (node${u.nodes.length === 1 ? '' : 's'} ${u.nodes.join(', ')})`).join(', ');
  throw new FormworkError(
    'CONFLICT',
    `role "${role}" is still used by ${rows.length} node-role${rows.length === 1 ? '' : 's'}: ${named}; remove its bindings from those deployments and apply them, or delete the deployments, then delete the role`,
    { kind: 'roles', key: role, usedBy },
  );
}
