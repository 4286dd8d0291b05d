/**
 * The SSH layer: a connection pool and the operations the engine needs on a node
 * (run a command, upload a file, find the login user, wait for TCP/22).
 *
 * Host keys follow the yardstick's "known host" rule: with no recorded fingerprint the
 * observed one is accepted and reported (trust on first use); with one recorded, a
 * different key is refused during key exchange, before authentication, as
 * HOST_KEY_MISMATCH.
 *
 * Commands run as `/bin/sh -c` on the node. Each command is wrapped so that its process
 * group is known: on timeout the whole group is killed (TERM, then KILL), not just the
 * channel closed. Environment variables are passed as an `env K=V` prefix (sshd's
 * AcceptEnv usually rejects `setenv` requests), and sudo as `sudo -n -E` when the login
 * user is not root.
 *
 * Private keys are never logged nor put into errors.
 */
import { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { constants as osConstants } from 'node:os';
import type { Client as SshClient, ClientChannel, ConnectConfig } from 'ssh2';
import { FormworkError } from '../core/errors.js';
import { fingerprint, fingerprintsEqual, assertPrivateKey } from './keys.js';
import { ssh2 } from './ssh2.js';


// ---------------------------------------------------------------------------------------
// Types

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
}

export interface SshConnectionInfo {
  host: string;
  port: number;
  username: string;
  /** The fingerprint the server presented (record it on first contact). */
  hostKeyFingerprint: string;
  /** True when an already open pooled connection was used. */
  reused: boolean;
}

export type OutputStream = 'stdout' | 'stderr';

export interface ExecOptions {
  stdin?: string | Buffer;
  env?: Record<string, string>;
  /** Run as root via `sudo -n -E` (no-op when the login user is root). */
  sudo?: boolean;
  /** Kill the remote command (its whole process group) after this long. Default: none. */
  timeoutMs?: number;
  /**
   * Kill the remote command (its whole process group) when this aborts; the call then fails
   * with a retryable RUN_FAILED (`details.aborted`), as a local run stopped by its worker does.
   */
  signal?: AbortSignal;
  /** Called as output arrives, in arrival order, decoded as UTF-8. Not capped. */
  onOutput?: (chunk: string, stream: OutputStream) => void;
  /** Per stream, bytes kept in memory (head and tail halves). Default 1 MiB. */
  maxOutputBytes?: number;
}

export interface ExecResult {
  /** The exit status; 128 + signal number when the command was killed by a signal. */
  exitCode: number;
  /** Signal name without `SIG` (e.g. `TERM`) when the command was killed by a signal. */
  signal?: string;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr exceeded maxOutputBytes and its middle was dropped. */
  truncated: boolean;
}

export interface UploadOptions {
  /** Write as root via sudo (for root-owned paths) when the login user is not root. */
  sudo?: boolean;
  timeoutMs?: number;
}

export interface SshPoolOptions {
  /** Close a connection that has had no channel open for this long. Default 30 s. */
  idleMs?: number;
  /** Channels open at once on one connection (sshd's MaxSessions default is 10). Default 8. */
  maxChannelsPerConnection?: number;
  /** SSH keepalive interval, to notice dead connections. Default 15 s. */
  keepaliveIntervalMs?: number;
}

export interface PoolStats {
  /** Connections open now. */
  open: number;
  /** Connections opened since the pool was created. */
  opened: number;
}

const DEFAULT_PORT = 22;
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_OUTPUT = 1024 * 1024;
const PGID_MARKER = '__FORMWORK_PGID__=';
const PGID_RE = /__FORMWORK_PGID__=(\d+)\r?\n/;

// ---------------------------------------------------------------------------------------
// Shell quoting and command wrapping

