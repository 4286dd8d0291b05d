import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FormworkError, type ErrorCode } from '../core/errors.js';
import { CATEGORY_STATUS, statusOf, toApiError } from './errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DOC = path.join(here, '../../docs/errors.md');

/** Rows of the code table: | `CODE` | status | category | retryable | description | */
function docRows(): Map<string, { status: number; category: string; retryable: string }> {
  const rows = new Map<string, { status: number; category: string; retryable: string }>();
  for (const line of fs.readFileSync(DOC, 'utf8').split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*([a-z_]+)\s*\|\s*(yes|no)\s*\|/.exec(line);
    if (m) rows.set(m[1], { status: Number(m[2]), category: m[3], retryable: m[4] });
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('lists every registered code with its status, category and retryability', () => {
    const rows = docRows();
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code), `docs/errors.md has no row for ${code}`).toEqual({
        status: CATEGORY_STATUS[info.category],
        category: info.category,
        retryable: info.retryable ? 'yes' : 'no',
      });
    }
  });

  it('registers every code the engine records on runs and node-roles', () => {
    const engineDir = path.join(here, '../engine');
    const recorded = new Set<string>();
    for (const f of fs.readdirSync(engineDir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
      for (const m of fs.readFileSync(path.join(engineDir, f), 'utf8').matchAll(/\bcode: '([A-Z_]+)'/g)) recorded.add(m[1]);
    }
    expect([...recorded].sort()).toEqual(expect.arrayContaining(['LEASE_EXPIRED', 'LEASE_LOST', 'WORKER_DIED', 'WORKER_STOPPED']));
    expect([...recorded].filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });

  it('lists no code the registry does not have', () => {
    const extra = [...docRows().keys()].filter((c) => !(c in ERROR_CODES));
    expect(extra).toEqual([]);
  });
});

describe('error mapping', () => {
  it('maps every category to the agreed status', () => {
    expect(CATEGORY_STATUS).toEqual({
      invalid: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409,
      precondition: 412, too_large: 413, unavailable: 503, failed: 422, internal: 500,
    });
    expect(statusOf('VERSION_MISMATCH')).toBe(412);
    expect(statusOf('SSH_UNREACHABLE')).toBe(503);
  });

  it("maps Fastify's errors to Formwork codes and hides unexpected ones", () => {
    const fst = (code: string) => Object.assign(new Error('x'), { code, statusCode: 400 });
    const cases: [unknown, ErrorCode][] = [
      [fst('FST_ERR_CTP_BODY_TOO_LARGE'), 'BODY_TOO_LARGE'],
      [fst('FST_ERR_CTP_INVALID_JSON_BODY'), 'MALFORMED_BODY'],
      [fst('FST_ERR_CTP_EMPTY_JSON_BODY'), 'MALFORMED_BODY'],
      [Object.assign(new Error('bad'), { validation: [{ instancePath: '/a', keyword: 'type', message: 'must be string' }], validationContext: 'body' }), 'VALIDATION'],
      [new FormworkError('CONFLICT', 'c'), 'CONFLICT'],
      [new Error('db exploded: password=hunter2'), 'INTERNAL'],
    ];
    for (const [err, code] of cases) expect(toApiError(err).code).toBe(code);
    expect(toApiError(new Error('db exploded: password=hunter2')).message).not.toContain('hunter2');
  });
});
