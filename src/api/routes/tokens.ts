import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { FormworkError } from '../../core/errors.js';
import type { Services } from '../../context/services.js';
import { CreatedToken, CreateTokenRequest, TokenInfo, TokenList, WhoAmI } from '../../core/wire.js';
import { actorOf } from '../auth.js';
import { ErrorResponse } from '../errors.js';

/**
 * Tokens (admin only) and `whoami` (any valid token).
 *
 * @example
 *   POST /api/v1/tokens {"user": "ci", "role": "operator", "expiresInSeconds": 86400}
 *   → 201 {"token": "fwt_…", "info": {"id": "tk_…", "user": "ci", …}}   (the token is shown only here)
 */

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse };

export async function tokenRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const auth = () => services.store.auth;

  app.get('/api/v1/whoami', {
    config: { auth: 'viewer' },
    schema: {
      tags: ['auth'],
      summary: 'The user and role of the calling token',
      response: { 200: WhoAmI, ...errors },
    },
  }, async (request) => request.principal);

  app.get('/api/v1/tokens', {
    config: { auth: 'admin' },
    schema: { tags: ['auth'], summary: 'List tokens (never their values)', response: { 200: TokenList, ...errors } },
  }, async () => ({ items: await auth().listTokens() }));

  app.post('/api/v1/tokens', {
    config: { auth: 'admin' },
    schema: {
      tags: ['auth'],
      summary: 'Create a token for a user (shown once)',
      description: 'With `role`, creates the user first when it does not exist.',
      body: CreateTokenRequest,
      response: { 201: CreatedToken, 404: ErrorResponse, ...errors },
    },
  }, async (request: FastifyRequest<{ Body: CreateTokenRequest }>, reply) => {
    const { user, role, description, expiresInSeconds } = request.body;
    const actor = actorOf(request);
    // One transaction: a user made for a token that then fails is not left behind.
    const created = await services.store.transaction(async (tx) => {
      if (role) {
        const existing = await tx.objects('users').find(user);
        if (!existing) await tx.auth.ensureUser(user, role, actor);
        else if (existing.role !== role) {
          throw new FormworkError('CONFLICT', `user "${user}" already exists with the ${String(existing.role)} role, not ${role}; change the user's role with PATCH /api/v1/users/${user}`, {
            user,
            role: existing.role,
          });
        }
      }
      return tx.auth.createToken(user, { description, expiresInSeconds, actor });
    });
    return reply.code(201).send(created);
  });

  app.delete('/api/v1/tokens/:id', {
    config: { auth: 'admin' },
    schema: {
      tags: ['auth'],
      summary: 'Revoke a token',
      params: Type.Object({ id: Type.String() }),
      response: { 200: TokenInfo, 404: ErrorResponse, ...errors },
    },
  }, async (request: FastifyRequest<{ Params: { id: string } }>) => {
    await auth().revokeToken(request.params.id, actorOf(request));
    const info = (await auth().listTokens()).find((t) => t.id === request.params.id);
    if (!info) throw new FormworkError('NOT_FOUND', `token "${request.params.id}" does not exist`, { kind: 'tokens', key: request.params.id });
    return info;
  });
}
