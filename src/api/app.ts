import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import YAML from 'yaml';
import { FormworkError } from '../core/errors.js';
import { schemaAjv } from '../core/schema.js';
import type { Services } from '../context/services.js';
import { installAuth } from './auth.js';
import { docsRoutes } from './docs.js';
import { installErrorHandling } from './errors.js';
import { createLogger, REDACT_PATHS } from './logging.js';
import { applyRoutes } from './routes/apply.js';
import { eventRoutes } from './routes/events.js';
import { ROUTE_PLUGINS, type RoutePlugin } from './routes/index.js';
import { objectRoutes } from './routes/objects.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';

/**
 * Builds the HTTP API over the services: authentication, the generic kind routes,
 * apply, tokens, events, health, metrics and the OpenAPI document. Call `ready()` (or
 * `inject`, or `listen`) before use.
 *
 * @example
 *   const app = buildApi(services, { logger: createLogger({ level: 'info' }) });
 *   await app.listen({ host: '127.0.0.1', port: 7480 });
 */

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export interface ApiOptions {
  /** A pino logger (redaction is added to it), `false` for none; default: info to stdout. */
  logger?: Logger | false;
  /** The largest accepted body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** SSE heartbeat interval (default 15 s). */
  heartbeatMs?: number;
  /** Extra route plugins, after ROUTE_PLUGINS. */
  plugins?: RoutePlugin[];
  /** Serve HTTPS with this certificate and key (PEM). */
  https?: { cert: string | Buffer; key: string | Buffer };
  /** Version shown in the OpenAPI document. */
  version?: string;
}

export interface RegisteredRoute {
  method: string;
  url: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, for tests and for checking the OpenAPI document. */
    formworkRoutes: RegisteredRoute[];
    /** Compiles every route's validators now (they compile on first use); returns how many. After ready. */
    compileValidators(): number;
  }
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/**
 * What is wrong and where ("… at line 3, column 1"), without the excerpt of the body that
 * the yaml library appends: the body may hold a secret, and the message is logged.
 */
function yamlProblem(message: string): string {
  return message.split(/:?\n/)[0]!;
}

// Bodies are validated strictly (no coercion, unknown fields refused, every problem
// reported); query strings, params and headers are text, so they are coerced. ajv caches
// what it compiled by schema object (kindSchemas are memoized).
const ajvFor = (httpPart: string | undefined) => schemaAjv(httpPart === 'body' ? 'values' : 'text');

type DataCxt = Parameters<ValidateFunction>[1];
interface LazyValidator {
  (data: unknown, dataCxt?: DataCxt): boolean;
  errors?: ValidateFunction['errors'];
  schemaEnv: true;
  compile(): ValidateFunction;
}

/**
 * A route's validator, compiled by ajv on its first use rather than when Fastify starts:
 * compiling every route's (ajv generates and evaluates code per schema) was the largest
 * part of the server's start. Fastify uses it as it uses ajv's own functions: it reads
 * `.errors` after `false`, and passes the parent data (so coercion and defaults may replace
 * the root value) to functions with a `schemaEnv`, which every ajv function has.
 */
function lazyValidator(httpPart: string | undefined, schema: object): LazyValidator {
  let fn: ValidateFunction | undefined;
  const validate = ((data: unknown, dataCxt?: DataCxt) => {
    const f = validate.compile();
    const ok = f(data, dataCxt);
    validate.errors = f.errors;
    return ok;
  }) as LazyValidator;
  validate.schemaEnv = true;
  validate.compile = () => (fn ??= ajvFor(httpPart).compile(schema));
  return validate;
}

/** How deeply a request body may nest objects and arrays. */
export const MAX_INPUT_DEPTH = 100;

/**
 * The first NUL character in a request's input (a string or a key), or the first value
 * nested deeper than MAX_INPUT_DEPTH, as a path. NUL is refused on both engines alike
 * because PostgreSQL text cannot hold it (SQLite can); a deeper body would overflow the
 * stack where it is serialized. Walks with its own stack, so a deep body cannot overflow it.
 */
export function inputProblem(value: unknown): { path: string; problem: 'nul' | 'depth' } | undefined {
  const stack: Array<[unknown, string, number]> = [[value, '', 0]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { path, problem: 'nul' };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_INPUT_DEPTH) return { path, problem: 'depth' };
    for (const [k, child] of Object.entries(v)) {
      const at = `${path}/${k}`;
      if (k.includes('\u0000')) return { path: at, problem: 'nul' };
      stack.push([child, at, depth + 1]);
    }
  }
  return undefined;
}

