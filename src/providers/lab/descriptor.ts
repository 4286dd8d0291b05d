/**
 * The `lab` provider type as the registry knows it before loading the driver (see index.ts
 * for what lab is). The schema is the settings' whole check: apply refuses anything else.
 */
import type { ProviderDescriptor } from '../provider.js';

export const labDescriptor: ProviderDescriptor = {
  type: 'lab',
  summary: 'Real Debian 12 hosts on this machine (systemd-nspawn in network namespaces on 198.18.0.0/15); needs root.',
  hostBound: true,
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      subnetIndex: { type: 'integer', minimum: 0, maximum: 255, default: 0, description: 'N: the public network is the (2N)th /24 of 198.18.0.0/15, the private one the next' },
      baseDir: { type: 'string', minLength: 1, description: 'A prebuilt lab base root filesystem, instead of the one built in the data dir' },
      mirror: { type: 'string', minLength: 1, description: 'The Debian mirror debootstrap builds the base from' },
      bootTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 90_000, description: 'How long a host may take to answer SSH' },
      stopTimeoutMs: { type: 'integer', minimum: 1_000, maximum: 600_000, default: 15_000, description: 'How long a host may take to stop' },
    },
  },
  load: async () => (await import('./driver.js')).labDriver,
};
