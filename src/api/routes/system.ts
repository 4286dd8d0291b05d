import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Health, Unhealthy } from '../../core/wire.js';
import { Histogram, Registry, collectDefaultMetrics, register as globalRegister } from 'prom-client';
import type { Services } from '../../context/services.js';

/**
 * Unauthenticated operational routes: `/healthz` and `/metrics` (Prometheus).
 *
 * @example
 *   curl http://127.0.0.1:7480/healthz   # {"status":"ok","store":"sqlite"}
 */

let defaultsCollected = false;

export async function systemRoutes(app: FastifyInstance, services: Services): Promise<void> {
  if (!defaultsCollected) {
    // Process-wide metrics (CPU, memory, event loop) once per process, whatever the number of apps.
    collectDefaultMetrics({ register: globalRegister });
    defaultsCollected = true;
  }
  const registry = new Registry();
  const duration = new Histogram({
    name: 'formwork_http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get('/healthz', {
    config: { auth: 'public' },
    schema: {
      tags: ['system'],
      summary: 'Liveness and store health (no auth)',
      security: [],
      response: {
        200: Health,
        503: Unhealthy,
      },
    },
  }, async (_request, reply) => {
    const store = services.store.dialect;
    try {
      await sql`select 1`.execute(services.store.db);
      return { status: 'ok', store };
    } catch (e) {
      return reply.code(503).send({ status: 'unavailable', store, error: e instanceof Error ? e.message : String(e) });
    }
  });

  app.get('/metrics', {
    config: { auth: 'public' },
    schema: { tags: ['system'], summary: 'Prometheus metrics (no auth)', security: [], produces: ['text/plain'] },
  }, async (_request, reply) => {
    const merged = Registry.merge([globalRegister, registry]);
    return reply.type(merged.contentType).send(await merged.metrics());
  });
}
