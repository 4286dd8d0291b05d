import { FormworkError } from '../core/errors.js';
import { kindByName, type KindDef, type StoredObject } from '../core/kinds.js';
import { validationError, type FieldProblem } from '../core/schema.js';
import { providerProblems } from '../providers/registry.js';
import { sameValue, type ApplyAction } from '../store/repository.js';
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

/** Removes the envelope fields (`kind`, `version`) from a body, checking `kind` names this kind. */
export function bodyFields(kind: KindDef, body: Record<string, unknown>): Record<string, unknown> {
  const { kind: k, version: _version, ...rest } = body;
  if (k !== undefined && kindByName(String(k)) !== kind) {
    throw new FormworkError('VALIDATION', `the body says kind "${String(k)}" but this is the ${kind.plural} endpoint`, {
      errors: [{ path: '/kind', message: `must be "${kind.kind}"` }],
    });
  }
  return rest;
}

/**
 * What a kind's schema cannot check, on the object as it would be stored: a provider's
 * type and settings, against its type's descriptor. Problems are relative to the object.
 */
export function checkObject(kind: KindDef, object: Record<string, unknown>): FieldProblem[] {
  return kind.plural === 'providers' ? providerProblems(object) : [];
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

/** Create-or-update by name (PUT and apply). Absent fields stay as they are; an identical document changes nothing. */
export async function applyObject(store: Store, kind: KindDef, fields: Record<string, unknown>, ctx: WriteCtx): Promise<{ object: StoredObject; action: ApplyAction }> {
  const name = fields.name as string;
  const repo = store.objects(kind.plural);
  const existing = await repo.find(name);
  if (!existing) {
    if (ctx.expectedVersion !== undefined) {
      throw new FormworkError('VERSION_MISMATCH', `${kind.singular} "${name}" does not exist, so it is not at version ${ctx.expectedVersion}`, {
        kind: kind.plural,
        key: name,
        expectedVersion: ctx.expectedVersion,
      });
    }
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
