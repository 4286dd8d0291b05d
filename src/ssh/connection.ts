/**
 * Opening one SSH connection, with the yardstick's "known host" rule: with no recorded
 * fingerprint the observed one is accepted and reported (trust on first use); with one
 * recorded, a different key is refused during key exchange, before authentication, as
 * HOST_KEY_MISMATCH. Private keys are never logged nor put into errors.
 */
import type { Client as SshClient, ConnectConfig } from 'ssh2';
import { FormworkError } from '../core/errors.js';
import { fingerprint, fingerprintsEqual, assertPrivateKey } from './keys.js';
import { ssh2 } from './ssh2.js';

/**
 * Where and as whom to connect, and which host key to expect.
 *
 * @example
 *   const target: SshTarget = { host: '198.18.1.10', username: 'debian', privateKey, knownHostKey: 'SHA256:…' };
 */
export interface SshTarget {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** The platform private key (OpenSSH format). Secret: never logged. */
  privateKey: string | Buffer;
  /** Recorded host key fingerprint (`SHA256:...`). Undefined: trust on first use. */
  knownHostKey?: string;
  /** TCP connect + handshake + authentication. Default 15 s. */
  connectTimeoutMs?: number;
  /**
   * Which machine the target is (a node's id and its machine's native id): the pool keeps
   * connections per machine, so a machine that takes over a released address (a cloud
   * reissuing a floating IP) never gets its predecessor's connection or host key.
   */
  machine?: string;
}

/**
 * What a connection found: the host key to record on first contact, and whether the pool
 * reused a connection.
 *
 * @example
 *   const { hostKeyFingerprint } = await pool.connect(target);
 */
export interface SshConnectionInfo {
  host: string;
  port: number;
  username: string;
  /** The fingerprint the server presented (record it on first contact). */
  hostKeyFingerprint: string;
  /** True when an already open pooled connection was used. */
  reused: boolean;
}

/**
 * The SSH port when a target names none.
 *
 * @example
 *   const port = target.port ?? DEFAULT_PORT;
 */
export const DEFAULT_PORT = 22;
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

/**
 * The details every SSH error carries about its target.
 *
 * @example
 *   new FormworkError('SSH_UNREACHABLE', '…', targetDetails(host, 22, 'root'));
 */
export function targetDetails(host: string, port: number, username?: string): Record<string, unknown> {
  return username === undefined ? { host, port } : { host, port, user: username };
}

/**
 * SSH_UNREACHABLE for host:port, saying why.
 *
 * @example
 *   throw unreachable('10.0.0.5', 22, 'the connection dropped', { user: 'root' });
 */
export function unreachable(host: string, port: number, why: string, extra: Record<string, unknown> = {}): FormworkError {
  return new FormworkError('SSH_UNREACHABLE', `SSH to ${host}:${port} failed: ${why}`, { host, port, ...extra });
}

/**
 * The message of anything thrown.
 *
 * @example
 *   reject(unreachable(host, port, errText(e)));
 */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * An authenticated ssh2 client and the host key it was given.
 *
 * @example
 *   const { client, hostKeyFingerprint } = await openConnection(target, 0);
 */
export interface OpenedConnection {
  client: SshClient;
  hostKeyFingerprint: string;
}

/**
 * Connects, checks the host key against `target.knownHostKey` and authenticates with the
 * platform key. Fails with HOST_KEY_MISMATCH, SSH_AUTH_FAILED (`details.hostKeyFingerprint`
 * says which host refused), SSH_UNREACHABLE or VALIDATION (a key ssh2 cannot use).
 * `keepaliveIntervalMs` 0 sends no keepalives.
 *
 * @example
 *   const c = await openConnection({ host, username: 'root', privateKey }, 15_000);
 *   c.client.end();
 */
export function openConnection(target: SshTarget, keepaliveIntervalMs: number): Promise<OpenedConnection> {
  const host = target.host;
  const port = target.port ?? DEFAULT_PORT;
  const username = target.username;
  assertPrivateKey(target.privateKey);
  const known = target.knownHostKey;
  return new Promise<OpenedConnection>((resolve, reject) => {
    const client = new (ssh2().Client)();
    let observed: string | undefined;
    let mismatch = false;
    let settled = false;
    const settle = (err: FormworkError | null): void => {
      if (settled) return;
      settled = true;
      if (err) {
        client.end();
        client.destroy();
        reject(err);
      } else {
        resolve({ client, hostKeyFingerprint: observed as string });
      }
    };
    // A permanent listener: ssh2 emits 'error' late (resets, keepalive timeouts) and an
    // unhandled 'error' would crash the process. The pool watches 'close'.
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      if (mismatch) {
        settle(
          new FormworkError(
            'HOST_KEY_MISMATCH',
            `the SSH host key of ${host}:${port} is ${observed}, but ${known} was recorded; refusing to connect`,
            { host, port, expected: known, observed },
          ),
        );
      } else if (err.level === 'client-authentication') {
        settle(
          new FormworkError('SSH_AUTH_FAILED', `${username}@${host}:${port} did not accept the platform key`, {
            ...targetDetails(host, port, username),
            usersTried: [username],
            ...(observed ? { hostKeyFingerprint: observed } : {}),
          }),
        );
      } else if (err.level === 'client-timeout') {
        settle(unreachable(host, port, `no SSH handshake within ${target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms`, { cause: 'timeout' }));
      } else {
        settle(unreachable(host, port, errText(err), err.code ? { cause: err.code } : {}));
      }
    });
    client.on('ready', () => settle(null));
    client.on('close', () => settle(unreachable(host, port, 'the connection closed during the handshake')));
    const config: ConnectConfig = {
      host,
      port,
      username,
      privateKey: target.privateKey,
      readyTimeout: target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveInterval: keepaliveIntervalMs,
      keepaliveCountMax: 3,
      hostVerifier: ((key: Buffer): boolean => {
        observed = fingerprint(key);
        if (known !== undefined && !fingerprintsEqual(known, observed)) {
          mismatch = true;
          return false;
        }
        return true;
      }) as ConnectConfig['hostVerifier'],
    };
    try {
      client.connect(config);
    } catch (e) {
      // Config errors (e.g. a key ssh2 cannot use). The message never holds the key.
      settle(new FormworkError('VALIDATION', `cannot connect to ${host}:${port}: ${errText(e)}`, targetDetails(host, port, username)));
    }
  });
}
