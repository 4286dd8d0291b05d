import { registerDeploymentServices } from '../services/deployments.js';
import type { Services } from '../services/services.js';
import { loadBuiltinPacks, registerPacks, type LoadPacksOptions, type LoadPacksResult } from './loader.js';

/**
 * What a server (or an embedded engine) calls once at start: registers the Deployment
 * applier and stores the built-in and user workload packs (idempotent: an unchanged pack
 * writes nothing). Refused packs are returned, not thrown, so one bad user pack does not
 * stop the server; log them.
 *
 * @example
 *   // src/server/server.ts: startServer({ …, configure: async (services) => { const { refused } = await setupPlanning(services); … } })
 */
export async function setupPlanning(services: Services, opts: Omit<LoadPacksOptions, 'dataDir'> = {}): Promise<LoadPacksResult> {
  registerDeploymentServices(services);
  const loaded = loadBuiltinPacks({ ...opts, dataDir: services.dataDir });
  if (loaded.packs.length) await registerPacks(services.store, loaded.packs, { actor: 'system' });
  return loaded;
}
