/**
 * `npm run bench:startup`: how fast Formwork starts, as `formwork up` sees it.
 *
 *   server ready   from spawning `formwork server` (the built CLI, bin/formwork.js) to
 *                  GET /healthz answering, polled every 10 ms: first start on an empty data
 *                  dir (migrations, admin token, packs stored) and a second start on it
 *   CLI start      `formwork version`, from spawning it to its exit
 *   bare node      `node -e 0` the same way: the floor on this machine
 *
 * Each figure is the median of N runs, in wall time and in the CPU time the process had
 * used by then (user + system, from /proc; steadier than wall time on a shared machine).
 * Flags: --runs N (default 5), --port P (default 7493). Run `npm run build` first (the
 * npm script does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/formwork.js');
const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const runs = Number(arg('--runs')) || 5;
const port = Number(arg('--port')) || 7493;

function healthy(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

interface Timing {
  wall: number;
  cpu: number;
}

/** Fields of /proc/<pid>/stat after the command name; undefined where /proc is missing. */
function stat(pid: number | string | undefined): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return undefined;
  }
}
// Clock ticks (USER_HZ, 100 on Linux) to ms.
const ticks = (f: string[] | undefined, a: number, b: number) => (f ? (Number(f[a]) + Number(f[b])) * 10 : NaN);
/** CPU time (user + system) a running process has used, in ms. */
const cpuMs = (pid: number | undefined) => ticks(stat(pid), 11, 12);
/** CPU time of this process's reaped children, in ms. */
const childrenCpuMs = () => ticks(stat('self'), 13, 14);

/** From spawning the server to /healthz answering 200; the server is stopped after. */
async function serverReady(dataDir: string): Promise<Timing> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, 'server', '--listen', `127.0.0.1:${port}`, '--log-file', path.join(dataDir, 'server.log')], {
    stdio: 'ignore',
  });
  try {
    for (;;) {
      if (child.exitCode !== null) {
        const log = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8').trim().split('\n').slice(-3).join('\n');
        throw new Error(`the server exited with ${child.exitCode}; its log ends:\n${log}`);
      }
      if (await healthy()) return { wall: performance.now() - t0, cpu: cpuMs(child.pid) };
      if (performance.now() - t0 > 30_000) throw new Error('the server did not answer within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
}

/** From spawning `node ...argv` to its exit. */
function run(argv: string[]): Promise<Timing> {
  const t0 = performance.now();
  const cpu0 = childrenCpuMs();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: 'ignore' });
    // Reaped by the time 'exit' fires, so its CPU time is in this process's children's.
    child.on('exit', (code) => (code === 0 ? resolve({ wall: performance.now() - t0, cpu: childrenCpuMs() - cpu0 }) : reject(new Error(`node ${argv.join(' ')} exited with ${code}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const show = (ts: Timing[]) =>
  `${median(ts.map((t) => t.wall)).toFixed(0)} ms wall, ${median(ts.map((t) => t.cpu)).toFixed(0)} ms CPU (wall: ${ts.map((t) => t.wall.toFixed(0)).join(', ')})`;

async function main() {
  if (await healthy()) throw new Error(`something already answers on 127.0.0.1:${port}; pass --port`);
  const first: Timing[] = [];
  const second: Timing[] = [];
  const cli: Timing[] = [];
  const bare: Timing[] = [];
  for (let i = 0; i < runs; i++) {
    const dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-bench-startup-'));
    try {
      first.push(await serverReady(dataDir));
      second.push(await serverReady(dataDir));
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    cli.push(await run([BIN, 'version']));
    bare.push(await run(['-e', '0']));
  }
  console.log(`server ready, first start (empty data dir), median of ${runs}: ${show(first)}`);
  console.log(`server ready, second start (existing data dir), median of ${runs}: ${show(second)}`);
  console.log(`CLI start (formwork version), median of ${runs}: ${show(cli)}`);
  console.log(`bare node (node -e 0), median of ${runs}: ${show(bare)}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load average ${loadavg()[0].toFixed(1)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
