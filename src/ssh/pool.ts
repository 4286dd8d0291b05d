/**
 * The connection pool under SshPool: one connection per host:port:user, shared by
 * concurrent callers, closed when idle, with a cap on the channels open at once on each
 * (sshd's MaxSessions, learnt when sshd refuses a session).
 */
import type { Client as SshClient, ClientChannel } from 'ssh2';
import { FormworkError } from '../core/errors.js';
import { DEFAULT_PORT, errText, openConnection, unreachable, type SshTarget } from './connection.js';
import { fingerprintsEqual } from './keys.js';

/**
 * How the pool keeps connections.
 *
 * @example
 *   new SshPool({ idleMs: 5_000, maxChannelsPerConnection: 4 });
 */
export interface SshPoolOptions {
  /** Close a connection that has had no channel open for this long. Default 30 s. */
  idleMs?: number;
  /** Channels open at once on one connection (sshd's MaxSessions default is 10). Default 8. */
  maxChannelsPerConnection?: number;
  /** SSH keepalive interval, to notice dead connections. Default 15 s. */
  keepaliveIntervalMs?: number;
}

/**
 * How many connections a pool has open, and has opened.
 *
 * @example
 *   expect(pool.stats()).toEqual({ open: 1, opened: 1 });
 */
export interface PoolStats {
  /** Connections open now. */
  open: number;
  /** Connections opened since the pool was created. */
  opened: number;
}

/**
 * One open connection of the pool, with its channel accounting.
 *
 * @example
 *   const { conn } = await connections.acquireConnection(target);
 *   if (conn.closed) …
 */
export class PooledConnection {
  active = 0;
  closed = false;
  /** Lowered to what sshd allowed when it refused a session (its MaxSessions). */
  channelLimit = Infinity;
  idleTimer: NodeJS.Timeout | undefined;
  readonly slotWaiters: Array<() => void> = [];
  /** Called with an SSH_UNREACHABLE error when the connection drops. */
  readonly dropListeners = new Set<(err: FormworkError) => void>();

  constructor(
    readonly key: string,
    readonly host: string,
    readonly port: number,
    readonly username: string,
    readonly client: SshClient,
    readonly hostKeyFingerprint: string,
  ) {}
}

/**
 * The connections SshPool runs commands on.
 *
 * @example
 *   const connections = new ConnectionPool({ idleMs: 30_000 });
 *   const { conn } = await connections.acquireConnection(target);
 *   const channel = await connections.openChannel(conn, 'exec /bin/sh -c uptime');
 */
export class ConnectionPool {
  private readonly conns = new Map<string, Promise<PooledConnection>>();
  private readonly live = new Set<PooledConnection>();
  private opened = 0;
  private readonly idleMs: number;
  private readonly maxChannels: number;
  private readonly keepaliveIntervalMs: number;

  constructor(opts: SshPoolOptions = {}) {
    this.idleMs = opts.idleMs ?? 30_000;
    this.maxChannels = Math.max(1, opts.maxChannelsPerConnection ?? 8);
    this.keepaliveIntervalMs = opts.keepaliveIntervalMs ?? 15_000;
  }

  /** Connections open now and opened so far. */
  stats(): PoolStats {
    return { open: this.live.size, opened: this.opened };
  }

