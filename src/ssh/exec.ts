/**
 * Running one command on an open session channel: its output streamed and kept (head and
 * tail), its exit status or signal, and stopping it on timeout or abort. The command is
 * wrapped (quoting.ts `remoteCommand`) so that its process group is known: on timeout or
 * abort the whole group is killed (TERM, then KILL), not just the channel closed.
 */
import { StringDecoder } from 'node:string_decoder';
import { constants as osConstants } from 'node:os';
import type { ClientChannel } from 'ssh2';
import { FormworkError } from '../core/errors.js';
import { targetDetails } from './connection.js';
import { envBlock, killScript, PGID_MARKER, PGID_RE } from './quoting.js';

/**
 * Which of a command's outputs a chunk came from.
 *
 * @example
 *   const onOutput = (chunk: string, stream: OutputStream) => (stream === 'stderr' ? warn : log)(chunk);
 */
export type OutputStream = 'stdout' | 'stderr';

/**
 * How to run a command: its stdin, environment, sudo, timeout, stop signal, output listener.
 *
 * @example
 *   await pool.exec(target, 'apt-get update', { sudo: true, timeoutMs: 600_000, onOutput: (c) => log(c) });
 */
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

/**
 * How a command ended, and what it printed (capped at `maxOutputBytes` per stream).
 *
 * @example
 *   const { exitCode, stdout } = await pool.exec(target, 'hostname');
 */
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

/**
 * The connection a command runs on, as far as running it goes: who it talks to, whether it
 * is closed, and who to tell when it drops.
 *
 * @example
 *   conn.dropListeners.add((err) => fail(err));
 */
export interface ExecConnection {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly closed: boolean;
  /** Called with an SSH_UNREACHABLE error when the connection drops. */
  readonly dropListeners: Set<(err: FormworkError) => void>;
}

/**
 * Opens one more exec channel on the same connection, past its channel limit: the kill
 * script must run even when every slot is taken.
 *
 * @example
 *   const openKiller: OpenKillChannel = (command) => pool.openChannel(conn, command, true);
 */
export type OpenKillChannel = (command: string) => Promise<ClientChannel>;

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

/** Output capture that keeps the first and last `max / 2` bytes, and counts what it dropped between them. */
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

/**
 * Runs the command already started on `channel` (sent as `remoteCommand(…)`) to its end:
 * feeds stdin (the environment block first), streams and keeps its output, and resolves
 * with its exit status. A non-zero exit is a result; throws RUN_TIMEOUT (after
 * `opts.timeoutMs`, the process group killed), RUN_FAILED with `details.aborted` (when
 * `opts.signal` aborts, likewise), SSH_UNREACHABLE (the connection dropped, or the session
 * ended without an exit status). `useSudo`: the command runs via sudo, so its kill must too.
 *
 * @example
 *   const channel = await openChannel(conn, remoteCommand('uptime', { username: 'root' }));
 *   const result = await runOnChannel(conn, channel, {}, false, (c) => openChannel(conn, c, true));
 */
export function runOnChannel(conn: ExecConnection, channel: ClientChannel, opts: ExecOptions, useSudo: boolean, openKiller: OpenKillChannel): Promise<ExecResult> {
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
        .then(() => killRemote(conn, channel, pgid, useSudo, openKiller))
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
        void killRemote(conn, channel, pgid, useSudo, openKiller).finally(() => {
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
async function killRemote(conn: ExecConnection, channel: ClientChannel, pgid: number | undefined, useSudo: boolean, openKiller: OpenKillChannel): Promise<void> {
  try {
    channel.signal('KILL');
  } catch {
    /* sshd may not support signals; the group kill below does the work */
  }
  if (pgid !== undefined && !conn.closed) {
    try {
      const killer = await openKiller(killScript(pgid, useSudo));
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
