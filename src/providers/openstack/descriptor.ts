/**
 * The `openstack` provider type as the registry knows it before loading the driver: servers
 * on any OpenStack cloud, configured by a clouds.yaml cloud name or an inline auth block.
 * The schema is checked at apply; what only the cloud can say (the credentials, the cloud
 * name and region, the boot network) is checked by the driver's `prepare`, which runs from
 * the moment the provider is applied and records a refusal on the provider, naming what to fix.
 */
import { RATE_LIMIT_SETTING } from '../api-calls.js';
import { CATALOG_SETTINGS_PROPERTIES } from '../catalog/index.js';
import type { ProviderDescriptor } from '../provider.js';

const name = { type: 'string', minLength: 1 };

/** The non-secret keys of an inline auth block (the secrets live in the provider's credentialsSecret). */
const AUTH_PROPERTIES: Record<string, Record<string, unknown>> = Object.fromEntries(
  ['auth_url', 'username', 'user_id', 'user_domain_name', 'user_domain_id', 'project_name', 'project_id', 'project_domain_name', 'project_domain_id', 'domain_name', 'domain_id', 'application_credential_id', 'application_credential_name'].map((k) => [k, name]),
);

export const openstackDescriptor: ProviderDescriptor = {
  type: 'openstack',
  summary: 'Servers on any OpenStack cloud (Keystone v3, Nova, Neutron, Glance), configured by clouds.yaml or inline; floating IPs made and released inside the readiness wait.',
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    anyOf: [{ required: ['cloud'] }, { required: ['auth'] }],
    properties: {
      cloud: { ...name, description: 'A cloud of clouds.yaml (with secure.yaml), found as openstacksdk finds it: OS_CLIENT_CONFIG_FILE, the working directory, ~/.config/openstack, /etc/openstack' },
      auth: {
        type: 'object',
        additionalProperties: false,
        required: ['auth_url'],
        properties: AUTH_PROPERTIES,
        description: "clouds.yaml's auth block, inline; its secret (password, application_credential_secret or token) goes in the provider's credentialsSecret",
      },
      authType: { type: 'string', enum: ['password', 'v3password', 'v3applicationcredential', 'token', 'v3token'], description: 'How to log in with the inline auth block (default password; v3applicationcredential when only an application credential is given)' },
      interface: { type: 'string', enum: ['public', 'internal', 'admin'], description: 'The endpoint interface to call (default public)' },
      profile: { ...name, description: 'The vendor profile (openstacksdk\'s, or one of clouds-public.yaml): its auth URL, regions, floating IP source and per-network flags' },
      region: { ...name, description: "The region (overrides clouds.yaml's region_name)" },
      network: { ...name, description: "The network to boot on (name or id); default: the profile's default_interface network, else the only network that is not router:external" },
      externalNetwork: { ...name, description: "The external network floating IPs come from (name or id); default: the profile's nat_source, else the router:external network a router connects the boot network to" },
      reuseFloatingIps: { type: 'boolean', default: false, description: 'Take over an unattached floating IP nobody marked instead of allocating one (given back by detaching it). Off: only floating IPs Formwork made are ever used' },
      rateLimit: RATE_LIMIT_SETTING,
      ...CATALOG_SETTINGS_PROPERTIES,
    },
  },
  checksAtApply: true,
  load: async () => (await import('./driver.js')).openstackDriver,
};
