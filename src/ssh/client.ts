/**
 * The SSH client the engine and the providers use: SshPool runs commands and uploads files
 * on nodes over pooled connections (pool.ts). The parts live beside it: opening one
 * connection and the host key rule (connection.ts), shell quoting and command wrapping
 * (quoting.ts), running one command (exec.ts), finding the login user (login.ts), waiting
 * for TCP/22 (probe.ts).
 *
 * Private keys are never logged nor put into errors.
 */
import type { ClientChannel } from 'ssh2';
import { FormworkError } from '../core/errors.js';
import type { SshConnectionInfo, SshTarget } from './connection.js';
import { runOnChannel, type ExecOptions, type ExecResult } from './exec.js';
import { ConnectionPool, type PoolStats, type PooledConnection, type SshPoolOptions } from './pool.js';
import { remoteCommand, shellQuote } from './quoting.js';

/**
 * How to write an uploaded file.
 *
 * @example
 *   await pool.upload(target, '/etc/motd', 'hello\n', 0o644, { sudo: true });
 */
export interface UploadOptions {
  /** Write as root via sudo (for root-owned paths) when the login user is not root. */
  sudo?: boolean;
  timeoutMs?: number;
}

/**
 * Runs commands and uploads files on nodes, reusing one connection per host:port:user.
 *
 * @example
 *   const pool = new SshPool();
 *   const { exitCode, stdout } = await pool.exec({ host, username: 'root', privateKey }, 'hostname');
 *   await pool.close();
 */
export class SshPool {
  private readonly connections: ConnectionPool;

  constructor(opts: SshPoolOptions = {}) {
    this.connections = new ConnectionPool(opts);
  }

  /**
   * Opens (or reuses) the connection for host:port:user and checks the host key.
   * Reports the observed fingerprint (record it when `knownHostKey` was undefined).
   */
  async connect(target: SshTarget): Promise<SshConnectionInfo> {
    const { conn, reused } = await this.connections.acquireConnection(target);
    this.connections.scheduleIdle(conn);
    return { host: conn.host, port: conn.port, username: conn.username, hostKeyFingerprint: conn.hostKeyFingerprint, reused };
  }

  /**
   * Runs a command (via `/bin/sh -c`). A non-zero exit is a result, not an error: callers
   * decide whether it is RUN_FAILED. Throws RUN_TIMEOUT (remote process group killed),
   * SSH_UNREACHABLE (connect failed or the connection dropped mid-command),
   * SSH_AUTH_FAILED, HOST_KEY_MISMATCH, VALIDATION (bad env name, unparseable key).
   */
  async exec(target: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const full = remoteCommand(command, { env: opts.env, sudo: opts.sudo, username: target.username });
    const { conn, channel } = await this.openSession(target, full);
    const useSudo = opts.sudo === true && target.username !== 'root';
    // The kill script goes past the channel cap: every slot may be taken when it must run.
    return runOnChannel(conn, channel, opts, useSudo, (kill) => this.connections.openChannel(conn, kill, true));
  }

  /**
   * A session channel running `command`, on the pooled connection when it can. Nothing has
   * run when a channel cannot be opened, so trying again is safe.
   */
  private async openSession(target: SshTarget, command: string): Promise<{ conn: PooledConnection; channel: ClientChannel }> {
    const { conn, reused } = await this.connections.acquireConnection(target);
    try {
      return { conn, channel: await this.connections.openChannel(conn, command) };
    } catch (e) {
      if (!reused || (e instanceof FormworkError && e.code !== 'SSH_UNREACHABLE')) throw e;
      if (conn.closed || conn.active === 0) {
        // A stale pooled connection: one retry on a fresh one.
        this.connections.drop(conn);
        const fresh = await this.connections.acquireConnection(target);
        return { conn: fresh.conn, channel: await this.connections.openChannel(fresh.conn, command) };
      }
    }
    // Other commands run on it, so the connection works: sshd refused one session more (its
    // MaxSessions is below ours). Use no more than it has now and wait for one to end; sshd
    // may count an ended session a moment longer, so a refusal then is retried briefly.
    conn.channelLimit = Math.max(1, conn.active);
    for (let attempt = 1; ; attempt++) {
      try {
        return { conn, channel: await this.connections.openChannel(conn, command) };
      } catch (e) {
        if (attempt >= 4 || conn.closed || !(e instanceof FormworkError) || e.code !== 'SSH_UNREACHABLE') throw e;
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  /**
   * Writes `content` to `remotePath` (atomically: a temp file beside it, then rename) and
   * sets its mode (default 0644). With `sudo`, writes as root.
   */
  async upload(target: SshTarget, remotePath: string, content: string | Buffer, mode = 0o644, opts: UploadOptions = {}): Promise<void> {
    if (!remotePath || remotePath.includes('\0')) {
      throw new FormworkError('VALIDATION', 'remote path must be a non-empty string', { path: 'remotePath' });
    }
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new FormworkError('VALIDATION', `mode ${mode} is not a valid file mode`, { path: 'mode' });
    }
    const p = shellQuote(remotePath);
    const m = mode.toString(8).padStart(4, '0');
    const script =
      `set -e; umask 077; t=${p}.formwork-tmp.$$; trap 'rm -f "$t"' EXIT; ` +
      `cat > "$t"; chmod ${m} "$t"; mv -f "$t" ${p}; trap - EXIT`;
    const res = await this.exec(target, script, { stdin: content, sudo: opts.sudo, timeoutMs: opts.timeoutMs, maxOutputBytes: 64 * 1024 });
    if (res.exitCode !== 0) {
      throw new FormworkError('RUN_FAILED', `upload to ${target.host}:${remotePath} failed (exit ${res.exitCode}): ${res.stderr.trim()}`, {
        host: target.host,
        path: remotePath,
        exitCode: res.exitCode,
        stderr: res.stderr,
      });
    }
  }

  /** Connections open now and opened so far. */
  stats(): PoolStats {
    return this.connections.stats();
  }

  /** Ends every connection. The pool can still be used afterwards (it reconnects). */
  async close(): Promise<void> {
    await this.connections.close();
  }
}
