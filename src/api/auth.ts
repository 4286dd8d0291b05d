import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FormworkError } from '../core/errors.js';
import type { KindDef } from '../core/kinds.js';
import type { Principal, UserRole } from '../store/auth.js';
import type { Services } from '../context/services.js';

/**
 * Bearer-token authentication and role checks for every `/api/v1` route.
 *
 * Each route says the least role it needs in `config.auth` ('public', 'viewer',
 * 'operator' or 'admin'); without it, GET needs viewer and anything else operator.
 * Roles: admin does everything; operator writes everything except users, tokens and
 * secrets (which it can neither read nor write); viewer only reads (no users, tokens or
 * secrets either) and follows the event stream.
 *
 * @example
 *   app.get('/api/v1/tokens', { config: { auth: 'admin' } }, handler);
 *   actorOf(request); // 'alice'
 */

export type Access = 'public' | UserRole;

export interface RouteConfig {
  /** The least role the route needs; defaults by method. */
  auth?: Access;
  /** The kind a generic route serves (for error messages). */
  kind?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** The least role the route needs; defaults by method. */
    auth?: Access;
    /** The kind a generic route serves (for error messages). */
    kind?: string;
  }
}

const RANK: Record<UserRole, number> = { viewer: 0, operator: 1, admin: 2 };

/** Kinds only admins may read or write (their objects, and their events). */
export const ADMIN_ONLY_TYPES = new Set(['users', 'secrets', 'tokens']);

export function readAccess(kind: KindDef): UserRole {
  return ADMIN_ONLY_TYPES.has(kind.plural) ? 'admin' : 'viewer';
}

export function writeAccess(kind: KindDef): UserRole {
  return kind.writableBy === 'operator' ? 'operator' : 'admin';
}

export function requireRole(principal: Principal | undefined, needed: UserRole, what: string): Principal {
  if (!principal) throw new FormworkError('UNAUTHENTICATED', 'a bearer token is required: send "Authorization: Bearer <token>"');
  if (RANK[principal.role] < RANK[needed]) {
    throw new FormworkError(
      'FORBIDDEN',
      `${what} needs the ${needed} role${needed === 'admin' ? '' : ' or higher'}; the token of user "${principal.user}" has the ${principal.role} role`,
      { needed, role: principal.role, user: principal.user },
    );
  }
  return principal;
}

export function actorOf(request: FastifyRequest): string | undefined {
  return request.principal?.user;
}

function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new FormworkError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
  return m[1];
}

export function installAuth(app: FastifyInstance, services: Services): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url;
    if (!url || !url.startsWith('/api/v1/')) return; // docs, health, metrics, and 404s
    const config = (request.routeOptions.config ?? {}) as RouteConfig;
    const access: Access = config.auth ?? (request.method === 'GET' || request.method === 'HEAD' ? 'viewer' : 'operator');
    if (access === 'public') return;
    const principal = await services.store.auth.authenticate(bearer(request.headers.authorization));
    request.principal = principal;
    requireRole(principal, access, `${request.method} ${url}`);
  });
}
