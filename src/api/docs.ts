import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';

/**
 * The API docs UI at /api/docs (@fastify/swagger-ui over this app's OpenAPI document).
 * The UI's package, with @fastify/static and its files, is loaded on the first request for
 * the docs, not at server start, where loading it cost more than all the API's routes:
 * /api/docs and /api/docs/* forward to a small Fastify app of their own, made then.
 *
 * @example
 *   docsRoutes(app); // before app.ready(); GET /api/docs shows the UI
 */

export const DOCS_PREFIX = '/api/docs';

// Per connection: this reply's own (the body is sent whole, so never chunked).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

export function docsRoutes(app: FastifyInstance): void {
  let docs: Promise<FastifyInstance> | undefined;
  const load = async (): Promise<FastifyInstance> => {
    const { default: swaggerUi } = await import('@fastify/swagger-ui');
    const d = Fastify({ logger: false });
    await d.register(swagger, { mode: 'static', specification: { document: app.swagger() as never } });
    await d.register(swaggerUi, { routePrefix: DOCS_PREFIX });
    await d.ready();
    return d;
  };
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    docs ??= load().catch((e: unknown) => {
      docs = undefined; // let a later request try again
      throw e;
    });
    const res = await (await docs).inject({ method: request.method as 'GET' | 'HEAD', url: request.url, headers: request.headers });
    if (res.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(res.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value);
    return reply.code(res.statusCode).send(res.rawPayload.length ? res.rawPayload : undefined);
  };
  for (const url of [DOCS_PREFIX, `${DOCS_PREFIX}/*`]) app.route({ method: ['GET', 'HEAD'], url, schema: { hide: true }, handler: forward });
  app.addHook('onClose', async () => {
    await (await docs?.catch(() => undefined))?.close();
  });
}
