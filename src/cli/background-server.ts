import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FormworkError } from '../core/errors.js';
import { packageRoot } from '../package.js';
import type { FormworkClient } from '../client/client.js';
import { httpClient } from '../client/node-transport.js';
import { pidAlive, type CliContext } from './context.js';

/**
 * The background server `formwork up` starts for its data dir, and the record of it that
 * `formwork down` reads: DATA_DIR/up.json (the pid of the server `up` started; written at
 * once, so that `down` knows it even if `up` is killed while it starts).
 *
 * @example
 *   const { client, started } = await ensureServer(ctx, '127.0.0.1:7480', (s) => ctx.err(s));
 *   if (started) await stopPid(readUpState(dataDir).serverPid!, 30_000, false);
 */

/**
 * The file, in the data dir, where `up` records the server it started.
 *
 * @example
 *   fs.rmSync(path.join(dataDir, UP_FILE), { force: true });
 */
export const UP_FILE = 'up.json';
const LONG_TIMEOUT_MS = 15 * 60_000;

/**
 * What up.json holds: the pid of the server `up` started, and its URL once it answered.
 *
 * @example
 *   const { serverPid }: UpState = readUpState(dataDir);
 */
export interface UpState {
  serverPid?: number;
  url?: string;
}

/** The CLI the background server runs as: this one's source through tsx when run from source (tests), else the built CLI. */
function cliEntry(): { execArgv: string[]; entry: string } {
  return import.meta.url.endsWith('.ts')
    ? // tsx resolved here (the cwd may be anywhere), with createRequire: vitest has no import.meta.resolve
      { execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href], entry: path.join(packageRoot(), 'src', 'cli', 'main.ts') }
    : { execArgv: [], entry: path.join(packageRoot(), 'bin', 'formwork.js') };
}

function readToken(dataDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * DATA_DIR/server.json: where the server that serves this data dir listens, and its pid (undefined until written).
 *
 * @example
 *   const serving = readServerFile(dataDir)?.pid;
 */
export function readServerFile(dataDir: string): { url?: string; pid?: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { url?: string; pid?: number };
  } catch {
    return undefined;
  }
}

/**
 * DATA_DIR/up.json, or nothing recorded (`{}`).
 *
 * @example
 *   if (readUpState(dataDir).serverPid === undefined) note('not started by up');
 */
export function readUpState(dataDir: string): UpState {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, UP_FILE), 'utf8')) as UpState;
  } catch {
    return {};
  }
}

async function reachable(client: FormworkClient): Promise<boolean> {
  try {
    await client.health();
    return true;
  } catch {
    return false;
  }
}

/** What a background server that exited at start said (from byte `from` of its log): its `error:` line and the problems listed under it. */
function startError(logFile: string, from: number): string | undefined {
  const lines = fs.existsSync(logFile) ? fs.readFileSync(logFile).subarray(from).toString('utf8').split('\n') : [];
  const at = lines.findLastIndex((l) => l.startsWith('error: '));
  if (at < 0) return undefined;
  const rest = lines.slice(at + 1);
  const end = rest.findIndex((l) => !l.startsWith('  '));
  return [lines[at].slice('error: '.length), ...(end < 0 ? rest : rest.slice(0, end))].join('\n');
}

/**
 * A client to a running server: the one the CLI resolves to, else one started now in the
 * background — applying `applyFile` as it starts, so that it is already at work when it
 * first answers (`started` says which happened). `preflight` runs before a server is
 * started (not when one already runs): what it throws stops `up` with nothing started.
 *
 * @example
 *   const { client, started, url } = await ensureServer(ctx, '127.0.0.1:7480', note, { applyFile: () => demoFile });
 */