/** POSIX shell single-quoting; safe for any string (quotes, `$`, newlines, backslashes). */
export function shellQuote(s: string): string {
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Shell text that reads the environment from stdin — a line with a count N, then N lines of
 * `export NAME='value'` — and evaluates it. Values travel on stdin, never on a command line,
 * which `ps`, /proc and sudo's log (`COMMAND=…`) would show: inputs can be secrets. `read`
 * takes stdin a byte at a time, so what follows the block reaches the command untouched.
 */
const ENV_READER =
  'IFS= read -r __fw_n || exit 125; __fw_e=; ' +
  'while [ "$__fw_n" -gt 0 ]; do IFS= read -r __fw_l || exit 125; __fw_e="$__fw_e$__fw_l\n"; __fw_n=$((__fw_n - 1)); done; ' +
  'eval "$__fw_e"; unset __fw_n __fw_e __fw_l; ';

function checkEnv(env: Record<string, string>): Array<[string, string]> {
  const entries = Object.entries(env);
  for (const [k, v] of entries) {
    if (!ENV_NAME_RE.test(k)) {
      throw new FormworkError('VALIDATION', `environment variable name ${JSON.stringify(k)} is not valid`, { path: `env.${k}` });
    }
    if (typeof v !== 'string' || v.includes('\0')) {
      throw new FormworkError('VALIDATION', `environment variable ${k} must be a string without NUL bytes`, { path: `env.${k}` });
    }
  }
  return entries;
}

/** The block ENV_READER reads: what `wrapCommand(…, { env })` expects first on stdin. */
export function envBlock(env: Record<string, string>): string {
  const text = checkEnv(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
  return `${text.split('\n').length - 1}\n${text}`;
}

/**
 * The shell text that runs `command` (via sudo when asked and the user is not root), with
 * the environment given as `envBlock(env)` at the start of its stdin when `env` has any
 * variable. Exported for tests and for callers that build their own wrapper.
 */
export function wrapCommand(command: string, opts: { env?: Record<string, string>; sudo?: boolean; username: string }): string {
  const withEnv = checkEnv(opts.env ?? {}).length > 0;
  const useSudo = opts.sudo === true && opts.username !== 'root';
  const run = `/bin/sh -c ${shellQuote(command)}`;
  // The environment is read inside the sudo'd shell, so that sudo's env_reset cannot drop it.
  const inner = withEnv ? `${ENV_READER}exec ${run}` : run;
  // sudo -n: never prompt; -E: keep the caller's environment where sudoers allows.
  if (useSudo) return `sudo -n -E sh -c ${shellQuote(inner)}`;
  return withEnv ? `/bin/sh -c ${shellQuote(inner)}` : run;
}

/**
 * The full text sent to sshd: print the process group id (the login shell is a session
 * leader, so its pid is the group id) on stderr as a marker, then exec the command.
 */
function remoteCommand(command: string, opts: { env?: Record<string, string>; sudo?: boolean; username: string }): string {
  const wrapper = `printf '${PGID_MARKER}%s\\n' "$$" >&2; exec ${wrapCommand(command, opts)}`;
  return `exec /bin/sh -c ${shellQuote(wrapper)}`;
}

function killScript(pgid: number, useSudo: boolean): string {
  // dash's kill builtin cannot signal a group; fall back to /bin/kill (procps, busybox).
  const script =
    `P=${pgid}; k() { kill -s "$1" -- "-$P" 2>/dev/null || /bin/kill -s "$1" -- "-$P" 2>/dev/null; }; ` +
    `k TERM || exit 0; i=0; while k 0; do i=$((i+1)); if [ "$i" -ge 30 ]; then k KILL; exit 0; fi; sleep 0.1; done; exit 0`;
  return useSudo ? `sudo -n sh -c ${shellQuote(script)}` : `/bin/sh -c ${shellQuote(script)}`;
}

// ---------------------------------------------------------------------------------------
// Output capture: keep head and tail

class HeadTail {
  private head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  private dropped = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const headMax = Math.ceil(this.max / 2);
    const tailMax = this.max - headMax;
    if (this.headLen < headMax) {
      const take = Math.min(headMax - this.headLen, chunk.length);
      this.head.push(chunk.subarray(0, take));
      this.headLen += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    while (this.tailLen > tailMax) {
      const first = this.tail[0];
      const excess = this.tailLen - tailMax;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailLen -= first.length;
        this.dropped += first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailLen -= excess;
        this.dropped += excess;
      }
    }
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  toString(): string {
    const head = Buffer.concat(this.head);
    const tail = Buffer.concat(this.tail);
    if (!this.dropped) return Buffer.concat([head, tail]).toString('utf8');
    return `${head.toString('utf8')}\n[... ${this.dropped} bytes truncated ...]\n${tail.toString('utf8')}`;
  }
}

// ---------------------------------------------------------------------------------------
// Errors

function targetDetails(host: string, port: number, username?: string): Record<string, unknown> {
  return username === undefined ? { host, port } : { host, port, user: username };
}

function unreachable(host: string, port: number, why: string, extra: Record<string, unknown> = {}): FormworkError {
  return new FormworkError('SSH_UNREACHABLE', `SSH to ${host}:${port} failed: ${why}`, { host, port, ...extra });
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------
// Opening one connection

interface OpenedConnection {
  client: SshClient;
  hostKeyFingerprint: string;
}

function openConnection(target: SshTarget, keepaliveIntervalMs: number): Promise<OpenedConnection> {
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

// ---------------------------------------------------------------------------------------
// The pool

class PooledConnection {
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

export class SshPool {
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

  /**
   * Opens (or reuses) the connection for host:port:user and checks the host key.
   * Reports the observed fingerprint (record it when `knownHostKey` was undefined).
   */
  async connect(target: SshTarget): Promise<SshConnectionInfo> {
    const { conn, reused } = await this.acquireConnection(target);
    this.scheduleIdle(conn);
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
    return this.runOnChannel(conn, channel, opts, target);
  }

  /**
   * A session channel running `command`, on the pooled connection when it can. Nothing has
   * run when a channel cannot be opened, so trying again is safe.
   */
  private async openSession(target: SshTarget, command: string): Promise<{ conn: PooledConnection; channel: ClientChannel }> {
    const { conn, reused } = await this.acquireConnection(target);
    try {
      return { conn, channel: await this.openChannel(conn, command) };
    } catch (e) {
      if (!reused || (e instanceof FormworkError && e.code !== 'SSH_UNREACHABLE')) throw e;
      if (conn.closed || conn.active === 0) {
        // A stale pooled connection: one retry on a fresh one.
        this.drop(conn);
        const fresh = await this.acquireConnection(target);
        return { conn: fresh.conn, channel: await this.openChannel(fresh.conn, command) };
      }
    }
    // Other commands run on it, so the connection works: sshd refused one session more (its
    // MaxSessions is below ours). Use no more than it has now and wait for one to end; sshd
    // may count an ended session a moment longer, so a refusal then is retried briefly.
    conn.channelLimit = Math.max(1, conn.active);
    for (let attempt = 1; ; attempt++) {
      try {
        return { conn, channel: await this.openChannel(conn, command) };
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

  // -- internals ------------------------------------------------------------------------

  private async acquireConnection(target: SshTarget): Promise<{ conn: PooledConnection; reused: boolean }> {
    const port = target.port ?? DEFAULT_PORT;
    const key = `${target.host}:${port}:${target.username}`;
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

  private drop(conn: PooledConnection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    void this.forget(conn);
    // Closed from now, not from its close event: an acquire in the meantime must not get it.
    const open = !conn.closed;
    conn.closed = true;
    if (open) conn.client.end();
  }

  private scheduleIdle(conn: PooledConnection): void {
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
  private async openChannel(conn: PooledConnection, command: string, bypassLimit = false): Promise<ClientChannel> {
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

  private runOnChannel(conn: PooledConnection, channel: ClientChannel, opts: ExecOptions, target: SshTarget): Promise<ExecResult> {
    const max = Math.max(2, opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
    const out = new HeadTail(max);
    const err = new HeadTail(max);
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const onOutput = opts.onOutput;
    let pgid: number | undefined;
    let pgidArrived: () => void = () => undefined;
    const pgidKnown = new Promise<void>((resolve) => (pgidArrived = resolve));
    let markerPending: Buffer | null = Buffer.alloc(0); // stderr held until the pgid marker is seen

    const emit = (stream: OutputStream, data: Buffer): void => {
      if (data.length === 0) return;
      (stream === 'stdout' ? out : err).push(data);
      if (onOutput) {
        const text = decoders[stream].write(data);
        if (text) {
          try {
            onOutput(text, stream);
          } catch {
            /* a faulty listener must not break the run */
          }
        }
      }
    };
    const flushDecoders = (): void => {
      if (!onOutput) return;
      for (const s of ['stdout', 'stderr'] as const) {
        const rest = decoders[s].end();
        if (rest) {
          try {
            onOutput(rest, s);
          } catch {
            /* ignore */
          }
        }
      }
    };
    const onStderr = (data: Buffer): void => {
      if (markerPending === null) return emit('stderr', data);
      const buf: Buffer = Buffer.concat([markerPending, data]);
      const text = buf.toString('latin1'); // byte-preserving for index arithmetic
      const m = PGID_RE.exec(text);
      if (m) {
        pgid = Number(m[1]);
        pgidArrived();
        markerPending = null;
        emit('stderr', Buffer.concat([buf.subarray(0, m.index), buf.subarray(m.index + m[0].length)]));
      } else if (buf.length > 4096 && !text.includes(PGID_MARKER)) {
        markerPending = null;
        emit('stderr', buf);
      } else {
        markerPending = buf;
      }
    };

    return new Promise<ExecResult>((resolve, reject) => {
      let finished = false;
      let exitCode: number | undefined;
      let signal: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;

      let aborted = false;
      const cleanup = (): void => {
        finished = true;
        if (timer) clearTimeout(timer);
        conn.dropListeners.delete(onDrop);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const fail = (e: FormworkError): void => {
        if (finished) return;
        cleanup();
        try {
          channel.close();
        } catch {
          /* already closed */
        }
        reject(e);
      };
      const onDrop = (e: FormworkError): void => {
        if (timedOut || aborted) return; // those paths report RUN_TIMEOUT or the stop
        fail(
          new FormworkError('SSH_UNREACHABLE', `the SSH connection to ${conn.host}:${conn.port} dropped while a command was running`, {
            ...targetDetails(conn.host, conn.port, conn.username),
            cause: e.message,
          }),
        );
      };
      conn.dropListeners.add(onDrop);

      channel.on('data', (d: Buffer) => emit('stdout', d));
      channel.stderr.on('data', (d: Buffer) => onStderr(d));
      channel.on('exit', (code: number | null, sig?: string) => {
        if (typeof code === 'number') exitCode = code;
        else if (sig) {
          signal = sig.replace(/^SIG/, '');
          const num = (osConstants.signals as Record<string, number | undefined>)[`SIG${signal}`];
          exitCode = 128 + (num ?? 0);
        }
      });
      channel.on('error', () => {
        /* surfaced through close / the connection's drop */
      });
      channel.on('close', () => {
        if (finished || timedOut || aborted) return;
        if (markerPending && markerPending.length) {
          const rest = markerPending;
          markerPending = null;
          emit('stderr', rest);
        }
        flushDecoders();
        if (exitCode === undefined) {
          // Closed without an exit status: the session process died or the link dropped.
          // Give the connection's 'close' a moment to arrive so the message says so.
          setTimeout(() => {
            fail(
              new FormworkError('SSH_UNREACHABLE', `the SSH session on ${conn.host}:${conn.port} ended without an exit status`, {
                ...targetDetails(conn.host, conn.port, conn.username),
              }),
            );
          }, 50);
          return;
        }
        cleanup();
        const result: ExecResult = {
          exitCode,
          stdout: out.toString(),
          stderr: err.toString(),
          truncated: out.truncated || err.truncated,
        };
        if (signal) result.signal = signal;
        resolve(result);
      });

      const onAbort = (): void => {
        if (finished || timedOut || aborted) return;
        aborted = true;
        // Stopped before the command said its process group: wait (briefly) until it does,
        // else closing the channel could leave it running.
        const ready = pgid !== undefined ? Promise.resolve() : Promise.race([pgidKnown, new Promise<void>((r) => setTimeout(r, 5000).unref())]);
        void ready
          .then(() => this.killRemote(conn, channel, pgid, opts.sudo === true && target.username !== 'root'))
          .finally(() => {
            flushDecoders();
            fail(
              new FormworkError('RUN_FAILED', `the command on ${conn.host} was stopped (the worker is stopping or lost its lease) and its processes killed`, {
                ...targetDetails(conn.host, conn.port, conn.username),
                aborted: true,
              }, { retryable: true }),
            );
          });
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.signal?.aborted) onAbort();

      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        const timeoutMs = opts.timeoutMs;
        timer = setTimeout(() => {
          if (aborted) return; // already being stopped
          timedOut = true;
          void this.killRemote(conn, channel, pgid, opts.sudo === true && target.username !== 'root').finally(() => {
            flushDecoders();
            fail(
              new FormworkError('RUN_TIMEOUT', `the command on ${conn.host} did not finish within ${timeoutMs} ms and was killed`, {
                ...targetDetails(conn.host, conn.port, conn.username),
                timeoutMs,
                stdoutTail: out.toString().slice(-2000),
                stderrTail: err.toString().slice(-2000),
              }),
            );
          });
        }, timeoutMs);
      }

      // stdin: the environment first (see wrapCommand), then the caller's stdin (or
      // nothing), then EOF, so commands reading stdin do not hang.
      const env = opts.env && Object.keys(opts.env).length ? envBlock(opts.env) : '';
      const stdin = typeof opts.stdin === 'string' || opts.stdin === undefined ? env + (opts.stdin ?? '') : Buffer.concat([Buffer.from(env), opts.stdin]);
      try {
        if (stdin.length) channel.end(stdin);
        else channel.end();
      } catch {
        /* the channel may close before stdin is accepted; close handles it */
      }
    });
  }

  /** Signals the channel, kills the remote process group, closes the channel. */
  private async killRemote(conn: PooledConnection, channel: ClientChannel, pgid: number | undefined, useSudo: boolean): Promise<void> {
    try {
      channel.signal('KILL');
    } catch {
      /* sshd may not support signals; the group kill below does the work */
    }
    if (pgid !== undefined && !conn.closed) {
      try {
        const killer = await this.openChannel(conn, killScript(pgid, useSudo), true);
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            killer.close();
            resolve();
          }, 10_000);
          killer.on('data', () => {});
          killer.stderr.on('data', () => {});
          killer.on('close', () => {
            clearTimeout(t);
            resolve();
          });
          killer.end();
        });
      } catch {
        /* best effort: the connection may be gone */
      }
    }
    await new Promise<void>((resolve) => {
      if (conn.closed) return resolve();
      const t = setTimeout(resolve, 2000);
      channel.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      try {
        channel.close();
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------
// Finding the login user

export interface FindLoginUserOptions {
  port?: number;
  knownHostKey?: string;
  /** Per attempt. Default 15 s. */
  connectTimeoutMs?: number;
  /** Keep the connection that worked in this pool (the next exec as that user reuses it). */
  pool?: SshPool;
}

export interface LoginUser {
  username: string;
  hostKeyFingerprint: string;
}

/**
 * Tries `candidates` in order (one connection each: OpenSSH refuses a change of user on
 * one connection) and returns the first that accepts the key. Unreachable host or a host
 * key mismatch stops the search at once; none accepted → SSH_AUTH_FAILED listing the users.
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
      const target = { host, port, username, privateKey, knownHostKey: opts.knownHostKey ?? observed, connectTimeoutMs: opts.connectTimeoutMs };
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

// ---------------------------------------------------------------------------------------
// Waiting for TCP

export interface WaitForPortOptions {
  /** Per connect attempt. Default 3 s. */
  attemptTimeoutMs?: number;
  /** Pause between attempts. Default 500 ms. */
  intervalMs?: number;
}

/**
 * Retries a TCP connect until it succeeds or the deadline passes (→ SSH_UNREACHABLE).
 * `deadlineMs` is an absolute time (`Date.now()` scale); a value below 10^12 is taken as a
 * duration from now, so `waitForPort(h, 22, 60_000)` also does what it says.
 */
export async function waitForPort(host: string, port: number, deadlineMs: number, opts: WaitForPortOptions = {}): Promise<void> {
  const deadline = deadlineMs < 1e12 ? Date.now() + deadlineMs : deadlineMs;
  const attemptTimeout = opts.attemptTimeoutMs ?? 3000;
  const interval = opts.intervalMs ?? 500;
  let last = 'no attempt made';
  let attempts = 0;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 && attempts > 0) break;
    attempts++;
    const r = await tryConnect(host, port, Math.max(1, Math.min(attemptTimeout, left)));
    if (r === true) return;
    last = r;
    const pause = Math.min(interval, deadline - Date.now());
    if (pause <= 0) break;
    await new Promise((res) => setTimeout(res, pause));
  }
  throw new FormworkError('SSH_UNREACHABLE', `${host}:${port} did not accept a TCP connection before the deadline (${last})`, {
    host,
    port,
    attempts,
    cause: last,
  });
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const sock = new Socket();
    let done = false;
    const finish = (r: true | string): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => finish('timeout'));
    sock.once('connect', () => finish(true));
    sock.once('error', (e: Error & { code?: string }) => finish(e.code ?? e.message));
    sock.connect(port, host);
  });
}
