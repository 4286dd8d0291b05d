import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { FormworkError } from '../../core/errors.js';
import type { Services } from '../../context/services.js';
import { retryNodeRoles } from '../../engine/graph.js';
import { actorOf } from '../auth.js';
import { ErrorResponse } from '../errors.js';
import { RetryResult, RunLog } from '../../core/wire.js';

/**
 * Engine routes:
 *
 *   POST /api/v1/noderoles/{name}/retry     a failed node-role → todo (attempts reset), descendants re-evaluated
 *   POST /api/v1/deployments/{name}/retry   every failed node-role of the deployment
 *   GET  /api/v1/noderoles/{name}/log       the latest run's log (`?run=ID|NAME` for another run)
 *
 * Retry works on the store, so it reaches the workers of every process sharing it; the
 * local engine (if any) is woken at once.
 *
 * @example
 *   curl -X POST -H "Authorization: Bearer $T" $URL/api/v1/noderoles/demo:web-1:nginx/retry
 *   curl -H "Authorization: Bearer $T" $URL/api/v1/noderoles/demo:web-1:nginx/log
 */

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };
const NameParams = Type.Object({ name: Type.String() });
export async function engineRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const retried = async (target: { noderole: string } | { deployment: string }, actor: string | undefined) => {
    const changed = await retryNodeRoles(services.store, target, actor ?? 'api');
    services.engine?.kick();
    return { retried: changed.map((c) => c.name) };
  };

  app.post('/api/v1/noderoles/:name/retry', {
    config: { auth: 'operator' },
    schema: {
      tags: ['engine'],
      summary: 'Retry a failed node-role: error → todo with attempts reset; its descendants are re-evaluated',
      params: NameParams,
      response: { 200: RetryResult, ...errors },
    },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => retried({ noderole: request.params.name }, actorOf(request)));

  app.post('/api/v1/deployments/:name/retry', {
    config: { auth: 'operator' },
    schema: {
      tags: ['engine'],
      summary: 'Retry every failed node-role of a deployment',
      params: NameParams,
      response: { 200: RetryResult, ...errors },
    },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => retried({ deployment: request.params.name }, actorOf(request)));

  app.get('/api/v1/noderoles/:name/log', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['engine'],
      summary: "A node-role's latest run log (or the run named by ?run=)",
      params: NameParams,
      querystring: Type.Object({ run: Type.Optional(Type.String({ description: 'Run id or name' })) }),
      response: { 200: RunLog, ...errors },
    },
  }, async (request: FastifyRequest<{ Params: { name: string }; Querystring: { run?: string } }>) => {
    const nr = await services.store.objects('noderoles').get(request.params.name);
    let run;
    if (request.query.run) {
      run = await services.store.objects('runs').get(request.query.run);
      if (run.noderole !== nr.name) throw new FormworkError('NOT_FOUND', `run "${request.query.run}" is not a run of node-role "${nr.name}"`, { kind: 'runs', key: request.query.run });
    } else {
      const runs = await services.store.objects('runs').all({ filters: { noderole: nr.name } });
      run = runs.sort((a, b) => (a.id < b.id ? -1 : 1)).at(-1);
      if (!run) throw new FormworkError('NOT_FOUND', `node-role "${nr.name}" has not run yet (state ${String(nr.state)})`, { kind: 'runs', key: nr.name });
    }
    return {
      noderole: nr.name,
      run: run.id,
      runName: run.name,
      ...(run.attempt !== undefined ? { attempt: run.attempt } : {}),
      state: String(run.state ?? ''),
      ...(run.startedAt ? { startedAt: run.startedAt } : {}),
      ...(run.endedAt ? { endedAt: run.endedAt } : {}),
      ...(run.exitCode !== undefined ? { exitCode: run.exitCode } : {}),
      ...(run.error ? { error: run.error } : {}),
      noderoleState: String(nr.state),
      log: run.log ?? '',
    } satisfies RunLog;
  });
}