function refuseBadInput(request: FastifyRequest): void {
  const parts = [
    ['params', request.params, 'the path'],
    ['querystring', request.query, 'the query string'],
    ['body', request.body, 'the request body'],
  ] as const;
  for (const [part, value, where] of parts) {
    const p = inputProblem(value);
    if (!p) continue;
    const path = part === 'body' ? p.path || '/' : `${part}${p.path}`;
    const shown = JSON.stringify(path);
    if (p.problem === 'nul') {
      throw new FormworkError('VALIDATION', `${where} has a NUL character (\\u0000) at ${shown}: remove it; Formwork does not store NUL characters`, {
        errors: [{ path, message: 'must not contain a NUL character' }],
      });
    }
    throw new FormworkError('VALIDATION', `${where} is nested too deeply at ${shown}: objects and arrays may nest at most ${MAX_INPUT_DEPTH} levels`, {
      errors: [{ path, message: `must not nest more than ${MAX_INPUT_DEPTH} levels` }],
    });
  }
}

export function buildApi(services: Services, opts: ApiOptions = {}): FastifyInstance {
  const serverOpts = {
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    exposeHeadRoutes: false,
    requestIdHeader: 'x-request-id',
    forceCloseConnections: true,
    ...(opts.https ? { https: opts.https } : {}),
  };
  const logger = opts.logger === undefined ? createLogger() : opts.logger === false ? undefined : opts.logger.child({}, { redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
  const app = (
    logger ? Fastify({ ...serverOpts, loggerInstance: logger as unknown as FastifyBaseLogger }) : Fastify({ ...serverOpts, logger: false })
  ) as unknown as FastifyInstance;

  const validators: LazyValidator[] = [];
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const v = lazyValidator(httpPart, schema as object);
    validators.push(v);
    return v;
  });
  app.decorate('compileValidators', () => {
    for (const v of validators) v.compile();
    return validators.length;
  });
  // Response schemas document the API; replies are plain JSON (no silent coercion or dropping).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.decorate('formworkRoutes', [] as RegisteredRoute[]);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) app.formworkRoutes.push({ method: String(method), url: route.url });
  });

  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (request, body, done) => {
    try {
      const docs = YAML.parseAllDocuments(body as string);
      const parsed: unknown[] = [];
      for (const d of Array.isArray(docs) ? docs : [docs]) {
        if (d.errors.length) throw new FormworkError('MALFORMED_BODY', `the body is not valid YAML: ${yamlProblem(d.errors[0].message)}`);
        const value = d.toJS({ maxAliasCount: 100 });
        if (value !== null && value !== undefined) parsed.push(value);
      }
      if (parsed.length === 0) throw new FormworkError('MALFORMED_BODY', 'the YAML body is empty');
      if (parsed.length === 1) return done(null, parsed[0]);
      if (request.routeOptions.url === '/api/v1/apply') return done(null, { documents: parsed });
      throw new FormworkError('MALFORMED_BODY', `the body holds ${parsed.length} YAML documents; this endpoint takes one (use /api/v1/apply for several)`);
    } catch (e) {
      done(e instanceof FormworkError ? e : new FormworkError('MALFORMED_BODY', `the body is not valid YAML: ${yamlProblem(e instanceof Error ? e.message : String(e))}`), undefined);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  installErrorHandling(app);
  installAuth(app, services);
  // Before schema validation, for every route: ajv would recurse as deep as the body does.
  app.addHook('preValidation', async (request) => refuseBadInput(request));

  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Formwork API',
        version: opts.version ?? '0.1.0',
        description: 'Every /api/v1 route needs `Authorization: Bearer <token>`. Errors are `{"error": {"code", "message", "details"}}`; see docs/errors.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A Formwork token (fwt_…)' } } },
      security: [{ bearer: [] }],
    },
  });

  void app.register(async (root) => {
    root.get('/api/v1/openapi.json', {
      config: { auth: 'public' },
      schema: { tags: ['system'], summary: 'This OpenAPI document (no auth)', security: [] },
    }, async () => app.swagger());
    docsRoutes(root);
    await systemRoutes(root, services);
    await objectRoutes(root, services);
    await applyRoutes(root, services);
    await tokenRoutes(root, services);
    await eventRoutes({ heartbeatMs: opts.heartbeatMs })(root, services);
    for (const plugin of [...ROUTE_PLUGINS, ...(opts.plugins ?? [])]) await plugin(root, services);
  });
  return app;
}
