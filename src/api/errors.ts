import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, FormworkError, isFormworkError, type ErrorCategory, type ErrorCode } from '../core/errors.js';
import { kindByName, knownKindNames } from '../core/kinds.js';
import { schemaProblems, validationError, type AjvLikeError } from '../core/schema.js';

/**
 * The ONE place that maps error categories to HTTP status codes, and that turns every
 * error (Formwork's and Fastify's own) into `{"error": {"code", "message", "details"}}`.
 *
 * @example
 *   installErrorHandling(app);
 *   throw new FormworkError('NOT_FOUND', 'node "x" does not exist'); // → 404 {"error":{"code":"NOT_FOUND",…}}
 */

export const CATEGORY_STATUS: Record<ErrorCategory, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition: 412,
  too_large: 413,
  failed: 422,
  internal: 500,
  unavailable: 503,
};

export function statusOf(code: ErrorCode): number {
  return CATEGORY_STATUS[ERROR_CODES[code].category];
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export function errorBody(e: FormworkError): ErrorBody {
  return { error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
}

/** The schema of every error answer (one definition: core/wire.ts). */
export { ErrorResponse } from '../core/wire.js';

/** Maps anything thrown while handling a request to a FormworkError. */
export function toApiError(err: unknown, request?: FastifyRequest): FormworkError {
  if (isFormworkError(err)) return err;
  const e = err as FastifyError & { validation?: AjvLikeError[]; validationContext?: string; type?: string };
  if (e && Array.isArray(e.validation)) {
    const kindName = (request?.routeOptions.config as { kind?: string } | undefined)?.kind;
    const kind = kindName ? kindByName(kindName) : undefined;
    const readOnly = new Set(kind?.fields.filter((f) => f.readOnly).map((f) => f.name) ?? []);
    const part = e.validationContext ?? 'body';
    return validationError(schemaProblems(e.validation, part, readOnly), part === 'body' ? 'the request body' : `the ${part}`);
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FormworkError('BODY_TOO_LARGE', `the request body is larger than the server limit of ${request?.routeOptions.bodyLimit ?? 'the configured'} bytes`, {
        limit: request?.routeOptions.bodyLimit,
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FormworkError('MALFORMED_BODY', `the body is not valid JSON: ${e.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FormworkError('MALFORMED_BODY', `unsupported content-type "${request?.headers['content-type'] ?? ''}": send application/json or application/yaml`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new FormworkError('MALFORMED_BODY', 'the request body length does not match its content-length');
  }
  if (e instanceof SyntaxError || e?.type === 'entity.parse.failed') {
    return new FormworkError('MALFORMED_BODY', `the body is not valid JSON: ${e.message}`);
  }
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Some other client error Fastify detected (e.g. a bad URL encoding).
    return new FormworkError(e.statusCode === 404 ? 'NOT_FOUND' : e.statusCode === 413 ? 'BODY_TOO_LARGE' : 'VALIDATION', e.message);
  }
  return new FormworkError('INTERNAL', 'an unexpected error happened; it was logged with the request id', { requestId: request?.id });
}

export function sendError(reply: FastifyReply, e: FormworkError): FastifyReply {
  return reply.code(statusOf(e.code)).type('application/json; charset=utf-8').send(errorBody(e));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const e = toApiError(err, request);
    if (e.code === 'INTERNAL') request.log.error({ err }, 'unexpected error');
    else request.log.info({ code: e.code, status: statusOf(e.code) }, e.message);
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0];
    const m = /^\/api\/v1\/([^/]+)/.exec(url);
    const known = knownKindNames();
    if (m && !kindByName(m[1]) && !['apply', 'events', 'tokens', 'whoami', 'openapi.json'].includes(m[1])) {
      return sendError(
        reply,
        new FormworkError('NOT_FOUND', `no route ${request.method} ${url}: "${m[1]}" is not a kind Formwork knows (known kinds: ${known.join(', ')})`, { known }),
      );
    }
    return sendError(reply, new FormworkError('NOT_FOUND', `no route ${request.method} ${url}`));
  });
}
