import { toFormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';
import type { ProviderDriver, ProviderLogger } from './provider.js';
import { loadDriver, providerContext, providerFailure } from './registry.js';

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

async function run(services: Services, provider: StoredObject, log?: ProviderLogger, loaded?: ProviderDriver): Promise<void> {
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
