import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../context/services.js';
import { DeploymentService, registerDeploymentServices } from '../../services/deployments.js';
import { checkPackText, storedRoles } from '../../workloads/loader.js';
import { actorOf } from '../auth.js';
import { ErrorResponse } from '../errors.js';
import { CommitResult, DeploymentTree, PackCheck } from '../../core/wire.js';

/**
 * Deployment and workload routes beyond the generic kind routes:
 *
 *   POST /api/v1/deployments/{name}/commit   proposed → todo/blocked, wakes the engine
 *   GET  /api/v1/deployments/{name}/tree     node-roles grouped by node, with state and blocked reason
 *   POST /api/v1/workloads/validate          checks a pack ({workloadYaml, files}) against the stored roles
 *
 * It also registers the Deployment applier (services.appliers) when none is set, so
 * `POST /api/v1/apply` plans deployments.
 *
 * @example
 *   curl -X POST -H "Authorization: Bearer $T" $URL/api/v1/deployments/demo/commit
 */

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };

const NameParams = Type.Object({ name: Type.String() });

export async function deploymentRoutes(app: FastifyInstance, services: Services): Promise<void> {
  if (!services.appliers.has('Deployment')) registerDeploymentServices(services);
  const svc = new DeploymentService(services);

  app.post('/api/v1/deployments/:name/commit', {
    config: { auth: 'operator' },
    schema: {
      tags: ['deployments'],
      summary: 'Commit a deployment: its proposed node-roles become todo (or blocked, with the reason)',
      params: NameParams,
      response: {
        200: CommitResult,
        ...errors,
      },
    },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => svc.commit(request.params.name, { actor: actorOf(request) }));

  app.get('/api/v1/deployments/:name/tree', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['deployments'],
      summary: "A deployment's node-roles grouped by node, with state and blocked reason",
      params: NameParams,
      response: { 200: DeploymentTree, ...errors },
    },
  }, async (request: FastifyRequest<{ Params: { name: string } }>) => svc.describeTree(request.params.name));

  app.post('/api/v1/workloads/validate', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['workloads'],
      summary: 'Check a workload pack without storing it',
      description:
        'Body: the text of workload.yaml and the pack files (path → text). Requires are checked against the roles already stored. ' +
        'Answers 200 with `valid` and every problem found (file, role, field, message).',
      body: Type.Object(
        {
          workloadYaml: Type.String({ description: 'The text of workload.yaml' }),
          files: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Pack files: path relative to the pack → text' })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: PackCheck,
        ...errors,
      },
    },
  }, async (request: FastifyRequest<{ Body: { workloadYaml: string; files?: Record<string, string> } }>) => {
    const { pack, errors: problems } = checkPackText(request.body.workloadYaml, request.body.files ?? {}, await storedRoles(services.store));
    return {
      valid: problems.length === 0,
      errors: problems,
      ...(pack ? { workload: { name: pack.name, version: pack.version, roles: pack.roles.map((r) => r.name) } } : {}),
    };
  });
}
