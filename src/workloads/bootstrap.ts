import { registerDeploymentServices } from '../services/deployments.js';
import type { Services } from '../context/services.js';
import { checkPacks, packsStored, readPacks, registerPacks, type LoadPacksOptions, type LoadPacksResult } from './loader.js';

/**
 * What a server (or an embedded engine) calls once at start: registers the Deployment
 * applier and stores the built-in and user workload packs (idempotent: an unchanged pack
 * writes nothing, and when all are already stored as they are, they are not checked again).
 * Refused packs are returned, not thrown, so one bad user pack does not stop the server;
 * log them.
 *
 * @example
 *   // src/server/server.ts: startServer({ …, configure: async (services) => { const { refused } = await setupPlanning(services); … } })
 */
export async function setupPlanning(services: Services, opts: Omit<LoadPacksOptions, 'dataDir'> = {}): Promise<LoadPacksResult> {
  registerDeploymentServices(services);
  const read = readPacks({ ...opts, dataDir: services.dataDir });
  // Unchanged since they were stored (and checked): nothing to check or write.
  if (read.refused.length === 0 && (await packsStored(services.store, read.packs))) return read;
  const loaded = checkPacks(read);
  if (loaded.packs.length) await registerPacks(services.store, loaded.packs, { actor: 'system' });
  return loaded;
}