  /** Ends every connection. The pool can still be used afterwards (it reconnects). */
  async close(): Promise<void> {
    const pending = [...this.conns.values()];
    this.conns.clear();
    const settled = await Promise.allSettled(pending);
    const all = new Set(this.live);
    for (const s of settled) if (s.status === 'fulfilled') all.add(s.value);
    await Promise.all(
      [...all].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.closed) return resolve();
            const t = setTimeout(() => {
              c.client.destroy();
              resolve();
            }, 2000);
            t.unref();
            c.client.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            this.drop(c);
          }),
      ),
    );
  }


  /**
   * The connection for target's host:port:user (and machine): the pooled one (`reused`) or a new one.
   * Concurrent first callers share one attempt; a failed attempt is not cached. Refuses a
   * pooled connection whose host key is not `target.knownHostKey` (HOST_KEY_MISMATCH).
   */
  async acquireConnection(target: SshTarget): Promise<{ conn: PooledConnection; reused: boolean }> {
    const port = target.port ?? DEFAULT_PORT;
    const key = `${target.host}:${port}:${target.username}:${target.machine ?? ''}`;
    let reused = true;
    let p = this.conns.get(key);
    if (!p) {
      reused = false;
      p = this.create(key, target);
      this.conns.set(key, p);
      p.catch(() => {
        if (this.conns.get(key) === p) this.conns.delete(key);
      });
    }
    let conn: PooledConnection;
    try {
      conn = await p;
    } catch (e) {
      if (!reused) throw e;
      // A concurrent first attempt failed; failures are not cached, try once ourselves.
      return this.acquireConnection(target);
    }
    if (conn.closed) return this.acquireConnection(target);
    if (target.knownHostKey !== undefined && !fingerprintsEqual(target.knownHostKey, conn.hostKeyFingerprint)) {
      throw new FormworkError(
        'HOST_KEY_MISMATCH',
        `the SSH host key of ${conn.host}:${conn.port} is ${conn.hostKeyFingerprint}, but ${target.knownHostKey} was recorded; refusing to connect`,
        { host: conn.host, port: conn.port, expected: target.knownHostKey, observed: conn.hostKeyFingerprint },
      );
    }
    return { conn, reused };
  }

  private async create(key: string, target: SshTarget): Promise<PooledConnection> {
    const opened = await openConnection(target, this.keepaliveIntervalMs);
    this.opened++;
    const conn = new PooledConnection(key, target.host, target.port ?? DEFAULT_PORT, target.username, opened.client, opened.hostKeyFingerprint);
    this.live.add(conn);
    opened.client.on('close', () => {
      conn.closed = true;
      if (conn.idleTimer) clearTimeout(conn.idleTimer);
      this.live.delete(conn);
      const err = unreachable(conn.host, conn.port, 'the connection dropped', { user: conn.username });
      for (const l of [...conn.dropListeners]) l(err);
      for (const w of conn.slotWaiters.splice(0)) w();
      void this.forget(conn);
    });
    this.scheduleIdle(conn);
    return conn;
  }

  private async forget(conn: PooledConnection): Promise<void> {
    const p = this.conns.get(conn.key);
    if (!p) return;
    try {
      if ((await p) === conn && this.conns.get(conn.key) === p) this.conns.delete(conn.key);
    } catch {
      /* a failed attempt removes itself */
    }
  }

  /** Ends a connection and forgets it; closed at once for every later acquire. */
  drop(conn: PooledConnection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    void this.forget(conn);
    // Closed from now, not from its close event: an acquire in the meantime must not get it.
    const open = !conn.closed;
    conn.closed = true;
    if (open) conn.client.end();
  }

  /** (Re)starts the idle timer of a connection with no channel open. */
  scheduleIdle(conn: PooledConnection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    if (conn.closed || conn.active > 0) return;
    conn.idleTimer = setTimeout(() => {
      if (conn.active === 0) this.drop(conn);
    }, this.idleMs);
    conn.idleTimer.unref();
  }

  private async takeSlot(conn: PooledConnection, bypassLimit: boolean): Promise<void> {
    while (!bypassLimit && conn.active >= Math.min(this.maxChannels, conn.channelLimit) && !conn.closed) {
      await new Promise<void>((resolve) => conn.slotWaiters.push(resolve));
    }
    if (conn.closed) throw unreachable(conn.host, conn.port, 'the connection dropped', { user: conn.username });
    conn.active++;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
  }

  private releaseSlot(conn: PooledConnection): void {
    conn.active--;
    const next = conn.slotWaiters.shift();
    if (next) next();
    this.scheduleIdle(conn);
  }

  /** Opens an exec channel holding a slot; the slot is released when the channel closes. */
  async openChannel(conn: PooledConnection, command: string, bypassLimit = false): Promise<ClientChannel> {
    await this.takeSlot(conn, bypassLimit);
    return new Promise<ClientChannel>((resolve, reject) => {
      let done = false;
      const onDrop = (err: FormworkError): void => {
        if (done) return;
        done = true;
        this.releaseSlot(conn);
        reject(err);
      };
      conn.dropListeners.add(onDrop);
      try {
        conn.client.exec(command, (err, channel) => {
          conn.dropListeners.delete(onDrop);
          if (done) {
            if (!err) channel.close();
            return;
          }
          done = true;
          if (err) {
            this.releaseSlot(conn);
            reject(unreachable(conn.host, conn.port, `cannot open a session channel: ${err.message}`, { user: conn.username }));
            return;
          }
          let released = false;
          channel.once('close', () => {
            if (released) return;
            released = true;
            this.releaseSlot(conn);
          });
          resolve(channel);
        });
      } catch (e) {
        conn.dropListeners.delete(onDrop);
        done = true;
        this.releaseSlot(conn);
        reject(unreachable(conn.host, conn.port, errText(e), { user: conn.username }));
      }
    });
  }
}
