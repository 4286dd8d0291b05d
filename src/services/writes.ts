import { FormworkError, isFormworkError } from '../core/errors.js';
import { kindByName, type KindDef, type StoredObject } from '../core/kinds.js';
import { validationError, type FieldProblem } from '../core/schema.js';
import { findDriver } from '../providers/registry.js';
import { sameValue, versionMismatch, type ApplyAction } from '../store/repository.js';
import type { Store } from '../store/store.js';

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
 * What a kind's schema cannot check, on the object as it would be stored: a provider's
 * settings, by its driver (a type without a driver yet is stored unchecked). Problems are
 * relative to the object.
 */
export function checkObject(kind: KindDef, object: Record<string, unknown>): FieldProblem[] {
  if (kind.plural !== 'providers' || typeof object.type !== 'string') return [];
  try {
    findDriver(object.type)?.checkSettings?.((object.settings ?? {}) as Record<string, unknown>, String(object.name));
    return [];
  } catch (e) {
    if (!isFormworkError(e) || e.code !== 'VALIDATION') throw e;
    const at = e.details?.field === 'name' ? '/name' : typeof e.details?.setting === 'string' ? `/settings/${e.details.setting}` : '/settings';
    return [{ path: at, message: e.message }];
  }
}

function refuseProblems(kind: KindDef, object: Record<string, unknown>): void {
  const problems = checkObject(kind, object);
  if (problems.length) throw validationError(problems, `${kind.singular} "${String(object.name)}"`);
}

export async function createObject(store: Store, kind: KindDef, fields: Record<string, unknown>, ctx: WriteCtx): Promise<StoredObject> {
  refuseProblems(kind, fields);
  if (kind.plural === 'secrets') {
    const { name, description, labels, data } = fields as { name: string; description?: string; labels?: Record<string, string>; data: unknown };
    return store.secrets.create({ name, description, labels, data }, { actor: ctx.actor });
  }
  return store.objects(kind.plural).create(fields, { actor: ctx.actor });
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
  if (kind.plural === 'providers') refuseProblems(kind, { ...(await store.objects(kind.plural).get(idOrName)), ...patch });
  return store.objects(kind.plural).update(idOrName, patch, ctx);
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

/** Create-or-update by name (PUT and apply). Absent fields stay as they are; an identical document changes nothing. */
export async function applyObject(store: Store, kind: KindDef, fields: Record<string, unknown>, ctx: WriteCtx): Promise<{ object: StoredObject; action: ApplyAction }> {
  const name = fields.name as string;
  const repo = store.objects(kind.plural);
  const existing = await repo.find(name);
  checkVersion(kind, name, existing, ctx.expectedVersion);
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
    refuseProblems(kind, { ...existing, ...fields });
    object = await repo.update(existing.id, fields, opts);
  }
  return { object, action: object.version === existing.version ? 'unchanged' : 'updated' };
}

/** Fields a new object of this kind still lacks (for apply's validate-everything-first pass). */
export function missingRequired(kind: KindDef, fields: Record<string, unknown>): string[] {
  const missing = kind.fields.filter((f) => f.required && (fields[f.name] === undefined || fields[f.name] === null)).map((f) => f.name);
  if (kind.plural === 'secrets' && fields.data === undefined) missing.push('data');
  return missing;
}
