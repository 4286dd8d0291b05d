import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Ajv, type ValidateFunction } from 'ajv';
import { Type } from 'typebox';
import { FormworkError } from '../../core/errors.js';
import { KINDS, kindByName, knownKindNames, type KindDef } from '../../core/kinds.js';
import type { Applier, ApplyResult, Services } from '../../services/services.js';

/**
 * Optional up-front check an applier may carry (`applier.validate = …`): the problems of
 * one document, paths relative to it. Apply runs it for every document before writing.
 */
export type ApplierValidate = (doc: Record<string, unknown>) => Promise<FieldProblem[]> | FieldProblem[];
import type { Store } from '../../store/store.js';
import { actorOf, requireRole, writeAccess } from '../auth.js';
import { ErrorResponse, kindSchemas } from '../schemas.js';
import { schemaProblems, validationError, type FieldProblem } from '../errors.js';
import { CREATED_BY_FORMWORK } from './objects.js';
import { applyObject, bodyFields, missingRequired } from '../writes.js';

/**
 * `POST /api/v1/apply`: declarative create-or-update of many documents at once (what
 * `formwork apply -f file.yaml` sends). Every document is checked first — kind, fields,
 * the caller's role, required fields of new objects — and one bad document refuses the
 * whole request with nothing written. Documents then apply in order: through a kind's
 * registered applier (services.appliers) or the store's generic apply, all in one
 * transaction when no custom applier is involved.
 */

const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, removeAdditional: false });
const validators = new Map<string, ValidateFunction>();

function validatorFor(kind: KindDef): ValidateFunction {
  let v = validators.get(kind.plural);
  if (!v) {
    v = ajv.compile(kindSchemas(kind).applyDoc as object);
    validators.set(kind.plural, v);
  }
  return v;
}

const ApplyBody = Type.Object(
  {
    documents: Type.Array(
      Type.Object(
        { kind: Type.String({ description: `One of ${KINDS.map((k) => k.kind).join(', ')}` }), name: Type.String() },
        { additionalProperties: true, description: 'A document: `kind`, `name` and the fields of that kind' },
      ),
      { description: 'The documents, applied in order' },
    ),
  },
  { additionalProperties: false },
);

const ApplyResponse = Type.Object({
  results: Type.Array(
    Type.Object({
      kind: Type.String(),
      name: Type.String(),
      action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]),
      object: Type.Object({}, { additionalProperties: true }),
    }),
  ),
});

interface Checked {
  kind: KindDef;
  fields: Record<string, unknown>;
  version?: number;
}

export async function applyRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/api/v1/apply', {
    config: { auth: 'viewer' }, // each document's kind is checked against the caller's role below
    // A single document, or a bare array of them, is accepted and wrapped.
    preValidation: async (request) => {
      const b = request.body as unknown;
      if (Array.isArray(b)) request.body = { documents: b };
      else if (b && typeof b === 'object' && !('documents' in b) && 'kind' in b) request.body = { documents: [b] };
    },
    schema: {
      tags: ['apply'],
      summary: 'Create or update many objects declaratively',
      description:
        'Body: `{documents: [...]}` as JSON, or a YAML (multi-document) stream with content-type application/yaml. ' +
        'All documents are validated first; any problem refuses the whole request and nothing is written. ' +
        'Applying the same documents again reports every one `unchanged`.',
      body: ApplyBody,
      response: { 200: ApplyResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 412: ErrorResponse },
    },
  }, async (request: FastifyRequest<{ Body: { documents: Record<string, unknown>[] } }>) => {
    const docs = request.body.documents;
    const store = services.store;
    const checked = await checkAll(store, services.appliers, docs, request);
    const actor = actorOf(request);
    const applyOne = async (s: Store, c: Checked): Promise<ApplyResult> => {
      const applier = services.appliers.get(c.kind.kind);
      if (applier) return applier({ ...c.fields, kind: c.kind.kind }, { actor });
      const { object, action } = await applyObject(s, c.kind, c.fields, { actor, expectedVersion: c.version });
      return { kind: c.kind.kind, name: object.name, action, object };
    };
    const anyCustom = checked.some((c) => services.appliers.has(c.kind.kind));
    const results: ApplyResult[] = [];
    if (anyCustom) {
      // Custom appliers use the services' store themselves, so no enclosing transaction.
      for (const c of checked) results.push(await applyOne(store, c));
    } else {
      await store.transaction(async (tx) => {
        for (const c of checked) results.push(await applyOne(tx, c));
      });
    }
    return { results };
  });
}

async function checkAll(store: Store, appliers: Services['appliers'], docs: Record<string, unknown>[], request: FastifyRequest): Promise<Checked[]> {
  const problems: FieldProblem[] = [];
  const out: Checked[] = [];
  const seen = new Map<string, number>();
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
    requireRole(request.principal, writeAccess(kind), `document ${i}: applying a ${kind.kind}`);
    const applier = appliers.get(kind.kind) as (Applier & { validate?: ApplierValidate }) | undefined;
    if (applier) {
      // A kind with its own applier takes its own document shape (e.g. a Deployment's
      // `nodes` and `roles`); the applier may check it up front with a `validate` property.
      for (const p of (await applier.validate?.(doc)) ?? []) problems.push({ path: `/documents/${i}${p.path === '/' ? '' : p.path}`, message: p.message });
      out.push({ kind, fields: bodyFields(kind, doc) });
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
    if (!(await store.objects(kind.plural).find(String(doc.name)))) {
      for (const f of missingRequired(kind, fields)) problems.push({ path: `/documents/${i}/${f}`, message: `field "${f}" is required for a new ${kind.singular}` });
    }
    out.push({ kind, fields, ...(typeof doc.version === 'number' ? { version: doc.version } : {}) });
  }
  if (problems.length) throw validationError(problems, `the documents (${problems.length} problem${problems.length > 1 ? 's' : ''}; nothing was applied)`);
  return out;
}
