import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { FormworkError } from './errors.js';

/**
 * JSON Schema validation, on two ajv instances shared by the whole process: `values` for
 * JSON values as they are (request bodies, documents, role inputs and outputs) and `text`
 * for values that arrive as text and are coerced (query strings, path parameters, headers).
 *
 * Schemas Formwork writes itself (kinds, API routes) compile as they are. Schemas that come
 * from users (a role's inputs and outputs) go through `compileSchema`, which first checks
 * them against JSON Schema's meta-schema so that a mistake in a pack is reported as one.
 * Why only those: ajv compiles the meta-schema on an instance's first check, about 25 ms of
 * a cold process, and the server used to pay it four times on its first requests.
 *
 * @example
 *   const validate = schemaAjv('values').compile({ type: 'object', required: ['name'] });
 *   const c = compileSchema(role.inputs.port.schema);
 *   if ('error' in c) throw new Error(c.error); else if (!c.validate(8080)) console.log(c.errors());
 */

// ajv-formats is CommonJS: under NodeNext its default export may sit on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (a: Ajv) => Ajv;

const OPTIONS: Record<'values' | 'text', Options> = {
  values: { allErrors: true, strict: false, coerceTypes: false, useDefaults: false, removeAdditional: false, validateSchema: false },
  text: { allErrors: true, strict: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, validateSchema: false },
};
const instances: Partial<Record<'values' | 'text', Ajv>> = {};

/** The process's ajv for JSON values (`values`) or for text coerced to the schema's types (`text`); made on first use. */
export function schemaAjv(kind: 'values' | 'text'): Ajv {
  return (instances[kind] ??= addFormats(new Ajv(OPTIONS[kind])));
}

export type CompiledSchema = { validate: (v: unknown) => boolean; errors: () => string } | { error: string };

const compiled = new Map<string, ValidateFunction>();

/** Compiles a user's JSON Schema (cached by content); `{ error }` when the schema itself is invalid. */
export function compileSchema(schema: unknown): CompiledSchema {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return { error: 'a schema must be an object' };
  const key = stableStringify(schema);
  let fn = compiled.get(key);
  if (!fn) {
    const ajv = schemaAjv('values');
    try {
      if (!ajv.validateSchema(schema)) return { error: `schema is invalid: ${ajv.errorsText(ajv.errors)}` };
      fn = ajv.compile(schema as Record<string, unknown>);
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
    compiled.set(key, fn);
  }
  const f = fn;
  return {
    validate: (v) => f(v) as boolean,
    errors: () => (f.errors ?? []).map((e) => `${e.instancePath || '(value)'} ${e.message ?? 'is invalid'}`).join('; '),
  };
}

/** JSON with object keys sorted at every level (a canonical form). */
export function stableStringify(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map((x) => stableStringify(x === undefined ? null : x)).join(',') + ']';
  const o = v as Record<string, unknown>;
  return '{' + Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => JSON.stringify(k) + ':' + stableStringify(o[k])).join(',') + '}';
}

// ---------------------------------------------------------------------------------------
// Problems, as Formwork reports them (a VALIDATION error lists each one)

export interface FieldProblem {
  path: string;
  message: string;
}

export interface AjvLikeError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Turns ajv errors into `{path, message}` items, naming unknown and read-only fields. */
export function schemaProblems(errors: AjvLikeError[], part: string, readOnly: Set<string> = new Set()): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let path = e.instancePath || '';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
      const field = e.params.additionalProperty;
      path = `${path}/${field}`;
      message =
        part === 'body' && path === `/${field}` && readOnly.has(field)
          ? `field "${field}" is read-only: Formwork sets it`
          : part === 'querystring'
            ? `unknown query parameter "${field}"`
            : `unknown field "${field}"`;
    } else if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string') {
      path = `${path}/${e.params.missingProperty}`;
      message = `field "${e.params.missingProperty}" is required`;
    } else if (e.keyword === 'enum' && Array.isArray(e.params?.allowedValues)) {
      message = `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    const full = part === 'body' ? path || '/' : `${part}${path}`;
    const key = `${full}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: full, message });
  }
  return out;
}

export function validationError(problems: FieldProblem[], prefix = 'the request'): FormworkError {
  const first = problems[0];
  const summary = first ? `${first.path}: ${first.message}` : 'invalid';
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return new FormworkError('VALIDATION', `${prefix} is invalid: ${summary}${more}`, { errors: problems });
}
