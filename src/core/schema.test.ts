import { describe, expect, it } from 'vitest';
import { compileSchema, schemaAjv, schemaProblems, stableStringify, validationError } from './schema.js';

describe('schema', () => {
  it("checks a user's schema against the meta-schema and reports what is wrong", () => {
    expect(compileSchema({ type: 'object', properties: { port: { type: 'integr' } } })).toMatchObject({ error: expect.stringContaining('schema is invalid') });
    expect(compileSchema({ minLength: 'three' })).toMatchObject({ error: expect.stringContaining('minLength') });
    expect(compileSchema([])).toEqual({ error: 'a schema must be an object' });
    const c = compileSchema({ type: 'integer', minimum: 1 });
    if ('error' in c) throw new Error(c.error);
    expect(c.validate(8080)).toBe(true);
    expect(c.validate(0)).toBe(false);
    expect(c.errors()).toBe('(value) must be >= 1');
  });

  it('coerces text for the `text` instance only', () => {
    const schema = { type: 'object', properties: { limit: { type: 'integer' } } };
    const text = { limit: '5' };
    expect(schemaAjv('text').compile(schema)(text)).toBe(true);
    expect(text.limit).toBe(5);
    expect(schemaAjv('values').compile(schema)({ limit: '5' })).toBe(false);
  });

  it('turns ajv errors into problems naming unknown, read-only and missing fields', () => {
    const validate = schemaAjv('values').compile({ type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } });
    expect(validate({ colour: 'red', id: 'x' })).toBe(false);
    const problems = schemaProblems(validate.errors ?? [], 'body', new Set(['id']));
    expect(problems).toEqual([
      { path: '/name', message: 'field "name" is required' },
      { path: '/colour', message: 'unknown field "colour"' },
      { path: '/id', message: 'field "id" is read-only: Formwork sets it' },
    ]);
    const e = validationError(problems, 'the node');
    expect(e).toMatchObject({ code: 'VALIDATION', message: 'the node is invalid: /name: field "name" is required (and 2 more problems)', details: { errors: problems } });
  });

  it('writes JSON with sorted keys at every level', () => {
    expect(stableStringify({ b: 1, a: { d: [2, undefined], c: null } })).toBe('{"a":{"c":null,"d":[2,null]},"b":1}');
  });
});
