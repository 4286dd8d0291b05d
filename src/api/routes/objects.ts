import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { Type } from 'typebox';
import { FormworkError } from '../../core/errors.js';
import { CREATED_BY_FORMWORK, KINDS, type KindDef, type StoredObject } from '../../core/kinds.js';
import type { Services } from '../../context/services.js';
import { actorOf, readAccess, writeAccess, type RouteConfig } from '../auth.js';
import { kindSchemas } from '../../services/schemas.js';
import { ErrorResponse } from '../errors.js';
import { applyObject, bodyFields, createObject, deleteObject, updateObject } from '../../services/writes.js';
import { DEPROVISIONED_KINDS } from '../../core/deletion.js';

/**
 * The generic routes every kind gets from its descriptor, under `/api/v1/{plural}`:
 * list, create, get, patch (merge), put (create-or-update by name) and delete, with
 * ETags and If-Match. Kinds nobody writes (runs) get only the two reads.
 */


type Req = FastifyRequest<{ Params: { idOrName: string }; Querystring: Record<string, unknown>; Body: Record<string, unknown> }>;

export function etag(obj: StoredObject): string {
  return `"${obj.version}"`;
}

/** The version an If-Match header asks for (`"3"`, `W/"3"` or `3`); undefined for none or `*`. */
export function parseIfMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header[0] : header).trim();
  if (value === '*' || value === '') return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value);
  if (!m) {
    throw new FormworkError('VALIDATION', `If-Match must be an ETag such as "3" (the object's version), got ${JSON.stringify(value)}`, {
      errors: [{ path: 'headers/if-match', message: 'must be a quoted version number' }],
    });
  }
  return Number(m[1]);
}

function expectedVersion(request: Req): number | undefined {
  const fromHeader = parseIfMatch(request.headers['if-match']);
  const fromBody = typeof request.body?.version === 'number' ? request.body.version : undefined;
  if (fromHeader !== undefined && fromBody !== undefined && fromHeader !== fromBody) {
    throw new FormworkError('VALIDATION', `If-Match says version ${fromHeader} but the body says ${fromBody}; send one`, {
      errors: [{ path: '/version', message: 'disagrees with If-Match' }],
    });
  }
  return fromHeader ?? fromBody;
}