export async function ensureServer(
  ctx: CliContext,
  listen: string,
  note: (s: string) => void,
  opts: { applyFile?: () => Promise<string>; preflight?: () => void; startTimeoutMs?: number } = {},
): Promise<{ client: FormworkClient; started: boolean; url: string }> {
  const { applyFile, preflight, startTimeoutMs = 60_000 } = opts;
  const r = ctx.resolve();
  const make = (endpoint: string) => httpClient({ endpoint, token: r.tokenSource && r.tokenSource !== 'admin.token' ? r.token : readToken(r.dataDir), timeoutMs: LONG_TIMEOUT_MS, userAgent: 'formwork-cli' });
  // Only a server this data dir knows of (server.json) or one named explicitly is adopted:
  // whatever answers on the default port may be another data dir's server.
  const existing = make(r.endpoint);
  if (r.endpointSource !== 'default' && (await reachable(existing))) return { client: existing, started: false, url: r.endpoint };
  if (r.endpointSource === 'flag' || r.endpointSource === 'env') {
    throw new FormworkError('ENDPOINT_UNREACHABLE', `cannot reach the Formwork server at ${r.endpoint}, which was given explicitly; start it or drop --endpoint/FORMWORK_ENDPOINT to let \`formwork up\` start one`);
  }
  preflight?.();
  fs.mkdirSync(r.dataDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(r.dataDir, 'server.log');
  const { execArgv, entry } = cliEntry();
  const apply = applyFile ? ['--apply', await applyFile()] : [];
  // Its own output (what it applied, or why it could not start) goes to the log too.
  const out = fs.openSync(logFile, 'a', 0o600);
  const logStart = fs.fstatSync(out).size; // an earlier start's error further up is not this one's
  const child = spawn(process.execPath, [...execArgv, entry, '--data-dir', r.dataDir, 'server', '--listen', listen, '--log-file', logFile, ...apply], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ...ctx.io.env },
  });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new FormworkError('INTERNAL', `could not start the background server; see ${logFile}`);
  // Recorded at once, not once it answers: `down` must know this server even if `up` is
  // killed while it starts.
  writeUpState(r.dataDir, { serverPid: pid });
  note(`started a Formwork server in the background (pid ${pid}, log ${logFile})`);
  const { signal, dispose } = ctx.shutdownSignal();
  // Failing here leaves no server behind: stop the one just started (by its pid) first.
  const abandon = async (e: FormworkError): Promise<never> => {
    await stopPid(pid, 10_000, true);
    fs.rmSync(path.join(r.dataDir, UP_FILE), { force: true });
    throw e;
  };
  try {
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (child.exitCode !== null || !pidAlive(pid)) {
        fs.rmSync(path.join(r.dataDir, UP_FILE), { force: true });
        const why = startError(logFile, logStart);
        throw new FormworkError('SERVER_EXITED', `the background server exited at start${why ? `: ${why}` : ''}; see ${logFile}`);
      }
      if (signal.aborted) return await abandon(new FormworkError('INTERNAL', `interrupted while the background server started; stopped it (pid ${pid})`));
      const info = readServerFile(r.dataDir);
      if (info?.url && info.pid === pid) {
        const client = make(info.url);
        if (await reachable(client)) {
          writeUpState(r.dataDir, { serverPid: pid, url: info.url });
          return { client, started: true, url: info.url };
        }
      }
      if (Date.now() > deadline) {
        return await abandon(new FormworkError('INTERNAL', `the background server did not answer within ${Math.round(startTimeoutMs / 1000)} s; stopped it (pid ${pid}); see ${logFile}`));
      }
      await new Promise((res) => setTimeout(res, 20)); // the server is ready in about half a second: poll finely
    }
  } finally {
    dispose();
  }
}

/** Written whole or not at all (a rename): a torn up.json would hide the server's pid from `down`. */
function writeUpState(dataDir: string, state: UpState): void {
  const file = path.join(dataDir, UP_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state) + '\n', { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * SIGTERM, then waits up to `graceMs` for the process to exit; true when it is gone. With
 * `escalate`, one still running then gets SIGKILL (a server that never finished starting
 * has nothing to tear down).
 *
 * @example
 *   if (!(await stopPid(pid, 30_000, false))) throw new Error('still running');
 */
export async function stopPid(pid: number, graceMs: number, escalate: boolean): Promise<boolean> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  if (!pidAlive(pid)) return true;
  if (escalate) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited just now
    }
  }
  return false;
}
