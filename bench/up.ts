/**
 * `npm run bench:up`: wall time of `formwork up` cold (no base image) and warm (base image
 * cached), and how much of it is Formwork itself rather than booting hosts, SSH and etcd.
 *
 * Formwork's own share, per warm run, from the recorded runs:
 *   start-up   from `up` starting to the first run starting (server process start, apply, plan)
 *   scheduling on the critical path, each node-role's start minus its last parent's end
 *   noticing   from the last run's end to `up` printing its summary, minus the proof (etcd I/O)
 * Everything else on the critical path is inside runs: the provider creating hosts, SSH, scripts.
 *
 * Also printed: the floor under start-up that is the Node runtime's, not Formwork's code —
 * a bare `node` starting a bare `node` (as `up` starts its server), to the second's first
 * line of JavaScript, with this process's environment (NODE_EXTRA_CA_CERTS included).
 *
 * Flags: --warm-runs N (default 3), --skip-cold (the base image is then hard-linked from
 * $FORMWORK_LAB_CACHE, default /var/tmp/formwork-lab-cache, built there once, as the lab tests
 * do). Needs root (lab hosts).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/formwork.js');
const args = process.argv.slice(2);
const warmRuns = Number(args[args.indexOf('--warm-runs') + 1]) || 3;
const skipCold = args.includes('--skip-cold');

interface Run {
  name: string;
  noderole: string;
  startedAt: string;
  endedAt?: string;
  state: string;
}
interface NodeRole {
  name: string;
  parents?: string[];
  id: string;
}

function formwork(dataDir: string, cmd: string[]): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...cmd], { env: { ...process.env, FORMWORK_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    child.on('close', (code) => resolve({ code, out, ms: performance.now() - t0 }));
  });
}

async function api<T>(dataDir: string, p: string): Promise<T> {
  const url = (JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { url: string }).url;
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const res = await fetch(url + p, { headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as T;
}

async function all<T>(dataDir: string, p: string): Promise<T[]> {
  const out: T[] = [];
  let after = '';
  for (;;) {
    const page = await api<{ items: T[]; next?: string }>(dataDir, `${p}${p.includes('?') ? '&' : '?'}limit=1000${after ? `&after=${after}` : ''}`);
    out.push(...page.items);
    if (!page.next) return out;
    after = page.next;
  }
}

/** The start-up steps the server logged ("formwork server listening"), made absolute (epoch ms). */
function serverStartup(dataDir: string): { processStart: number; called: number; store: number; engine: number; applied: number } | undefined {
  const lines = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8').split('\n').filter((l) => l.includes('"formwork server listening"'));
  const last = lines.length ? (JSON.parse(lines[lines.length - 1]) as { startup?: Record<string, number> & { processStartedAt: string } }).startup : undefined;
  if (!last) return undefined;
  const origin = Date.parse(last.processStartedAt);
  return { processStart: origin, called: origin + last.called, store: origin + last.store, engine: origin + last.engine, applied: origin + last.applied };
}

async function breakdown(dataDir: string, upStartMs: number, upEndMs: number) {
  const noderoles = await all<NodeRole>(dataDir, '/api/v1/noderoles?deployment=demo');
  const runs = await all<Run>(dataDir, '/api/v1/runs?deployment=demo&state=succeeded');
  // The last run of each node-role (an up that converged may have older successful ones).
  const last = new Map<string, Run>();
  for (const r of runs) {
    const prev = last.get(r.noderole);
    if (!prev || r.startedAt > prev.startedAt) last.set(r.noderole, r);
  }
  const byName = new Map(noderoles.map((n) => [n.name, n] as const));
  const runOf = (n: NodeRole) => last.get(n.name) ?? last.get(n.id);
  const t = (s: string | undefined) => (s ? Date.parse(s) : NaN);
  // Walk the critical path back from the node-role that ended last.
  let cur = [...noderoles].sort((a, b) => t(runOf(b)?.endedAt) - t(runOf(a)?.endedAt))[0];
  const lastEnd = t(runOf(cur)?.endedAt);
  let scheduling = 0;
  let inRuns = 0;
  let firstStart = Infinity;
  for (const r of last.values()) firstStart = Math.min(firstStart, t(r.startedAt));
  while (cur) {
    const run = runOf(cur)!;
    inRuns += t(run.endedAt) - t(run.startedAt);
    const parents = (cur.parents ?? []).map((p) => byName.get(p) ?? noderoles.find((n) => n.id === p)).filter((p): p is NodeRole => !!p && !!runOf(p));
    if (!parents.length) break;
    const lastParent = parents.sort((a, b) => t(runOf(b)!.endedAt) - t(runOf(a)!.endedAt))[0];
    scheduling += t(run.startedAt) - t(runOf(lastParent)!.endedAt);
    cur = lastParent;
  }
  // Start-up, step by step: the CLI until the server process exists; the server's runtime
  // start and code load; the store; packs and the engine; the apply; then the first claim.
  const s = serverStartup(dataDir);
  const steps = s
    ? { cli: s.processStart - upStartMs, serverLoad: s.called - s.processStart, store: s.store - s.called, engine: s.engine - s.store, apply: s.applied - s.engine, firstRun: firstStart - s.applied }
    : undefined;
  return { startup: firstStart - upStartMs, scheduling, inRuns, tail: upEndMs - lastEnd, steps };
}

