import { createHash, randomBytes } from 'node:crypto';
import { FormworkError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { StoredObject } from '../core/kinds.js';
import { MAX_TOKEN_LIFETIME_SECONDS, type UserRole } from '../core/users.js';
import type { TokenInfo } from '../core/wire.js';
import type { Executor } from './db.js';
import type { ObjectRepository } from './repository.js';
import type { EventLog } from './events.js';
import { databaseConflict } from './db.js';

/**
 * Users and their bearer tokens. A token is shown once, when created; the store keeps
 * only its SHA-256. Tokens may expire and be revoked.
 *
 * @example
 *   const { token } = await auth.createToken('admin', { expiresInSeconds: 3600 });
 *   (await auth.authenticate(token)).role; // 'admin'
 */

export { MAX_TOKEN_LIFETIME_SECONDS, USER_ROLES, type UserRole } from '../core/users.js';
export type { TokenInfo } from '../core/wire.js';

export interface Principal {
  user: string;
  role: UserRole;
  tokenId: string;
}

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** How stale a token's `lastUsedAt` may get: it is written at most this often, not on every request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export class AuthStore {
  constructor(
    private readonly db: Executor,
    private readonly users: ObjectRepository,
    private readonly events: EventLog,
  ) {}

  async ensureUser(name: string, role: UserRole, actor = 'system'): Promise<StoredObject> {
    return (await this.users.find(name)) ?? this.users.create({ name, role }, { actor });
  }

  async createToken(userName: string, opts: { description?: string; expiresInSeconds?: number; actor?: string } = {}): Promise<{ token: string; info: TokenInfo }> {
    const life = opts.expiresInSeconds;
    if (life !== undefined && !(life > 0 && life <= MAX_TOKEN_LIFETIME_SECONDS)) {
      throw new FormworkError('VALIDATION', `expiresInSeconds must be more than 0 and at most ${MAX_TOKEN_LIFETIME_SECONDS} (10 years); got ${life}. Leave it out for a token that does not expire.`, {
        field: 'expiresInSeconds',
      });
    }
    const user = await this.users.get(userName);
    const id = newId('tk');
    const token = `fwt_${id.slice(3)}_${randomBytes(24).toString('base64url')}`;
    const now = new Date();
    const info: TokenInfo = {
      id,
      user: user.name,
      createdAt: now.toISOString(),
      ...(opts.description ? { description: opts.description } : {}),
      ...(opts.expiresInSeconds ? { expiresAt: new Date(now.getTime() + opts.expiresInSeconds * 1000).toISOString() } : {}),
    };
    await this.atomically(async (trx) => {
      await trx
        .insertInto('tokens')
        .values({ id, user_id: user.id, hash: hash(token), description: info.description ?? null, created_at: info.createdAt, expires_at: info.expiresAt ?? null })
        .execute();
      await this.events.append(trx, { type: 'tokens', action: 'created', key: id, actor: opts.actor, object: info });
    });
    return { token, info };
  }

  /**
   * The principal a token stands for; UNAUTHENTICATED when it is unknown, expired or revoked.
   * Records the use in the token's `lastUsedAt`, to within LAST_USED_RESOLUTION_MS.
   */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token) throw new FormworkError('UNAUTHENTICATED', 'a bearer token is required: send "Authorization: Bearer <token>"');
    const row = await this.db
      .selectFrom('tokens')
      .innerJoin('users', 'users.id', 'tokens.user_id')
      .select(['tokens.id as id', 'tokens.expires_at as expires_at', 'tokens.revoked_at as revoked_at', 'tokens.last_used_at as last_used_at', 'users.name as user', 'users.role as role'])
      .where('tokens.hash', '=', hash(token))
      .executeTakeFirst();
    if (!row) throw new FormworkError('UNAUTHENTICATED', 'the bearer token is not known');
    if (row.revoked_at) throw new FormworkError('UNAUTHENTICATED', 'the bearer token was revoked');
    const now = Date.now();
    if (row.expires_at && Date.parse(row.expires_at) <= now) throw new FormworkError('UNAUTHENTICATED', 'the bearer token has expired');
    if (!row.last_used_at || now - Date.parse(row.last_used_at) >= LAST_USED_RESOLUTION_MS) {
      // Not an event: a token being used is not a change anyone watches for. Best effort: a
      // busy database must not fail the request the token is for.
      await this.db.updateTable('tokens').set({ last_used_at: new Date(now).toISOString() }).where('id', '=', row.id).execute().catch(() => undefined);
    }
    return { user: row.user, role: row.role as UserRole, tokenId: row.id };
  }

  async listTokens(): Promise<TokenInfo[]> {
    const rows = await this.db
      .selectFrom('tokens')
      .innerJoin('users', 'users.id', 'tokens.user_id')
      .select(['tokens.id as id', 'users.name as user', 'tokens.description as description', 'tokens.created_at as created_at', 'tokens.expires_at as expires_at', 'tokens.revoked_at as revoked_at', 'tokens.last_used_at as last_used_at'])
      .orderBy('tokens.id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      user: r.user,
      createdAt: r.created_at,
      ...(r.description ? { description: r.description } : {}),
      ...(r.expires_at ? { expiresAt: r.expires_at } : {}),
      ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
      ...(r.last_used_at ? { lastUsedAt: r.last_used_at } : {}),
    }));
  }

  async revokeToken(id: string, actor?: string): Promise<void> {
    const now = new Date().toISOString();
    await this.atomically(async (trx) => {
      const res = await trx.updateTable('tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) {
        const exists = await trx.selectFrom('tokens').select('id').where('id', '=', id).executeTakeFirst();
        if (!exists) throw new FormworkError('NOT_FOUND', `token "${id}" does not exist`, { kind: 'tokens', key: id });
        return; // already revoked: revoking is idempotent
      }
      await this.events.append(trx, { type: 'tokens', action: 'deleted', key: id, actor });
    });
  }

  /** Runs fn in the current transaction (an AuthStore of `store.transaction`'s tx) or in a new one. */
  private async atomically(fn: (trx: Executor) => Promise<void>): Promise<void> {
    if (this.db.isTransaction) return fn(this.db);
    await this.db
      .transaction()
      .execute(async (trx) => {
        await this.events.lockForAppend(trx); // first, as Store's transactions do
        await fn(trx);
      })
      .catch((e: unknown) => {
        throw databaseConflict(e) ?? e;
      });
    this.events.nudge();
  }
}
