import { FormworkError, toFormworkError } from '../core/errors.js';
import { workerAffinity } from '../engine/workers.js';
import type { Store } from '../store/store.js';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';
import type { ProviderDriver, ProviderLogger } from './provider.js';
import { isHostBound, loadDriver, providerContext, providerFailure } from './registry.js';

/**
 * A provider's `prepare` (shared resources, long-lived services), run once per process and
 * provider version: when the provider is applied in a process that provisions, and before
 * its first machine is made there (a restart, another worker). The outcome is recorded on
 * the provider (`state` ready or failed, `message` why).
 *
 * @example
 *   await prepareProvider(services, provider); // throws what prepare threw, after recording it
 */

const prepared = new Map<string, Promise<void>>();
const keyOf = (services: Services, name: string) => `${services.dataDir}\0${name}`;

export function prepareProvider(services: Services, provider: StoredObject, log?: ProviderLogger, driver?: ProviderDriver): Promise<void> {
  const key = keyOf(services, provider.name);
  const version = `${key}\0${provider.version}`;
  const known = prepared.get(key) as (Promise<void> & { version?: string }) | undefined;
  if (known && known.version === version) return known;
  const p = Object.assign(run(services, provider, log, driver), { version });
  p.catch(() => prepared.get(key) === p && prepared.delete(key)); // tried again next time
  prepared.set(key, p);
  return p;
}

/** Forgets a provider's preparation (after its teardown: applying it again prepares it again). */
export function forgetPrepared(services: Services, name: string): void {
  prepared.delete(keyOf(services, name));
}

/**
 * Binds a host-bound provider to this worker's host, unless it is bound already: the first
 * worker to prepare it wins (a conditional update, race-safe on both engines). WRONG_HOST
 * (retryable) when it is bound to another host: a worker there takes the run.
 */
export async function claimAffinity(store: Store, providerName: string, mine = workerAffinity()): Promise<void> {
  await store.db.updateTable('providers').set({ affinity: mine }).where('name', '=', providerName).where('affinity', 'is', null).execute();
  const row = await store.db.selectFrom('providers').select('affinity').where('name', '=', providerName).executeTakeFirst();
  if (row && row.affinity !== mine) {
    throw new FormworkError(
      'WRONG_HOST',
      `provider ${providerName} is bound to host "${String(row.affinity)}" (its affinity), not to this worker's "${mine}": a worker there runs its work (set FORMWORK_WORKER_AFFINITY to change a worker's)`,
      { provider: providerName, affinity: row.affinity, worker: mine },
    );
  }
}

async function run(services: Services, provider: StoredObject, log?: ProviderLogger, loaded?: ProviderDriver): Promise<void> {
  // Before prepare, and not recorded as its failure: the provider is fine, only elsewhere.
  if (isHostBound(provider.type as string)) await claimAffinity(services.store, provider.name);
  const driver = loaded ?? (await loadDriver(provider.type as string));
  const record = async (state: string, message: string | null) => {
    if (provider.state === state && (provider.message ?? null) === message) return;
    await services.store.objects('providers').update(provider.id, { state, message }, { actor: 'formwork' }).catch(() => undefined); // deleted meanwhile
  };
  try {
    await driver.prepare?.(await providerContext(services, provider, log ? { log } : {}));
  } catch (e) {
    const err = providerFailure(e, `provider ${provider.name}: prepare`);
    await record('failed', err.message);
    throw err;
  }
  await record('ready', null);
}

/** Starts preparing, in the background, each provider an apply created or changed; failures are recorded on the provider. */
export function prepareInBackground(services: Services, providers: StoredObject[], warn: (message: string) => void = () => undefined): void {
  for (const p of providers) prepareProvider(services, p).catch((e) => warn(`provider ${p.name}: prepare failed: ${toFormworkError(e).message}`));
}
