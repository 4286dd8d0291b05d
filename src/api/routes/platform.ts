import type { FastifyInstance } from 'fastify';
import { FormworkError } from '../../core/errors.js';
import { PLATFORM_SSH_KEY, platformPublicKey } from '../../engine/executors/target.js';
import type { Services } from '../../context/services.js';
import { ErrorResponse } from '../errors.js';
import { PlatformKey } from '../../core/wire.js';

/**
 * The platform's public SSH key (what to put in a machine's authorized_keys so that the
 * workers can log in). Only the public half: the private key never leaves the store.
 *
 * @example
 *   curl -H "authorization: Bearer $T" http://127.0.0.1:7480/api/v1/platform/ssh-key
 */
export async function platformRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get('/api/v1/platform/ssh-key', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['platform'],
      summary: "The platform's public SSH key, which every worker logs in with",
      response: {
        200: PlatformKey,
        401: ErrorResponse,
        403: ErrorResponse,
        404: ErrorResponse,
      },
    },
  }, async () => {
    const key = await platformPublicKey(services.store);
    if (!key) {
      throw new FormworkError('NOT_FOUND', 'no platform SSH key yet: the first worker (formwork server --role all or worker) makes it as it starts', {
        kind: 'platform-key',
        key: PLATFORM_SSH_KEY,
      });
    }
    return key;
  });
}
