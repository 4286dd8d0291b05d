/**
 * The harness of the randomized convergence test: a real server process (main-for-test.ts)
 * on SQLite or PostgreSQL with the convergence packs, and observers that record what it
 * says throughout — every API response body, the SSE event stream, `/healthz` latencies —
 * plus the run record the roles' scripts append to.
 *
 * @example
 *   const srv = await startConvergenceServer('sqlite');
 *   const res = await srv.api('POST', '/api/v1/apply', { documents: [doc] });
 *   srv.healthz.slow;            // answers over 1 s (or errors), with when
 *   await srv.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../../store/testing/engines.js';
import { writePacks } from './convergence-pack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** How long `/healthz` may take, by the "answers within 1 s". */
export const HEALTHZ_LIMIT_MS = 1000;

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export interface HealthSample {
  at: string;
  ms: number;
  status: number | string;
}

export interface ConvergenceServer {
  url: string;
  dataDir: string;
  recordFile: string;
  api(method: string, route: string, body?: unknown): Promise<ApiResponse>;
  /** Every response body and the SSE stream so far, and the server's log file. */
  recorded(): { responses: string[]; events: string; log: string };
  healthz: { slow: HealthSample[]; count: number };
  stop(): Promise<void>;
}

export async function startConvergenceServer(engine: 'sqlite' | 'postgres'): Promise<ConvergenceServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-converge-'));
  const recordFile = path.join(dataDir, 'runs.record');
  writePacks(path.join(dataDir, 'packs'), recordFile);
  const database = engine === 'postgres' ? await createTestDatabase() : undefined;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main-for-test.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      FORMWORK_DATA_DIR: dataDir,
      FORMWORK_DATABASE_URL: database?.url ?? '',
      FORMWORK_WORKLOADS_PATH: path.join(dataDir, 'packs'),
      FORMWORK_LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let url: string;
  try {
    url = await serverUrl(child);
  } catch (e) {
    await stopChild(child);
    await database?.drop();
    throw e;
  }
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const headers = { authorization: `Bearer ${token}` };
  const responses: string[] = [];
  const events = { text: '' };
  const ac = new AbortController();
  const healthz = { slow: [] as HealthSample[], count: 0 };
  const polling = pollHealthz(url, healthz, ac.signal);
  const streaming = followEvents(url, headers, events, ac.signal);

  return {
    url,
    dataDir,
    recordFile,
    async api(method, route, body) {
      const res = await fetch(url + route, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      }).catch((e: unknown) => {
        throw new Error(`${method} ${route}: no answer from the server (${(e as Error).message})`);
      });
      const text = await res.text();
      responses.push(text);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed, text };
    },
    recorded() {
      const logFile = path.join(dataDir, 'server.log');
      return { responses: [...responses], events: events.text, log: fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '' };
    },
    healthz,
    async stop() {
      ac.abort();
      await Promise.allSettled([polling, streaming]);
      await stopChild(child);
      await database?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function serverUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`the server did not start within 60 s: ${err}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += String(d);
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) {
        clearTimeout(t);
        resolve(JSON.parse(line).url as string);
      }
    });
    child.stderr!.on('data', (d) => (err += String(d)));
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the server exited (${code}): ${err}`));
    });
  });
}

/** SIGTERM by PID, then SIGKILL if it has not exited within 10 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** One `/healthz` at a time, every 100 ms; an answer over the limit, an error or a non-200 is kept. */
async function pollHealthz(url: string, h: { slow: HealthSample[]; count: number }, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const started = Date.now();
    let status: number | string;
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) });
      await res.text();
      status = res.status;
    } catch (e) {
      if (signal.aborted) return;
      status = (e as Error).name;
    }
    const ms = Date.now() - started;
    h.count++;
    if (ms > HEALTHZ_LIMIT_MS || status !== 200) h.slow.push({ at: new Date(started).toISOString(), ms, status });
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The raw SSE stream from now on (reconnecting with Last-Event-ID if it drops). */
async function followEvents(url: string, headers: Record<string, string>, events: { text: string }, signal: AbortSignal): Promise<void> {
  let last: string | undefined;
  while (!signal.aborted) {
    try {
      const res = await fetch(`${url}/api/v1/events`, { headers: { ...headers, ...(last ? { 'last-event-id': last } : {}) }, signal });
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        events.text += text;
        const ids = [...text.matchAll(/^id: *(\d+)$/gm)];
        if (ids.length) last = ids[ids.length - 1][1];
      }
    } catch {
      if (signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface RunInterval {
  noderole: string;
  runId: string;
  start: number;
  /** Infinity when the run never recorded its end (killed with SIGKILL, or still running). */
  end: number;
}

/** The record the roles' scripts wrote, paired by run id. */
export function readRunRecord(file: string): RunInterval[] {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const runs = new Map<string, RunInterval>();
  for (const line of text.split('\n')) {
    const [kind, noderole, runId, ns] = line.trim().split(/\s+/);
    if (!kind || !ns) continue;
    const t = Number(BigInt(ns) / 1000n) / 1000;
    if (kind === 'start') runs.set(runId, { noderole, runId, start: t, end: Infinity });
    else if (kind === 'end' && runs.has(runId)) runs.get(runId)!.end = t;
  }
  return [...runs.values()];
}

/** Pairs of runs with the same key (node-role, or node) that overlap in time. */
export function overlapping(runs: RunInterval[], key: (r: RunInterval) => string): Array<[RunInterval, RunInterval]> {
  const groups = new Map<string, RunInterval[]>();
  for (const r of runs) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  const out: Array<[RunInterval, RunInterval]> = [];
  for (const list of groups.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      for (let j = 0; j < i; j++) if (list[i].start < list[j].end) out.push([list[j], list[i]]);
    }
  }
  return out;
}

/** Every place a secret value shows up in what the server said. */
export function secretSightings(recorded: { responses: string[]; events: string; log: string }, secrets: string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    const where = [
      ...recorded.responses.filter((r) => r.includes(s)).map((r) => `API response: ${excerpt(r, s)}`),
      ...(recorded.events.includes(s) ? [`event stream: ${excerpt(recorded.events, s)}`] : []),
      ...(recorded.log.includes(s) ? [`server log: ${excerpt(recorded.log, s)}`] : []),
    ];
    found.push(...where.map((w) => `${s} in ${w}`));
  }
  return found;
}

function excerpt(text: string, s: string): string {
  const i = text.indexOf(s);
  return JSON.stringify(text.slice(Math.max(0, i - 120), i + s.length + 40));
}
