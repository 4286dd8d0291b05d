/**
 * The `gce` provider type as the registry knows it before loading the driver: Compute Engine
 * instances in one project and zone, logged in with a service-account key (the Secret's
 * `serviceAccountJson`) or Application Default Credentials. Checked at apply by the driver's
 * `check`: the key logs in, the project and the zone exist, the endpoint is a URL.
 *
 * @example
 *   { kind: 'Provider', name: 'gce1', type: 'gce', credentialsSecret: 'gce1-credentials', settings: { project: 'p1', zone: 'us-central1-a' } }
 */
import { RATE_LIMIT_SETTING } from '../api-calls.js';
import { CATALOG_SETTINGS_PROPERTIES } from '../catalog/index.js';
import type { ProviderDescriptor } from '../provider.js';

const name = { type: 'string', minLength: 1 };

/** The `gce` descriptor (see the file's comment). */
export const gceDescriptor: ProviderDescriptor = {
  type: 'gce',
  summary: 'Google Compute Engine instances in one project and zone (service-account key or Application Default Credentials); an access config made inside the readiness wait, a firewall rule for TCP/22 from settings.sshSourceRanges (default anywhere).',
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['project', 'zone'],
    properties: {
      project: { ...name, description: 'The Google Cloud project id' },
      zone: { ...name, description: 'The zone machines are made in (e.g. us-central1-a)' },
      apiEndpoint: { type: 'string', minLength: 1, description: 'The Compute API base URL (default https://compute.googleapis.com/compute/v1); an emulator or private endpoint' },
      network: { ...name, description: 'The VPC network to boot on (default "default")' },
      subnetwork: { ...name, description: 'The subnetwork (name in the zone\'s region, or a path); default: the network\'s in the region' },
      externalAccess: { type: 'string', enum: ['accessConfig', 'none'], description: 'accessConfig (default): an ONE_TO_ONE_NAT access config gives each machine an external address; none: no external address, the control plane reaches the VPC address' },
      sshSourceRanges: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[0-9a-fA-F.:]+/[0-9]{1,3}$' }, description: "The CIDRs the provider's firewall rule allows TCP/22 from: the control plane's egress addresses (default ['0.0.0.0/0'], anywhere); a change updates the rule at the next prepare" },
      imageProjects: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Image projects searched besides the project itself (default debian-cloud, ubuntu-os-cloud)' },
      rateLimit: RATE_LIMIT_SETTING,
      ...CATALOG_SETTINGS_PROPERTIES,
    },
  },
  checksAtApply: true,
  load: async () => (await import('./driver.js')).gceDriver,
};
