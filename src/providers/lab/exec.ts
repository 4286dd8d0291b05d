/**
 * Small process helpers for the lab driver: run a tool and capture its output, check that
 * tools exist, and inspect or signal processes by PID without ever killing a stranger.
 *
 * @example
 *   await run('ip', ['link', 'add', 'fwb0', 'type', 'bridge']);
 *   const ok = await tryRun('ip', ['netns', 'del', 'x']); // false instead of throwing
 */
import { spawn } from 'node:child_process';
import { readFileSync, accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FormworkError } from '../../core/errors.js';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
  /** Stops the command — its whole process group, so a script's children go too — when aborted. */
  signal?: AbortSignal;
}

/** The directories system tools live in, which a non-login PATH (`su` without `-`, cron) may lack. */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/**
 * This process's environment with the system directories added to PATH: the tools `which`
 * finds are the tools `run` and `spawn` run, and a command run inside a chroot finds its
 * image's sbin tools (useradd, pam-auth-update).
 */
export function systemEnv(): NodeJS.ProcessEnv {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return { ...process.env, PATH: [...dirs, ...SYSTEM_DIRS.filter((d) => !dirs.includes(d))].join(delimiter) };
}

const MAX_OUTPUT = 64 * 1024 * 1024;

/**
 * Runs a command; a non-zero exit becomes a PROVIDER_ERROR carrying stderr. With a signal,
 * the command leads a process group of its own, and stopping it (the signal, or its
 * timeout) stops its children too: a script's children would otherwise run on.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { signal } = opts;
    if (signal?.aborted) return reject(new FormworkError('PROVIDER_ERROR', `${cmd} was not started: the run was stopped`, { cmd, aborted: true }));
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const group = signal !== undefined;
    const child = spawn(cmd, args, { env: opts.env ?? systemEnv(), detached: group, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let why: 'timeout' | 'aborted' | 'output' | undefined;
    const stop = (reason: NonNullable<typeof why>) => {
      why ??= reason;
      try {
        if (group && child.pid) process.kill(-child.pid, 'SIGTERM');
        else child.kill('SIGTERM');
      } catch {
        /* already gone */
      }
    };
    const collect = (chunk: string, to: 'out' | 'err') => {
      if (to === 'out') stdout += chunk;
      else stderr += chunk;
      if (stdout.length + stderr.length > MAX_OUTPUT) stop('output');
    };
    // Decoded as streams, so a character split across two chunks stays whole.
    child.stdout.setEncoding('utf8').on('data', (c: string) => collect(c, 'out'));
    child.stderr.setEncoding('utf8').on('data', (c: string) => collect(c, 'err'));
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      done();
      reject(e.code === 'ENOENT' ? new FormworkError('MISSING_TOOL', `${cmd} is not installed`, { tool: cmd }) : new FormworkError('PROVIDER_ERROR', `${cmd} could not start: ${e.message}`, { cmd }));
    });
    child.on('close', (code, sig) => {
      done();
      if (why === 'aborted') return reject(new FormworkError('PROVIDER_ERROR', `${cmd} was stopped: the run was stopped`, { cmd, aborted: true }));
      if (why === 'timeout') return reject(new FormworkError('PROVIDER_ERROR', `${cmd} ${args.join(' ')} did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`, { cmd, args, timeoutMs }));
      if (why === 'output') return reject(new FormworkError('PROVIDER_ERROR', `${cmd} ${args.join(' ')} wrote more than ${MAX_OUTPUT} bytes and was stopped`, { cmd, args }));
      if (code !== 0) {
        const msg = (stderr || `exit ${code ?? sig}`).trim().split('\n').slice(-5).join('\n');
        return reject(new FormworkError('PROVIDER_ERROR', `${cmd} ${args.join(' ')} failed: ${msg}`, { cmd, args, exitCode: code ?? sig }));
      }
      resolve({ stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a command that does not read its input
    child.stdin.end(opts.input);
  });
}

/** Runs a command and reports success as a boolean (for idempotent clean-up steps). */
export async function tryRun(cmd: string, args: string[], opts: RunOptions = {}): Promise<boolean> {
  try {
    await run(cmd, args, opts);
    return true;
  } catch {
    return false;
  }
}

/** Finds an executable on PATH (plus the sbin directories, which a non-login PATH may lack). */
export function which(tool: string): string | undefined {
  const dirs = new Set([...(process.env.PATH ?? '').split(delimiter), ...SYSTEM_DIRS]);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A process identity that survives PID reuse: the PID plus its start time (clock ticks since boot). */
export interface ProcRef {
  pid: number;
  startTime: string;
}

interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  startTime: string;
}

export function procStat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const rest = s.slice(close + 2).split(' ');
    // rest[0] is field 3 (state); start time is field 22 → rest[19].
    return { comm, state: rest[0], ppid: Number(rest[1]), startTime: rest[19] };
  } catch {
    return undefined;
  }
}

export function procRef(pid: number): ProcRef | undefined {
  const st = procStat(pid);
  return st ? { pid, startTime: st.startTime } : undefined;
}

/** True if the very process we recorded is still there (not a zombie, not a reused PID). */
export function isAlive(ref: ProcRef | undefined): boolean {
  if (!ref || !Number.isInteger(ref.pid) || ref.pid <= 1) return false;
  const st = procStat(ref.pid);
  return !!st && st.startTime === ref.startTime && st.state !== 'Z' && st.state !== 'X';
}

/** Signals a recorded process only if it is still the one we started. */
export function signalRef(ref: ProcRef | undefined, sig: NodeJS.Signals): boolean {
  if (!isAlive(ref)) return false;
  try {
    process.kill(ref!.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** PIDs whose parent is `ppid` (scans /proc; this kernel has no /proc/PID/task/PID/children). */
export async function childrenOf(ppid: number): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.ppid === ppid) out.push(Number(e));
  }
  return out;
}

export async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}
