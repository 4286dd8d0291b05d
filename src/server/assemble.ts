import { FormworkError } from '../core/errors.js';
import { Annealer, type AnnealerOptions } from '../engine/annealer.js';
import { prepareInBackground } from '../providers/lifecycle.js';
import { registerYardstickBuiltins } from '../providers/yardstick.js';
import type { Deleter, Services } from '../context/services.js';
import { deleteDeployment, deleteNode, deleteProvider } from '../services/teardown.js';
import { setupPlanning } from '../workloads/bootstrap.js';

/**
 * Wires a server's services: the Deployment applier and the workload packs, the
 * yardstick's built-in roles, provider preparation on apply, deleters for objects that own real resources, and the
 * annealer. `startServer` calls it unless told not to (`engine: false`).
 *
 * @example
 *   await assembleServices(services, { log: (m) => logger.warn(m) });
 *   await services.engine!.start();
 */
export interface AssembleOptions {
  /** Run no annealer in this process (an API-only process sharing PostgreSQL with workers). */
  engine?: false | AnnealerOptions;
  log?: (message: string) => void;
}

export async function assembleServices(services: Services, opts: AssembleOptions = {}): Promise<void> {
  const { refused } = await setupPlanning(services);
  for (const r of refused) opts.log?.(`workload pack refused: ${JSON.stringify(r)}`);
  registerYardstickBuiltins();
  const versioned = (fn: (s: Services, name: string, o: { actor?: string }) => Promise<unknown>, plural: string): Deleter =>
    async (idOrName, ctx) => {
      const current = await services.store.objects(plural).get(idOrName);
      if (ctx.expectedVersion !== undefined && ctx.expectedVersion !== current.version) {
        throw new FormworkError('VERSION_MISMATCH', `${plural} "${current.name}" is at version ${current.version}, not ${ctx.expectedVersion}`, {
          currentVersion: current.version,
        });
      }
      await fn(services, current.id, { actor: ctx.actor });
      return current;
    };
  services.deleters = new Map([
    ['deployments', versioned(deleteDeployment, 'deployments')],
    ['nodes', versioned(deleteNode, 'nodes')],
    ['providers', versioned(deleteProvider, 'providers')],
  ]);
  if (opts.engine !== false) {
    services.engine = new Annealer(services, opts.engine ?? {});
    // This process provisions: it prepares providers as they are applied (failures are recorded on them).
    services.prepareProviders = (providers) => prepareInBackground(services, providers, opts.log);
  }
}