/** `label=k=v` (repeatable) and `labelSelector=k=v,k2=v2` → `{k: v, k2: v2}`. */
export function parseLabelQuery(label: unknown, selector: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const parts: string[] = [];
  if (Array.isArray(label)) parts.push(...label.map(String));
  else if (typeof label === 'string') parts.push(label);
  if (typeof selector === 'string' && selector.trim()) parts.push(...selector.split(','));
  for (const p of parts) {
    const i = p.indexOf('=');
    if (i <= 0) {
      throw new FormworkError('VALIDATION', `label filter ${JSON.stringify(p)} must be key=value`, { errors: [{ path: 'querystring/label', message: 'must be key=value' }] });
    }
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

function send(reply: FastifyReply, obj: StoredObject, code = 200): FastifyReply {
  return reply.code(code).header('etag', etag(obj)).send(obj);
}

export async function objectRoutes(app: FastifyInstance, services: Services): Promise<void> {
  for (const kind of KINDS) registerKind(app, services, kind);
}

function registerKind(app: FastifyInstance, services: Services, kind: KindDef): void {
  const { s, base, tags, errors, who } = common(kind);
  const read: RouteConfig = { auth: readAccess(kind), kind: kind.plural };
  const store = () => services.store;

  app.get(base, {
    config: read,
    schema: { tags, summary: `List ${kind.plural}`, description: `${kind.description} Filter by field (\`?state=active\`), by label (\`?label=k=v\`, repeatable, or \`?labelSelector=k=v,k2=v2\`), and page with \`limit\`/\`after\`.`, querystring: s.listQuery, response: { 200: s.list, ...errors } },
  }, async (request: Req) => {
    const { limit, after, label, labelSelector, ...filters } = request.query;
    return store().objects(kind.plural).list({
      limit: limit as number | undefined,
      after: after as string | undefined,
      filters: filters as Record<string, string>,
      labels: parseLabelQuery(label, labelSelector),
    });
  });

  app.get(`${base}/:idOrName`, {
    config: read,
    schema: { tags, summary: `Get one ${kind.singular} by id or name`, description: `Returns the ${kind.singular} with an ETag of its version.${who}`, params: s.params, response: { 200: s.object, 404: ErrorResponse, ...errors } },
  }, async (request: Req, reply) => send(reply, await store().objects(kind.plural).get(request.params.idOrName)));

  if (kind.writableBy === 'nobody') return;

  if (!CREATED_BY_FORMWORK.has(kind.plural)) registerCreate(app, services, kind);
  registerChange(app, services, kind);
}

function common(kind: KindDef) {
  return {
    s: kindSchemas(kind),
    base: `/api/v1/${kind.plural}`,
    tags: [kind.plural],
    write: { auth: writeAccess(kind), kind: kind.plural } satisfies RouteConfig,
    errors: { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
    ifMatch: Type.Object({ 'if-match': Type.Optional(Type.String({ description: 'The ETag you read ("<version>"); a stale one fails with 412' })) }),
    who: kind.plural === 'secrets' ? ' The secret value (`data`) is write-only: responses carry only its `keys`.' : '',
  };
}

function registerCreate(app: FastifyInstance, services: Services, kind: KindDef): void {
  const { s, base, tags, write, errors, ifMatch, who } = common(kind);
  const store = () => services.store;
  app.post(base, {
    config: write,
    schema: { tags, summary: `Create a ${kind.singular}`, description: `Creates a ${kind.singular}; 409 ALREADY_EXISTS if the name is taken.${who}`, body: s.create, response: { 201: s.object, 409: ErrorResponse, ...errors } },
  }, async (request: Req, reply) => {
    const obj = await createObject(store(), kind, bodyFields(kind, request.body), { actor: actorOf(request) });
    reply.header('location', `${base}/${encodeURIComponent(obj.name)}`);
    return send(reply, obj, 201);
  });

  app.put(`${base}/:idOrName`, {
    config: write,
    schema: { tags, summary: `Create or update a ${kind.singular} by name`, description: `Creates the ${kind.singular} (201) or changes the given fields (200); absent fields stay as they are. If-Match / \`version\` as for PATCH.${who}`, params: s.params, headers: ifMatch, body: s.put, response: { 200: s.object, 201: s.object, 412: ErrorResponse, ...errors } },
  }, async (request: Req, reply) => {
    const version = expectedVersion(request);
    const fields = bodyFields(kind, request.body);
    const key = request.params.idOrName;
    const existing = await store().objects(kind.plural).find(key);
    if (fields.name !== undefined && fields.name !== (existing?.name ?? key)) {
      throw new FormworkError('VALIDATION', `the body names ${kind.singular} "${String(fields.name)}" but the path names "${key}"`, { errors: [{ path: '/name', message: 'must match the path' }] });
    }
    const { object, action } = await applyObject(store(), kind, { ...fields, name: existing?.name ?? key }, { actor: actorOf(request), expectedVersion: version });
    return send(reply, object, action === 'created' ? 201 : 200);
  });
}

function registerChange(app: FastifyInstance, services: Services, kind: KindDef): void {
  const { s, base, tags, write, errors, ifMatch, who } = common(kind);
  const store = () => services.store;
  app.patch(`${base}/:idOrName`, {
    config: write,
    schema: { tags, summary: `Change fields of a ${kind.singular}`, description: `A merge at the top level: given fields change, \`null\` clears one, absent ones stay. With If-Match (or \`version\` in the body) a stale version fails with 412 and changes nothing.${who}`, params: s.params, headers: ifMatch, body: s.patch, response: { 200: s.object, 404: ErrorResponse, 412: ErrorResponse, ...errors } },
  }, async (request: Req, reply) => {
    const version = expectedVersion(request);
    const obj = await updateObject(store(), kind, request.params.idOrName, bodyFields(kind, request.body), { actor: actorOf(request), expectedVersion: version });
    return send(reply, obj);
  });

  const derived = CREATED_BY_FORMWORK.has(kind.plural);
  app.delete(`${base}/:idOrName`, {
    config: write,
    schema: (derived
      ? { tags, summary: `Refused: a ${kind.singular} is deleted by changing its Deployment`, description: `Always 409 CONFLICT: Formwork makes ${kind.plural} from a Deployment's role bindings (with their parent links). Remove the binding from the Deployment and apply it, or delete the Deployment.`, params: s.params, headers: ifMatch, response: { 404: ErrorResponse, 409: ErrorResponse, ...errors } }
      : { tags, summary: `Delete a ${kind.singular}`, description: deleteDescription(kind), params: s.params, headers: ifMatch, response: { 200: s.object, 202: s.object, 404: ErrorResponse, 409: ErrorResponse, 412: ErrorResponse, ...errors } }) as FastifySchema,
  }, async (request: Req, reply) => {
    if (derived) {
      // Deleting the row alone would leave its parent links and its children's `parents`
      // pointing at it, and the next apply of the Deployment would make it again.
      const obj = await store().objects(kind.plural).get(request.params.idOrName);
      const dep = typeof obj.deployment === 'string' ? obj.deployment : undefined;
      throw new FormworkError(
        'CONFLICT',
        `${kind.singular} "${obj.name}" is made by ${dep ? `deployment "${dep}"` : 'its deployment'} and cannot be deleted on its own: remove the role binding from the Deployment and apply it, or delete the deployment`,
        { kind: kind.plural, key: obj.name, ...(dep ? { deployment: dep } : {}) },
      );
    }
    const { object, accepted } = await deleteObject(services, kind, request.params.idOrName, { actor: actorOf(request), expectedVersion: parseIfMatch(request.headers['if-match']) });
    return send(reply, object, accepted ? 202 : 200);
  });
}

function deleteDescription(kind: KindDef): string {
  if ((DEPROVISIONED_KINDS as readonly string[]).includes(kind.plural)) {
    return (
      `Answers 202 with the ${kind.singular} marked deleting (its \`deletion\` field) at once: a worker's annealer deletes what it owns ` +
      `(machines; a deployment's nodes; a provider's shared resources, once its nodes are gone), with retries, then removes it (a \`deleted\` event). ` +
      `Follow \`deletion\` (attempts, waitingFor, lastError, failed) or the event stream; DELETE again to retry one that failed. If-Match is honoured.` +
      (kind.plural === 'providers' ? ' 409 CONFLICT while nodes not being deleted use the provider.' : '')
    );
  }
  return `Returns the deleted object. If-Match is honoured.${kind.plural === 'roles' ? ' 409 CONFLICT while node-roles use the role (`details.usedBy` names their deployments and nodes).' : ''}`;
}
