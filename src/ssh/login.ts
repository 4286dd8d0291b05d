/**
 * Finding the login user: which of a few candidate users (root, debian, ubuntu, …) the
 * platform key logs in as on a new machine.
 */
import { FormworkError } from '../core/errors.js';
import type { SshPool } from './client.js';
import { DEFAULT_PORT, openConnection } from './connection.js';

/**
 * Where and how to try the candidates.
 *
 * @example
 *   await findLoginUser(host, ['root', 'debian'], key, { port: 2222, pool });
 */
export interface FindLoginUserOptions {
  port?: number;
  knownHostKey?: string;
  /** Per attempt. Default 15 s. */
  connectTimeoutMs?: number;
  /** Keep the connection that worked in this pool (the next exec as that user reuses it). */
  pool?: SshPool;
  /** The machine it is (SshTarget.machine): pooled connections are not shared between machines. */
  machine?: string;
}

/**
 * The user that logged in, and the host key the machine presented.
 *
 * @example
 *   const { username, hostKeyFingerprint }: LoginUser = await findLoginUser(host, users, key);
 */
export interface LoginUser {
  username: string;
  hostKeyFingerprint: string;
}

/**
 * Tries `candidates` in order (one connection each: OpenSSH refuses a change of user on
 * one connection) and returns the first that accepts the key. Unreachable host or a host
 * key mismatch stops the search at once; none accepted → SSH_AUTH_FAILED listing the users.
 *
 * @example
 *   const { username } = await findLoginUser('198.18.1.10', ['root', 'debian'], privateKey, { knownHostKey });
 */
export async function findLoginUser(
  host: string,
  candidates: string[],
  privateKey: string | Buffer,
  opts: FindLoginUserOptions = {},
): Promise<LoginUser> {
  const port = opts.port ?? DEFAULT_PORT;
  if (candidates.length === 0) {
    throw new FormworkError('VALIDATION', 'no candidate login users given', { path: 'candidates' });
  }
  const tried: string[] = [];
  let observed: string | undefined;
  for (const username of candidates) {
    tried.push(username);
    try {
      const target = { host, port, username, privateKey, knownHostKey: opts.knownHostKey ?? observed, connectTimeoutMs: opts.connectTimeoutMs, ...(opts.machine ? { machine: opts.machine } : {}) };
      if (opts.pool) return { username, hostKeyFingerprint: (await opts.pool.connect(target)).hostKeyFingerprint };
      const c = await openConnection(target, 0);
      c.client.end();
      return { username, hostKeyFingerprint: c.hostKeyFingerprint };
    } catch (e) {
      if (e instanceof FormworkError && e.code === 'SSH_AUTH_FAILED') {
        // Pin the key seen on the first attempt so every later attempt talks to the same host.
        const seen = e.details?.hostKeyFingerprint;
        if (observed === undefined && typeof seen === 'string') observed = seen;
        continue;
      }
      throw e;
    }
  }
  throw new FormworkError('SSH_AUTH_FAILED', `none of the users ${tried.join(', ')} accepted the platform key on ${host}:${port}`, {
    host,
    port,
    usersTried: tried,
    ...(observed ? { hostKeyFingerprint: observed } : {}),
  });
}
