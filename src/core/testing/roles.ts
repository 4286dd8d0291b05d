import type { RoleSpec } from '../roles.js';

/** A role for tests: builtin, no inputs, unless given. */
export function testRole(name: string, extra: Partial<RoleSpec> = {}): RoleSpec {
  return {
    name,
    workload: 'test',
    requires: [],
    provides: [],
    conflicts: [],
    flags: [],
    inputs: {},
    outputs: {},
    implementation: { kind: 'builtin', handler: 'noop' },
    ...extra,
  };
}

/** provision → node-ready, as the core pack defines them. */
export const CORE_ROLES: RoleSpec[] = [
  testRole('provision', { workload: 'core', implementation: { kind: 'builtin', handler: 'provider.create' } }),
  testRole('node-ready', { workload: 'core', requires: ['provision'], provides: ['node-ready'], implementation: { kind: 'builtin', handler: 'yardstick.ready' } }),
];
