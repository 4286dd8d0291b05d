/**
 * `builtin`: TypeScript handlers registered by name. `engine.noop` (does nothing, returns
 * `{}`) is always registered; the bench uses it to measure scheduling alone.
 */
import { FormworkError } from '../../core/errors.js';
import type { Services } from '../../context/services.js';
import type { SshPool } from '../../ssh/client.js';
import type { BuiltinHandler, RoleExecutor, RunIO, RunJob, RunResult } from '../types.js';

const handlers = new Map<string, BuiltinHandler>();

export function registerBuiltin(name: string, handler: BuiltinHandler): void {
  handlers.set(name, handler);
}

export function unregisterBuiltin(name: string): void {
  handlers.delete(name);
}

export function builtinNames(): string[] {
  return [...handlers.keys()].sort();
}

registerBuiltin('engine.noop', async () => ({ exitCode: 0, outputs: {} }));

export function builtinExecutor(services: Services, ssh: SshPool): RoleExecutor {
  return {
    kind: 'builtin',
    async run(job: RunJob, io: RunIO): Promise<RunResult> {
      if (job.role.implementation.kind !== 'builtin') throw new Error('builtin executor got a non-builtin role');
      const name = job.role.implementation.handler;
      const handler = handlers.get(name);
      if (!handler) {
        throw new FormworkError(
          'RUN_FAILED',
          `role ${job.role.name}: no builtin handler named "${name}" is registered; registered: ${builtinNames().join(', ')}`,
          { role: job.role.name, handler: name, registered: builtinNames() },
          { retryable: false },
        );
      }
      return handler(job, io, { services, ssh });
    },
  };
}