/** Median ms from spawning a bare `node` that spawns a bare `node` to the second one's first line. */
function twoNodeStarts(times = 11): number {
  const inner = `process.stdout.write(String(Date.now()))`;
  const outer = `require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(inner)}], { stdio: 'inherit' })`;
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = Date.now();
    ms.push(Number(execFileSync(process.execPath, ['-e', outer], { encoding: 'utf8' })) - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(times / 2)];
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-bench-up-'));
  const listen = '127.0.0.1:7491';
  const lines: string[] = [];
  const say = (s: string) => (console.log(s), lines.push(s));
  try {
    if (!skipCold) {
      const cold = await formwork(dataDir, ['up', '--listen', listen]);
      if (cold.code !== 0) throw new Error(`cold up failed:\n${cold.out}`);
      say(`cold up (base image built with debootstrap): ${(cold.ms / 1000).toFixed(1)} s`);
      await formwork(dataDir, ['down']);
    } else {
      const { ensureBaseImage } = await import('../src/providers/lab/index.js');
      const base = await ensureBaseImage(process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache');
      fs.mkdirSync(path.join(dataDir, 'lab'), { recursive: true });
      execFileSync('cp', ['-al', base, path.join(dataDir, 'lab', 'base')]); // hard links: the base is only ever a read-only lower layer
      const first = await formwork(dataDir, ['up', '--listen', listen]);
      if (first.code !== 0) throw new Error(`up failed:\n${first.out}`);
      await formwork(dataDir, ['down']);
    }
    const warm: Array<{ ms: number; startup: number; scheduling: number; inRuns: number; tail: number; proofMs: number; steps?: Record<string, number> }> = [];
    for (let i = 0; i < warmRuns; i++) {
      const wallStart = Date.now();
      const up = await formwork(dataDir, ['up', '--listen', listen]);
      const wallEnd = Date.now();
      if (up.code !== 0) throw new Error(`warm up failed:\n${up.out}`);
      // The proof (two etcd calls through haproxy) is timed by a third call pair here: it is etcd's, not ours.
      const frontend = /etcd \(haproxy\) http:\/\/(\S+)/.exec(up.out)?.[1];
      const p0 = performance.now();
      if (frontend) {
        const b64 = (s: string) => Buffer.from(s).toString('base64');
        await fetch(`http://${frontend}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64('bench'), value: b64('x') }) });
        await fetch(`http://${frontend}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64('bench') }) });
      }
      const proofMs = performance.now() - p0;
      const b = await breakdown(dataDir, wallStart, wallEnd);
      warm.push({ ms: up.ms, ...b, proofMs });
      await formwork(dataDir, ['down']);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const m = {
      wall: med(warm.map((w) => w.ms)),
      startup: med(warm.map((w) => w.startup)),
      scheduling: med(warm.map((w) => w.scheduling)),
      inRuns: med(warm.map((w) => w.inRuns)),
      tail: med(warm.map((w) => Math.max(0, w.tail - w.proofMs))),
    };
    const own = m.startup + m.scheduling + m.tail;
    say(`warm up, median of ${warmRuns}: ${(m.wall / 1000).toFixed(1)} s (runs: ${warm.map((w) => (w.ms / 1000).toFixed(1)).join(', ')} s)`);
    say(`  critical path inside runs (hosts booting, SSH, scripts, etcd forming): ${(m.inRuns / 1000).toFixed(2)} s`);
    say(`  Formwork itself: start-up ${(m.startup / 1000).toFixed(2)} s + scheduling ${(m.scheduling / 1000).toFixed(2)} s + noticing the end ${(m.tail / 1000).toFixed(2)} s = ${(own / 1000).toFixed(2)} s (${((own / m.wall) * 100).toFixed(1)} % of wall time)`);
    const withSteps = warm.filter((w) => w.steps);
    if (withSteps.length) {
      const names: Record<string, string> = { cli: 'CLI until the server process starts', serverLoad: "server's runtime start and code load", store: 'store', engine: 'packs and engine', apply: 'apply', firstRun: 'to the first run' };
      say(`  start-up by step (medians; the server logs its steps): ${Object.entries(names).map(([k, label]) => `${label} ${(med(withSteps.map((w) => w.steps![k])) / 1000).toFixed(3)} s`).join(' · ')}`);
    }
    const floor = twoNodeStarts();
    say(`  of which the Node runtime starting twice (CLI, then server; bare \`node\` → \`node\`, median of 11): ${(floor / 1000).toFixed(2)} s (${((floor / m.wall) * 100).toFixed(1)} %); Formwork's own code: ${((own - floor) / 1000).toFixed(2)} s (${(((own - floor) / m.wall) * 100).toFixed(1)} %)`);
    say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  } finally {
    // Removing the data dir while hosts still run would delete their state from under their
    // mounts (and hide the error that got here): only after `down` has removed them.
    const down = await formwork(dataDir, ['down']);
    if (down.code === 0) fs.rmSync(dataDir, { recursive: true, force: true });
    else say(`\`formwork down\` failed; ${dataDir} is left as it is (run \`FORMWORK_DATA_DIR=${dataDir} formwork down\` once fixed):\n${down.out}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
