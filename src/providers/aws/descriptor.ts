/**
 * The `aws` provider type as the registry knows it before loading the driver: EC2 instances
 * in one region, configured as AWS users configure it (a region, an optional endpoint, the
 * access key in the provider's credentialsSecret or else the SDK's default chain). The
 * schema is checked at apply; what only EC2 can say (the credentials, the region, the zone
 * and subnet) is checked by the driver's `check`, before anything is written.
 *
 * @example
 *   providerProblems({ type: 'aws', settings: { region: 'eu-west-1', publicAddress: 'elastic-ip' } }); // []
 */
import { RATE_LIMIT_SETTING } from '../api-calls.js';
import { CATALOG_SETTINGS_PROPERTIES } from '../catalog/index.js';
import type { ProviderDescriptor } from '../provider.js';

/** The `aws` provider type (see the file's comment). @example loadDriver('aws'); // loads driver.js on first use */
export const awsDescriptor: ProviderDescriptor = {
  type: 'aws',
  summary: 'EC2 instances in one AWS region (AWS SDK v3); key pair, security group, ClientToken, Elastic IPs made and released inside the readiness wait.',
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['region'],
    properties: {
      region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$', description: 'The AWS region (us-east-1, eu-west-1…)' },
      endpoint: { type: 'string', minLength: 1, description: "The EC2 endpoint URL (an emulator, a VPC endpoint); default: AWS's for the region" },
      zone: { type: 'string', minLength: 1, description: 'The availability zone machines go in when the node names none; default: the first available one' },
      subnetId: { type: 'string', pattern: '^subnet-[0-9a-f]+$', description: "The subnet to boot in; default: the default VPC's default subnet of the zone" },
      securityGroupName: { type: 'string', minLength: 1, maxLength: 255, description: 'The security group allowing TCP/22 (made by prepare in the subnet\'s VPC); default formwork-<provider>' },
      sshSourceCidr: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$', description: 'Where SSH is allowed from (the control plane\'s addresses); default 0.0.0.0/0' },
      publicAddress: {
        type: 'string',
        enum: ['auto', 'elastic-ip', 'subnet', 'none'],
        default: 'auto',
        description: "How the control plane reaches machines: auto (the subnet's public IP when it maps one, else an Elastic IP), elastic-ip, subnet, or none (the private address only)",
      },
      rateLimit: RATE_LIMIT_SETTING,
      ...CATALOG_SETTINGS_PROPERTIES,
    },
  },
  checksAtApply: true,
  load: async () => (await import('./driver.js')).awsDriver,
};
