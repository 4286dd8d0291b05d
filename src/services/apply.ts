import type { ValidateFunction } from 'ajv';
import { FormworkError } from '../core/errors.js';
import { CREATED_BY_FORMWORK, KINDS, kindByName, knownKindNames, type KindDef } from '../core/kinds.js';
import { schemaAjv, schemaProblems, validationError, type FieldProblem } from '../core/schema.js';
import type { Store } from '../store/store.js';
import { kindSchemas } from './schemas.js';
import type { Applier, ApplierValidate, ApplyResult, Services } from '../context/services.js';
import { applyObject, bodyFields, checkObject, missingRequired, type PendingWrites } from './writes.js';

/**
 * Declarative create-or-update of many documents at once: what `POST /api/v1/apply` and
 * `formwork server --apply FILE` do. Every document is checked first — kind, fields, the
 * caller's right to write it, required fields of new objects — and one bad document
 * refuses them all with nothing written. Documents then apply in order: through a kind's
 * registered applier (services.appliers) or the store's generic apply, all in one
 * transaction. Applying the same documents again reports every one `unchanged`.
 *
 * @example
 *   const results = await applyDocuments(services, [{ kind: 'Provider', name: 'lab', type: 'lab' }], { actor: 'admin' });
 *   // [{ kind: 'Provider', name: 'lab', action: 'created', object: {…} }]
 */

export interface ApplyDocumentsOptions {
  actor?: string;
  /** Throws when the caller may not write this kind (the API checks the token's role); default: allowed. */
  authorize?: (kind: KindDef, what: string) => void;
}

const validators = new Map<string, ValidateFunction>();

function validatorFor(kind: KindDef): ValidateFunction {
  let v = validators.get(kind.plural);
  if (!v) {
    v = schemaAjv('values').compile(kindSchemas(kind).applyDoc as object);
    validators.set(kind.plural, v);
  }
  return v;
}

interface Checked {
  kind: KindDef;
  fields: Record<string, unknown>;
  version?: number;
}

export async function applyDocuments(services: Services, docs: Record<string, unknown>[], opts: ApplyDocumentsOptions = {}): Promise<ApplyResult[]> {
  const store = services.store;
  const { checked, pending } = await checkAll(store, services.appliers, docs, opts);
  // One transaction for all of them, custom appliers included: a document refused while
  // being written (a Deployment whose roles cannot be planned) leaves nothing behind.
  const results = await store.transaction(async (tx) => {
    const out: ApplyResult[] = [];
    for (const c of checked) {
      const applier = services.appliers.get(c.kind.kind);
      if (applier) out.push(await applier({ ...c.fields, kind: c.kind.kind }, { actor: opts.actor, store: tx, expectedVersion: c.version }));
      else {
        const { object, action } = await applyObject(tx, c.kind, c.fields, { actor: opts.actor, expectedVersion: c.version, pending });
        out.push({ kind: c.kind.kind, name: object.name, action, object });
      }
    }
    return out;
  });
  // Appliers may have woken the engine before the commit; wake it again now that it can see the change.
  if (results.some((r) => r.action !== 'unchanged')) services.engine?.kick();
  // A provider's shared resources and services are made from the moment it is applied.
  const providers = results.filter((r) => r.kind === 'Provider' && r.action !== 'unchanged').map((r) => r.object);
  if (providers.length) services.prepareProviders?.(providers);
  return results;
}

