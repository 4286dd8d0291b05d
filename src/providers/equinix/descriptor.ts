/**
 * The `equinix` provider type as the registry knows it before loading the driver: Equinix
 * Metal devices (the Packet API) in one project and metro, on the public API or any
 * API-compatible endpoint (`baseUrl`). The Secret named by `credentialsSecret` holds the API
 * token under `apiToken`. Checked at apply: the token, the project and the metro.
 *
 * @example
 *   { kind: 'Provider', name: 'metal', type: 'equinix', credentialsSecret: 'metal-credentials', settings: { project: '3d27…', metro: 'da' } }
 */
import { RATE_LIMIT_SETTING } from '../api-calls.js';
import { CATALOG_SETTINGS_PROPERTIES } from '../catalog/index.js';
import type { ProviderDescriptor } from '../provider.js';

export const equinixDescriptor: ProviderDescriptor = {
  type: 'equinix',
  summary: 'Equinix Metal devices (the Packet API) in one project and metro, on any API-compatible endpoint; project SSH keys; addresses classified by their public flag.',
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['project', 'metro'],
    properties: {
      project: { type: 'string', minLength: 1, description: 'The Metal project id devices are made in' },
      metro: { type: 'string', minLength: 1, description: 'The metro code devices are made in (da, sv, am…); a node\'s zone overrides it' },
      baseUrl: { type: 'string', minLength: 1, description: 'The API\'s base URL (default https://api.equinix.com/metal/v1): any API-compatible endpoint' },
      billingCycle: { type: 'string', enum: ['hourly', 'daily', 'monthly', 'yearly'], description: 'How devices are billed (default hourly)' },
      rateLimit: RATE_LIMIT_SETTING,
      ...CATALOG_SETTINGS_PROPERTIES,
      readinessTimeoutSeconds: {
        ...CATALOG_SETTINGS_PROPERTIES.readinessTimeoutSeconds,
        description: 'How long provision waits for a device to build and answer on TCP/22 before giving it up (deleted, and another made); default 3600, since Metal builds can take over 30 minutes',
      },
    },
  },
  readinessTimeoutSeconds: 3600,
  checksAtApply: true,
  load: async () => (await import('./driver.js')).equinixDriver,
};
