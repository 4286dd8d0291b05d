import { describe, expect, it } from 'vitest';
import { findCycles, validateRoles } from './roles.js';
import { CORE_ROLES, testRole } from './testing/roles.js';

describe('validateRoles', () => {
  it('accepts a sound catalogue, aliases included', () => {
    expect(validateRoles([...CORE_ROLES, testRole('app', { requires: ['node-ready'] })])).toEqual([]);
  });

  it('returns every problem with file, role and field', () => {
    const errors = validateRoles(
      [
        testRole('a', { requires: ['ghost'] }),
        testRole('b', { requires: ['a'], conflicts: ['a'] }),
        testRole('c', { inputs: { n: { schema: { type: 'integr' } } } }),
        testRole('d', { implementation: { kind: 'script', file: 'missing.sh' } }),
        testRole('e', { requires: ['f'] }),
        testRole('f', { requires: ['e'] }),
        testRole('g', { inputs: { x: { from: 'bogus' } } }),
        testRole('h', { outputs: { token: { schema: { type: 'string' }, secret: true } } }),
      ],
      { files: { test: { 'present.sh': '' } } },
    );
    const brief = errors.map((e) => `${e.role}/${e.field}`);
    expect(brief).toEqual(['a/requires', 'b/conflicts', 'c/inputs.n.schema', 'd/implementation.file', 'g/inputs.x.from', 'h/outputs.token.secret', 'e/requires']);
    expect(errors.every((e) => e.file === 'test/workload.yaml')).toBe(true);
    expect(errors.find((e) => e.role === 'e')!.message).toContain('e → f → e');
  });

  it('finds each cycle once', () => {
    const roles = [testRole('a', { requires: ['b'] }), testRole('b', { requires: ['a', 'c'] }), testRole('c', { requires: ['b'] })];
    expect(findCycles(roles)).toEqual([['a', 'b', 'a'], ['b', 'c', 'b']]);
  });
});
