/**
 * The `static` provider type as the registry knows it before loading the driver: machines
 * that already exist, listed in its settings and adopted by address and login user.
 */
import type { ProviderDescriptor } from '../provider.js';

export const staticDescriptor: ProviderDescriptor = {
  type: 'static',
  summary: 'Machines that already exist, adopted by address, login user and optionally a known host key; deleting a node releases its machine untouched.',
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['machines'],
    properties: {
      machines: {
        type: 'array',
        description: "The machines to adopt. A node takes the one with its name, else the first one free.",
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'address', 'user'],
          properties: {
            name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'Its id in this provider (a DNS label)' },
            address: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], description: 'The address the control plane reaches it at' },
            privateAddress: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], description: 'Its address for the other nodes (default: address)' },
            port: { type: 'integer', minimum: 1, maximum: 65535, default: 22, description: 'The SSH port' },
            user: { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$', description: 'The login user (root, or one with passwordless sudo)' },
            hostKey: {
              type: 'string',
              pattern: '^(SHA256:[A-Za-z0-9+/]{43}=?|(ssh|ecdsa)-[a-z0-9-]+ AAAA[A-Za-z0-9+/]+={0,3}( .*)?)$',
              description: 'Its SSH host key, as a fingerprint (SHA256:…) or a public key line; without it the first contact is trusted',
            },
            size: { type: 'string', description: 'What to record as its size (default: static)' },
            image: { type: 'string', description: 'What to record as its image (default: static)' },
          },
        },
      },
    },
  },
  load: async () => (await import('./driver.js')).staticDriver,
};
