import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { runConformance } from '../../providers/conformance.js';
import type { Services } from '../../context/services.js';
import { ErrorResponse } from '../errors.js';
import { ConformanceReport } from '../../core/wire.js';

/**
 * `POST /api/v1/conformance`: runs the yardstick's six checks on nodes (all, one
 * provider's, or named ones) and answers a pass/fail report per node and check, with the
 * reason for each failure. The same report for every provider: that is the point.
 *
 * @example
 *   curl -X POST -H "Authorization: Bearer $T" -d '{"provider":"lab"}' $URL/api/v1/conformance
 */

export async function conformanceRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/api/v1/conformance', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['providers'],
      summary: 'Check nodes against the yardstick (reachable, logged in, known host, networks, shape, post-provisioning)',
      body: Type.Object(
        {
          provider: Type.Optional(Type.String({ description: 'Only this provider’s nodes' })),
          nodes: Type.Optional(Type.Array(Type.String(), { description: 'Only these nodes' })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: ConformanceReport,
        400: ErrorResponse,
        401: ErrorResponse,
        404: ErrorResponse,
      },
    },
  }, async (request: FastifyRequest<{ Body: { provider?: string; nodes?: string[] } }>) => runConformance(services, request.body ?? {}));
}
