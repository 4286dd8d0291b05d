import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { ensurePlatformKey } from '../engine/executors/target.js';
import type { Services } from '../services/services.js';
import { labDriver } from './lab/index.js';
import type { ProviderContext, ProviderDriver, ProviderLogger } from './provider.js';

/**
 * The drivers Formwork knows, by provider type, and the context a driver call gets.
 *
 * @example
 *   const driver = driverFor('lab');
 *   const ctx = await providerContext(services, await store.objects('providers').get('lab'));
 */

const DRIVERS = new Map<string, ProviderDriver>([[labDriver.kind, labDriver]]);

export function registerDriver(driver: ProviderDriver): void {
  DRIVERS.set(driver.kind, driver);
}

/** The driver for a provider type, if Formwork has one. */
export function findDriver(type: string): ProviderDriver | undefined {
  return DRIVERS.get(type);
}

export function driverFor(type: string): ProviderDriver {
  const d = findDriver(type);
  if (!d) {
    throw new FormworkError('VALIDATION', `no provider driver for type "${type}"; available: ${[...DRIVERS.keys()].join(', ')}`, {
      type,
      known: [...DRIVERS.keys()],
    });
  }
  return d;
}

const silent: ProviderLogger = { info: () => undefined, warn: () => undefined };

export async function providerContext(
  services: Services,
  provider: StoredObject,
  opts: { log?: ProviderLogger; signal?: AbortSignal } = {},
): Promise<ProviderContext> {
  const secretName = provider.credentialsSecret as string | undefined;
  return {
    dataDir: services.dataDir,
    providerName: provider.name,
    settings: (provider.settings as Record<string, unknown>) ?? {},
    ...(secretName ? { credentials: await services.store.secrets.reveal(secretName) } : {}),
    publicKey: ensurePlatformKey(services.dataDir).publicKey,
    log: opts.log ?? silent,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/** A provider logger that writes readable lines into a run log. */
export function runLogger(log: (chunk: string) => void): ProviderLogger {
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    log(`${level === 'warn' ? 'warning: ' : ''}${msg}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}\n`);
  return { info: line('info'), warn: line('warn') };
}
