/**
 * The SSH probe: waiting until a machine's SSH port answers as an SSH server does — a TCP
 * connection that sends the identification line (`SSH-2.0-…`, RFC 4253 §4.2). An accepted
 * connection alone proves nothing: a transparent proxy or a NAT box on the way accepts
 * every connect and then says nothing (this kind of sandbox does exactly that).
 */
import { Socket } from 'node:net';
import { FormworkError } from '../core/errors.js';

/**
 * How often, and how patiently, to try.
 *
 * @example
 *   await waitForPort(host, 22, 60_000, { attemptTimeoutMs: 1000, intervalMs: 250 });
 */
export interface WaitForPortOptions {
  /** Per attempt (connect and banner). Default 3 s. */
  attemptTimeoutMs?: number;
  /** Pause between attempts. Default 500 ms. */
  intervalMs?: number;
}

/**
 * Retries until an SSH server answers (its banner read) or the deadline passes (→ SSH_UNREACHABLE).
 * `deadlineMs` is an absolute time (`Date.now()` scale); a value below 10^12 is taken as a
 * duration from now, so `waitForPort(h, 22, 60_000)` also does what it says.
 *
 * @example
 *   await waitForPort('198.18.1.10', 22, 60_000); // SSH_UNREACHABLE after a minute of refusals
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
  throw new FormworkError('SSH_UNREACHABLE', `${host}:${port} did not answer as an SSH server before the deadline (${last})`, {
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
    let connected = false;
    let seen = '';
    const finish = (r: true | string): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => finish(connected ? 'connected, but no SSH banner' : 'timeout'));
    sock.once('connect', () => (connected = true));
    sock.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      // The identification line may follow other lines (RFC 4253 §4.2); its start is enough.
      if (/(^|\n)SSH-/.test(seen)) finish(true);
      else if (seen.length > 4096) finish('answered, but not as an SSH server');
    });
    sock.once('end', () => finish(connected ? 'connected, but closed without an SSH banner' : 'closed'));
    sock.once('error', (e: Error & { code?: string }) => finish(e.code ?? e.message));
    sock.connect(port, host);
  });
}