async function checkAll(store: Store, appliers: Services['appliers'], docs: Record<string, unknown>[], opts: ApplyDocumentsOptions): Promise<{ checked: Checked[]; pending: PendingWrites }> {
  const problems: FieldProblem[] = [];
  const out: Checked[] = [];
  const seen = new Map<string, number>();
  const pending: PendingWrites = new Map();
  const toCheck: Array<{ index: number; kind: KindDef; object: Record<string, unknown> }> = [];
  const toValidate: Array<{ index: number; doc: Record<string, unknown>; validate: ApplierValidate }> = [];
  for (const [i, doc] of docs.entries()) {
    const kind = kindByName(String(doc.kind));
    if (!kind) {
      throw new FormworkError(
        'UNKNOWN_KIND',
        `document ${i} (name ${JSON.stringify(doc.name)}) has kind "${String(doc.kind)}", which Formwork does not know; known kinds: ${KINDS.map((k) => k.kind).join(', ')}`,
        { index: i, kind: doc.kind, known: knownKindNames() },
      );
    }
    if (kind.writableBy === 'nobody' || (CREATED_BY_FORMWORK.has(kind.plural) && !appliers.has(kind.kind))) {
      problems.push({ path: `/documents/${i}/kind`, message: `${kind.plural} are created by Formwork, not applied` });
      continue;
    }
    opts.authorize?.(kind, `document ${i}: applying a ${kind.kind}`);
    const applier = appliers.get(kind.kind) as (Applier & { validate?: ApplierValidate }) | undefined;
    if (applier) {
      // A kind with its own applier takes its own document shape (e.g. a Deployment's
      // `nodes` and `roles`); the applier may check it up front with a `validate` property.
      // `version` and `status` are the envelope's, as for every kind: apply checks the one and ignores the other.
      const { version, status: _status, ...own } = doc;
      if (version !== undefined && !(Number.isInteger(version) && (version as number) >= 1)) {
        problems.push({ path: `/documents/${i}/version`, message: 'must be the version you read: an integer from 1' });
      }
      if (applier.validate) toValidate.push({ index: i, doc: own, validate: applier.validate });
      out.push({ kind, fields: bodyFields(kind, own), ...(typeof version === 'number' ? { version } : {}) });
      continue;
    }
    const validate = validatorFor(kind);
    if (!validate(doc)) {
      for (const p of schemaProblems(validate.errors ?? [], 'body', new Set(kind.fields.filter((f) => f.readOnly).map((f) => f.name)))) {
        problems.push({ path: `/documents/${i}${p.path === '/' ? '' : p.path}`, message: p.message });
      }
      continue;
    }
    const key = `${kind.plural}/${String(doc.name)}`;
    if (seen.has(key)) {
      problems.push({ path: `/documents/${i}/name`, message: `${kind.kind} "${String(doc.name)}" is also document ${seen.get(key)}` });
      continue;
    }
    seen.set(key, i);
    const fields = bodyFields(kind, doc);
    const existing = await store.objects(kind.plural).find(String(doc.name));
    if (!existing) {
      for (const f of missingRequired(kind, fields)) problems.push({ path: `/documents/${i}/${f}`, message: `field "${f}" is required for a new ${kind.singular}` });
    }
    const object = { ...existing, ...fields };
    pending.set(kind.plural, (pending.get(kind.plural) ?? new Map()).set(String(doc.name), object));
    toCheck.push({ index: i, kind, object });
    out.push({ kind, fields, ...(typeof doc.version === 'number' ? { version: doc.version } : {}) });
  }
  // After every document is known: a role may require one that another document creates.
  for (const { index, kind, object } of toCheck) {
    for (const p of await checkObject(store, kind, object, pending)) problems.push({ path: `/documents/${index}${p.path}`, message: p.message });
  }
  for (const { index, doc, validate } of toValidate) {
    for (const p of await validate(doc, { store, pending })) problems.push({ path: `/documents/${index}${p.path === '/' ? '' : p.path}`, message: p.message });
  }
  // In document order: each document's checks ran in passes.
  const docIndex = (p: FieldProblem) => Number(/^\/documents\/(\d+)/.exec(p.path)?.[1] ?? -1);
  problems.sort((a, b) => docIndex(a) - docIndex(b));
  if (problems.length) throw validationError(problems, 'the set of documents (nothing was applied)');
  return { checked: out, pending };
}
