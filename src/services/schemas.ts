import type { FieldDef, KindDef } from '../core/kinds.js';
import { USER_ROLES } from '../core/users.js';

/**
 * Document, request and response schemas derived from the kind descriptors (core/kinds.ts),
 * so apply's checks, the API's validation and its OpenAPI document follow the descriptors
 * with no second copy.
 *
 * Plain JSON Schema, built by the few helpers below rather than TypeBox: apply needs these
 * on `formwork up`'s critical path, and TypeBox (the API's route schemas) is 30 ms of a cold
 * start that the server now spends after the first hosts are being made.
 *
 * @example
 *   const s = kindSchemas(kindByName('nodes')!);
 *   app.post('/api/v1/nodes', { schema: { body: s.create } }, …);
 */

export type JsonSchema = Record<string, unknown>;

export const NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._:@-]{0,252}$';
export const LABEL_KEY_PATTERN = '^[a-zA-Z0-9._/-]{1,63}$';

const string = (extra: JsonSchema = {}): JsonSchema => ({ type: 'string', ...extra });
const integer = (extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', ...extra });
const array = (items: JsonSchema, extra: JsonSchema = {}): JsonSchema => ({ type: 'array', items, ...extra });
/** An object whose keys match `keyPattern`, each value matching `value`. */
const record = (value: JsonSchema, extra: JsonSchema = {}, keyPattern = '^.*$'): JsonSchema => ({ type: 'object', patternProperties: { [keyPattern]: value }, ...extra });

const optionals = new WeakSet<JsonSchema>();
/** Marks a property of `object()` as not required. */
function optional(schema: JsonSchema): JsonSchema {
  const copy = { ...schema };
  optionals.add(copy);
  return copy;
}
/** An object with these properties; those not marked `optional()` are required. */
function object(properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema {
  const required = Object.keys(properties).filter((k) => !optionals.has(properties[k]));
  return { type: 'object', ...(required.length ? { required } : {}), properties, ...extra };
}

export const Labels = record(string(), { description: 'Labels: string keys (letters, digits, ".", "_", "/", "-") to string values' }, LABEL_KEY_PATTERN);

const Name = string({ pattern: NAME_PATTERN, description: 'Unique within the kind' });

/** The JSON Schema of one field's value. Exceptions to the descriptors live here and only here. */
function fieldSchema(kind: KindDef, f: FieldDef, opts: { nullable?: boolean; forResponse?: boolean } = {}): JsonSchema {
  const extra: Record<string, unknown> = {};
  if (f.description) extra.description = f.description;
  if (f.readOnly) extra.readOnly = true;
  if (opts.nullable) extra.nullable = true;
  switch (f.type) {
    case 'string':
      if (kind.plural === 'users' && f.name === 'role' && !opts.forResponse) {
        return { type: 'string', enum: [...USER_ROLES], ...extra };
      }
      return string(extra);
    case 'integer':
      return integer(extra);
    case 'boolean':
      return { type: 'boolean', ...extra };
    case 'json':
      if (f.schema && !opts.forResponse) return { ...f.schema, ...extra };
      // Any JSON value (null included; ajv refuses `nullable` without `type`).
      delete extra.nullable;
      return { ...extra };
  }
}

export interface KindSchemas {
  /** POST body: name required, required fields required, read-only fields refused. */
  create: JsonSchema;
  /** PATCH body: every field optional, `null` clears, `version` allowed. */
  patch: JsonSchema;
  /** PUT body (and one apply document): like patch, but without null. */
  put: JsonSchema;
  /** An apply document: `kind` required. */
  applyDoc: JsonSchema;
  object: JsonSchema;
  list: JsonSchema;
  listQuery: JsonSchema;
  params: JsonSchema;
}

const VERSION = integer({ minimum: 1, description: 'Optimistic concurrency: the version you read (same as If-Match)' });

const STATUS = { type: 'object', description: 'What Formwork reports (id, times, read-only fields), as `get -o yaml` prints it; apply ignores it' };

const memo = new Map<KindDef, KindSchemas>();

/** The schemas of a kind (memoized: the same objects every time, so validators compile once). */
export function kindSchemas(kind: KindDef): KindSchemas {
  let s = memo.get(kind);
  if (!s) {
    s = buildKindSchemas(kind);
    memo.set(kind, s);
  }
  return s;
}

function buildKindSchemas(kind: KindDef): KindSchemas {
  const writable = kind.fields.filter((f) => !f.readOnly);
  const kindField = string({ description: `"${kind.kind}" (optional; lets a whole document be sent as is)` });
  const secretData = record(string(), {
    description: 'The secret value: an object of strings. Write-only: never returned.',
    writeOnly: true,
  });

  const createProps: Record<string, JsonSchema> = { kind: optional(kindField), name: Name, labels: optional(Labels) };
  const patchProps: Record<string, JsonSchema> = { kind: optional(kindField), name: optional(Name), labels: optional({ ...Labels, nullable: true }), version: optional(VERSION) };
  const putProps: Record<string, JsonSchema> = { kind: optional(kindField), name: optional(Name), labels: optional(Labels), version: optional(VERSION) };
  for (const f of writable) {
    createProps[f.name] = f.required ? fieldSchema(kind, f) : optional(fieldSchema(kind, f));
    patchProps[f.name] = optional(fieldSchema(kind, f, { nullable: !f.required }));
    putProps[f.name] = optional(fieldSchema(kind, f));
  }
  if (kind.plural === 'secrets') {
    createProps.data = secretData;
    patchProps.data = optional(secretData);
    putProps.data = optional(secretData);
  }
  const objProps: Record<string, JsonSchema> = {
    id: string(),
    name: string(),
    version: integer(),
    labels: record(string()),
    createdAt: string(),
    updatedAt: string(),
  };
  for (const f of kind.fields) objProps[f.name] = optional(fieldSchema(kind, f, { forResponse: true }));
  const obj = object(objProps, { additionalProperties: true, description: kind.description });

  const queryProps: Record<string, JsonSchema> = {
    limit: optional(integer({ minimum: 1, maximum: 1000, description: 'Page size (default 100)' })),
    after: optional(string({ description: 'The `next` of the previous page' })),
    label: optional(array(string({ pattern: '^[^=]+=.*$' }), { description: 'A label filter `key=value`; repeatable' })),
    labelSelector: optional(string({ description: 'Label filters `k=v,k2=v2`' })),
    name: optional(string()),
  };
  for (const f of kind.fields.filter((x) => x.filterable)) {
    queryProps[f.name] = optional(string({ description: `Only ${kind.plural} whose ${f.name} is this` }));
  }

  return {
    create: object(createProps, { additionalProperties: false }),
    patch: object(patchProps, { additionalProperties: false }),
    put: object(putProps, { additionalProperties: false }),
    applyDoc: object({ ...putProps, kind: kindField, name: Name, status: optional(STATUS) }, { additionalProperties: false }),
    object: obj,
    list: object({ items: array(obj), next: optional(string()) }),
    listQuery: object(queryProps, { additionalProperties: false }),
    params: object({ idOrName: string({ description: 'The id or the name' }) }),
  };
}
