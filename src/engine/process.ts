/**
 * Runs a program on the control host for the local and ansible executors.
 *
 * The program runs in its own process group under a small bash wrapper. The wrapper keeps
 * a watcher on an extra pipe from this process: when this process dies (even by SIGKILL),
 * the pipe reaches EOF and the watcher kills the whole group, so a killed worker leaves no
 * script running that a second worker could run again at the same time. On timeout or
 * abort the group gets SIGTERM, then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import { FormworkError } from '../core/errors.js';

const WRAPPER = [
  '( read -r _ <&3; kill -KILL -- -$$ ) 2>/dev/null &',
  'w=$!',
  'exec 3<&-',
  '"$@"',
  'rc=$?',
  'kill "$w" 2>/dev/null',
  'exit "$rc"',
].join('\n');

export interface ProcessSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  stdin?: string;
  timeoutMs: number;
  signal: AbortSignal;
  onOutput(chunk: string): void;
  /** Names the run in errors: "role x on node y". */
  label: string;
  /** SIGTERM → SIGKILL grace. Default 2000 ms. */
  killGraceMs?: number;
}

export interface ProcessResult {
  exitCode: number;
  signal?: string;
}

/** The environment a control-host program starts from: a few basics, not the server's secrets. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'USER', 'LOGNAME', 'SHELL', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  return new Promise<ProcessResult>((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', WRAPPER, 'formwork-run', spec.command, ...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    let done = false;
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const grace = spec.killGraceMs ?? 2000;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, sig);
      } catch {
        /* gone */
      }
    };
    const stop = (): void => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), grace);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, Math.max(1, spec.timeoutMs));
    const onAbort = (): void => {
      aborted = true;
      stop();
    };
    spec.signal.addEventListener('abort', onAbort, { once: true });
    if (spec.signal.aborted) onAbort();

    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => spec.onOutput(d));
    child.stderr?.on('data', (d: string) => spec.onOutput(d));
    child.stdin?.on('error', () => undefined); // the program may not read its stdin
    child.stdin?.end(spec.stdin ?? '');

    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      spec.signal.removeEventListener('abort', onAbort);
      // The group may hold a background process: end it with the run.
      killGroup('SIGKILL');
      (child.stdio[3] as NodeJS.WritableStream | null)?.end?.();
      if (timedOut) {
        reject(new FormworkError('RUN_TIMEOUT', `${spec.label} did not finish within ${spec.timeoutMs} ms and was killed`, { timeoutMs: spec.timeoutMs }));
      } else if (aborted) {
        reject(new FormworkError('RUN_FAILED', `${spec.label} was stopped (the worker is stopping or lost its lease)`, { aborted: true }, { retryable: true }));
      } else {
        resolve(sig ? { exitCode: 128 + (signalNumber(sig) ?? 0), signal: sig } : { exitCode: code ?? 1 });
      }
    };
    child.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new FormworkError('MISSING_TOOL', `cannot start ${spec.command}: ${e.message}`, { command: spec.command }));
    });
    child.on('exit', (code, sig) => {
      // Let buffered output drain, but do not wait for a background process holding stdout.
      let closed = false;
      child.once('close', () => {
        closed = true;
        finish(code, sig);
      });
      setTimeout(() => {
        if (!closed) {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish(code, sig);
        }
      }, 300).unref();
    });
  });
}

function signalNumber(sig: string): number | undefined {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
  return table[sig];
}

/** The variable an input travels in: `FW_INPUT_<NAME>`, upper case, `-` and other non-word characters → `_`. */
export function inputEnvName(input: string): string {
  return `FW_INPUT_${input.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** `FW_INPUT_<NAME>` variables (inputEnvName), non-strings as JSON. */
export function inputEnv(inputs: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs)) {
    if (v !== undefined) env[inputEnvName(k)] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return env;
}
