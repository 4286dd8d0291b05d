import { Annealer, type AnnealerOptions } from '../engine/annealer.js';
import { syncPlatformKey } from '../engine/executors/target.js';
import { prepareInBackground } from '../providers/lifecycle.js';
import { registerYardstickBuiltins } from '../providers/yardstick.js';
import type { Deleter, Services } from '../context/services.js';
import { DEPROVISIONED_KINDS } from '../core/deletion.js';
import { requestDeletion } from '../services/deletion.js';
import { deprovision } from '../services/teardown.js';
import { setupPlanning } from '../workloads/bootstrap.js';

/**
 * Wires a server's services: the Deployment applier and the workload packs, the
 * yardstick's built-in roles, provider preparation on apply, deleters that mark objects owning real resources deleting, and the
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
  // Even without an engine: an API-only process marks deletions, and workers carry them out.
  services.deleters = new Map(DEPROVISIONED_KINDS.map((plural): [string, Deleter] => [plural, (idOrName, ctx) => requestDeletion(services, plural, idOrName, ctx)]));
  if (opts.engine !== false) {
    // Every worker logs in with the store's one platform key (a second worker on another
    // data dir reaches the nodes the first made).
    await syncPlatformKey(services.store, services.dataDir, opts.log);
    // This process carries out deletions (its annealer claims them, the step deletes machines).
    services.deprovision = (kind, object, ctx) => deprovision(services, kind, object, ctx);
    services.engine = new Annealer(services, opts.engine ?? {});
    // This process provisions: it prepares providers as they are applied (failures are recorded on them).
    services.prepareProviders = (providers) => prepareInBackground(services, providers, opts.log);
  }
}
