import { Type, type TSchema } from 'typebox';
import type { FieldDef, KindDef } from '../core/kinds.js';
import { USER_ROLES } from '../store/auth.js';

/**
 * Document, request and response schemas derived from the kind descriptors (core/kinds.ts),
 * so apply's checks, the API's validation and its OpenAPI document follow the descriptors
 * with no second copy.
 *
 * @example
 *   const s = kindSchemas(kindByName('nodes')!);
 *   app.post('/api/v1/nodes', { schema: { body: s.create } }, …);
 */

export const NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._:@-]{0,252}$';
export const LABEL_KEY_PATTERN = '^[a-zA-Z0-9._/-]{1,63}$';

export const Labels = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String(), {
  description: 'Labels: string keys (letters, digits, ".", "_", "/", "-") to string values',
});

const Name = Type.String({ pattern: NAME_PATTERN, description: 'Unique within the kind' });

/** The JSON Schema of one field's value. Exceptions to the descriptors live here and only here. */
function fieldSchema(kind: KindDef, f: FieldDef, opts: { nullable?: boolean; forResponse?: boolean } = {}): TSchema {
  const extra: Record<string, unknown> = {};
  if (f.description) extra.description = f.description;
  if (f.readOnly) extra.readOnly = true;
  if (opts.nullable) extra.nullable = true;
  switch (f.type) {
    case 'string':
      if (kind.plural === 'users' && f.name === 'role' && !opts.forResponse) {
        return Type.Unsafe({ type: 'string', enum: [...USER_ROLES], ...extra });
      }
      return Type.String(extra);
    case 'integer':
      return Type.Integer(extra);
    case 'boolean':
      return Type.Boolean(extra);
    case 'json':
      if (f.schema && !opts.forResponse) return Type.Unsafe({ ...f.schema, ...extra });
      // Any JSON value (null included; ajv refuses `nullable` without `type`).
      delete extra.nullable;
      return Type.Unsafe({ ...extra });
  }
}

export interface KindSchemas {
  /** POST body: name required, required fields required, read-only fields refused. */
  create: TSchema;
  /** PATCH body: every field optional, `null` clears, `version` allowed. */
  patch: TSchema;
  /** PUT body (and one apply document): like patch, but without null. */
  put: TSchema;
  /** An apply document: `kind` required. */
  applyDoc: TSchema;
  object: TSchema;
  list: TSchema;
  listQuery: TSchema;
  params: TSchema;
}

const VERSION = Type.Integer({ minimum: 1, description: 'Optimistic concurrency: the version you read (same as If-Match)' });

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
  const kindField = Type.String({ description: `"${kind.kind}" (optional; lets a whole document be sent as is)` });
  const secretData = Type.Record(Type.String(), Type.String(), {
    description: 'The secret value: an object of strings. Write-only: never returned.',
    writeOnly: true,
  });

  const createProps: Record<string, TSchema> = { kind: Type.Optional(kindField), name: Name, labels: Type.Optional(Labels) };
  const patchProps: Record<string, TSchema> = { kind: Type.Optional(kindField), name: Type.Optional(Name), labels: Type.Optional(Type.Unsafe({ ...Labels, nullable: true })), version: Type.Optional(VERSION) };
  const putProps: Record<string, TSchema> = { kind: Type.Optional(kindField), name: Type.Optional(Name), labels: Type.Optional(Labels), version: Type.Optional(VERSION) };
  for (const f of writable) {
    createProps[f.name] = f.required ? fieldSchema(kind, f) : Type.Optional(fieldSchema(kind, f));
    patchProps[f.name] = Type.Optional(fieldSchema(kind, f, { nullable: !f.required }));
    putProps[f.name] = Type.Optional(fieldSchema(kind, f));
  }
  if (kind.plural === 'secrets') {
    createProps.data = secretData;
    patchProps.data = Type.Optional(secretData);
    putProps.data = Type.Optional(secretData);
  }
  const objProps: Record<string, TSchema> = {
    id: Type.String(),
    name: Type.String(),
    version: Type.Integer(),
    labels: Type.Record(Type.String(), Type.String()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  };
  for (const f of kind.fields) objProps[f.name] = Type.Optional(fieldSchema(kind, f, { forResponse: true }));
  const object = Type.Object(objProps, { additionalProperties: true, description: kind.description });

  const queryProps: Record<string, TSchema> = {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Page size (default 100)' })),
    after: Type.Optional(Type.String({ description: 'The `next` of the previous page' })),
    label: Type.Optional(Type.Array(Type.String({ pattern: '^[^=]+=.*$' }), { description: 'A label filter `key=value`; repeatable' })),
    labelSelector: Type.Optional(Type.String({ description: 'Label filters `k=v,k2=v2`' })),
    name: Type.Optional(Type.String()),
  };
  for (const f of kind.fields.filter((x) => x.filterable)) {
    queryProps[f.name] = Type.Optional(Type.String({ description: `Only ${kind.plural} whose ${f.name} is this` }));
  }

  return {
    create: Type.Object(createProps, { additionalProperties: false }),
    patch: Type.Object(patchProps, { additionalProperties: false }),
    put: Type.Object(putProps, { additionalProperties: false }),
    applyDoc: Type.Object({ ...putProps, kind: kindField, name: Name }, { additionalProperties: false }),
    object,
    list: Type.Object({ items: Type.Array(object), next: Type.Optional(Type.String()) }),
    listQuery: Type.Object(queryProps, { additionalProperties: false }),
    params: Type.Object({ idOrName: Type.String({ description: 'The id or the name' }) }),
  };
}
