/**
 * From a provider's settings to a logged-in client: `settings.cloud` names a clouds.yaml
 * entry, found where openstacksdk looks (config/files.ts); or `settings.auth` is the same
 * block inline, its secrets (`password`, `application_credential_secret`, `token`) in the
 * provider's Secret. `profile` names a vendor, `region` overrides the entry's region_name.
 * One client per provider and configuration is kept, so its token is reused between calls.
 *
 * @example
 *   const { client, config } = await connect(ctx);
 *   await client.compute.listFlavors();
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { FormworkError } from '../../core/errors.js';
import type { ProviderCheckContext } from '../provider.js';
import { callPolicyFor } from '../api-calls.js';
import { createOpenStackClient, type OpenStackClient } from './client/index.js';
import { loadCloudConfig, resolveCloudEntry, type CloudConfig } from './config/cloud-config.js';
import type { ConfigLocations } from './config/files.js';

/** A provider's cloud: its resolved configuration and a client on it. */
export interface Connection {
  config: CloudConfig;
  client: OpenStackClient;
}

/**
 * Where clouds.yaml is looked for (tests point it at their own folder, never the developer's).
 *
 * @example
 *   cloudConfigLocations.get = () => ({ env: { OS_CLIENT_CONFIG_FILE: '/tmp/x/clouds.yaml' } });
 */
export const cloudConfigLocations = {
  get: (): ConfigLocations => ({ env: process.env, cwd: process.cwd(), home: homedir() }),
};

/** The keys of an inline auth block that are secrets: they come from the provider's Secret. */
export const AUTH_SECRET_KEYS = ['password', 'application_credential_secret', 'token'] as const;

const connections = new Map<string, Promise<Connection>>();

/**
 * The cloud of a provider, resolved and with a client (not yet logged in: the first call does).
 * clouds.yaml is read again on every call (a file read): the client, with its token, is kept
 * per resolved configuration (the whole of it), so an edited clouds.yaml (a rotated password, a new auth_url)
 * is used at once, never a client made for what the file said before.
 *
 * @example
 *   const { config } = await connect(ctx); // config.region === 'RegionOne'
 */
export async function connect(ctx: ProviderCheckContext): Promise<Connection> {
  const config = await resolve(ctx);
  const key = createHash('sha256').update(JSON.stringify([ctx.providerName, config])).digest('hex');
  let found = connections.get(key);
  if (!found) {
    found = Promise.resolve({
      config,
      client: createOpenStackClient({ auth: config.auth, region: config.region, interface: config.interface, endpointOverrides: config.endpointOverrides, calls: callPolicyFor(ctx) }),
    });
    connections.set(key, found);
  }
  return found;
}

/** Forgets the connections (a test's cloud went away). @example forgetConnections(); */
export function forgetConnections(): void {
  connections.clear();
}

async function resolve(ctx: ProviderCheckContext): Promise<CloudConfig> {
  const s = ctx.settings;
  const where = `provider ${ctx.providerName}`;
  const region = typeof s.region === 'string' ? s.region : undefined;
  if (typeof s.cloud === 'string') {
    const config = await loadCloudConfig(s.cloud, cloudConfigLocations.get(), { region });
    if (typeof s.profile === 'string' && config.vendor !== s.profile) {
      // settings.profile names the vendor even when clouds.yaml does not.
      const entry = { ...config.settings, profile: s.profile };
      return resolveCloudEntry(s.cloud, entry, { region, where: `${where} (cloud "${s.cloud}", profile "${s.profile}")` });
    }
    return config;
  }
  if (s.auth && typeof s.auth === 'object') {
    const auth: Record<string, unknown> = { ...(s.auth as Record<string, unknown>) };
    for (const k of AUTH_SECRET_KEYS) if (ctx.credentials?.[k]) auth[k] = ctx.credentials[k];
    const entry: Record<string, unknown> = { auth };
    if (typeof s.authType === 'string') entry.auth_type = s.authType;
    if (typeof s.interface === 'string') entry.interface = s.interface;
    if (typeof s.profile === 'string') entry.profile = s.profile;
    if (region) entry.region_name = region;
    return resolveCloudEntry(ctx.providerName, entry, { region, where: `${where} (settings.auth, secrets from its credentialsSecret)` });
  }
  throw new FormworkError('PROVIDER_INVALID', `${where}: neither settings.cloud (a clouds.yaml cloud name) nor settings.auth (an auth block, secrets in credentialsSecret) is given`, { provider: ctx.providerName });
}
