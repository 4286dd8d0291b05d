import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { KINDS } from '../../core/kinds.js';
import { applyDocuments } from '../../services/apply.js';
import type { Services } from '../../context/services.js';
import { actorOf, requireRole, writeAccess } from '../auth.js';
import { ErrorResponse } from '../errors.js';
import { ApplyResponse } from '../../core/wire.js';

/**
 * `POST /api/v1/apply`: many documents at once (what `formwork apply -f file.yaml`
 * sends), checked and applied by services/apply.ts with the caller's token deciding which
 * kinds it may write. A YAML multi-document body is accepted as well as JSON.
 */

const ApplyBody = Type.Object(
  {
    documents: Type.Array(
      Type.Object(
        { kind: Type.String({ description: `One of ${KINDS.map((k) => k.kind).join(', ')}` }), name: Type.String() },
        { additionalProperties: true, description: 'A document: `kind`, `name` and the fields of that kind' },
      ),
      { description: 'The documents, applied in order' },
    ),
  },
  { additionalProperties: false },
);

export async function applyRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/api/v1/apply', {
    config: { auth: 'viewer' }, // each document's kind is checked against the caller's role below
    // A single document, or a bare array of them, is accepted and wrapped.
    preValidation: async (request) => {
      const b = request.body as unknown;
      if (Array.isArray(b)) request.body = { documents: b };
      else if (b && typeof b === 'object' && !('documents' in b) && 'kind' in b) request.body = { documents: [b] };
    },
    schema: {
      tags: ['apply'],
      summary: 'Create or update many objects declaratively',
      description:
        'Body: `{documents: [...]}` as JSON, or a YAML (multi-document) stream with content-type application/yaml. ' +
        'All documents are validated first; any problem refuses the whole request and nothing is written. ' +
        'Applying the same documents again reports every one `unchanged`.',
      body: ApplyBody,
      response: { 200: ApplyResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 412: ErrorResponse },
    },
  }, async (request: FastifyRequest<{ Body: { documents: Record<string, unknown>[] } }>) => {
    const results = await applyDocuments(services, request.body.documents, {
      actor: actorOf(request),
      authorize: (kind, what) => requireRole(request.principal, writeAccess(kind), what),
    });
    return { results };
  });
}
