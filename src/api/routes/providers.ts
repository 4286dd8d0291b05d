import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { deleteOrphans, findOrphans } from '../../services/orphans.js';
import type { Services } from '../../context/services.js';
import { ErrorResponse } from '../errors.js';

/**
 * A provider's orphans: `GET /api/v1/providers/:name/orphans` lists the resources carrying its
 * ownership tags that no stored node owns (services/orphans.ts); `POST …/orphans/delete`
 * (admin) deletes them and says what went. Both ask the provider's cloud while the request
 * waits, as conformance does: there is no object to mark, so no annealer step to hand it to.
 *
 * @example
 *   curl -H "Authorization: Bearer $T" $URL/api/v1/providers/aws-eu/orphans
 */

const Resource = Type.Object({ kind: Type.String(), id: Type.String(), name: Type.Optional(Type.String()), tags: Type.Record(Type.String(), Type.String()) });
const Report = Type.Object({
  provider: Type.String(),
  source: Type.String({ description: 'listOwned (every tagged resource) or listMachines (a driver that lists machines only)' }),
  owned: Type.Integer({ description: "How many resources carry the provider's tag" }),
  orphans: Type.Array(Resource),
  deleted: Type.Optional(Type.Array(Type.String())),
});
const Params = Type.Object({ name: Type.String() });
const responses = { 200: Report, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse };

export async function providerRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.get('/api/v1/providers/:name/orphans', {
    config: { auth: 'operator' },
    schema: { tags: ['providers'], summary: "Resources carrying the provider's ownership tags that no node owns", params: Params, response: responses },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => findOrphans(services, request.params.name));

  app.post('/api/v1/providers/:name/orphans/delete', {
    config: { auth: 'admin' },
    schema: { tags: ['providers'], summary: "Deletes the resources carrying the provider's ownership tags that no node owns", params: Params, response: responses },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => deleteOrphans(services, request.params.name));
}
