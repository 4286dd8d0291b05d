/**
 * Outputs of a run: a JSON object whose declared fields match the role's output schemas.
 * Anything else is OUTPUT_INVALID (not retryable), naming the role, the node and the field.
 */
import { compileSchema } from '../core/schema.js';
import { FormworkError } from '../core/errors.js';
import type { RoleSpec } from '../core/roles.js';

function where(role: RoleSpec, node: string | undefined): string {
  return `role ${role.name}${node ? ` on node ${node}` : ''}`;
}

/** Parses the text of an outputs file. Empty (or no file) means `{}`. */
export function parseOutputs(text: string | undefined, role: RoleSpec, node: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Neither the text nor JSON.parse's message (which quotes it) goes into the error: the
    // outputs may hold a secret, and errors are shown to every reader of the node-role.
    throw new FormworkError('OUTPUT_INVALID', `${where(role, node)} wrote outputs that are not JSON (${text.length} characters); the outputs file must hold one JSON object`, {
      role: role.name,
      node,
    });
  }
  return checkObject(value, role, node);
}

function checkObject(value: unknown, role: RoleSpec, node: string | undefined): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FormworkError('OUTPUT_INVALID', `${where(role, node)} wrote outputs that are not a JSON object (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`})`, {
      role: role.name,
      node,
    });
  }
  return value as Record<string, unknown>;
}

/**
 * Checks outputs against the role's declared outputs: each declared field must be present
 * (or have a default, which is filled in) and match its schema. Undeclared fields are kept.
 */
export function validateOutputs(outputs: unknown, role: RoleSpec, node: string | undefined): Record<string, unknown> {
  const obj = { ...checkObject(outputs, role, node) };
  for (const [field, spec] of Object.entries(role.outputs ?? {})) {
    if (obj[field] === undefined) {
      if (spec.default !== undefined) {
        obj[field] = spec.default;
        continue;
      }
      throw new FormworkError('OUTPUT_INVALID', `${where(role, node)} did not write the output "${field}"`, { role: role.name, node, field });
    }
    if (!spec.schema) continue;
    const c = compileSchema(spec.schema);
    if ('error' in c) {
      throw new FormworkError('OUTPUT_INVALID', `${where(role, node)}: the schema of output "${field}" is invalid: ${c.error}`, { role: role.name, node, field });
    }
    if (!c.validate(obj[field])) {
      throw new FormworkError('OUTPUT_INVALID', `${where(role, node)}: output "${field}" does not match its schema: ${c.errors()}`, {
        role: role.name,
        node,
        field,
      });
    }
  }
  return obj;
}
