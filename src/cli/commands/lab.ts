import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { DURATION_HINT, formatDuration } from '../../core/durations.js';
import { FormworkError } from '../../core/errors.js';
import { packageRoot } from '../../package.js';
import type { ApplyDocument, FormworkClient } from '../../client/client.js';
import { httpClient } from '../../client/node-transport.js';
import type { DeploymentTree, TreeNodeRole } from '../../core/wire.js';
import { awaitDeletion } from '../../client/deletion.js';
import { pidAlive, type CliContext } from '../context.js';
import { applyResultLine, durationOption, renderTable } from '../format.js';

/**
 * The main job and its undoing, on the embedded default (SQLite, the lab provider):
 *
 *   formwork up     starts a server in the background if none runs, applies
 *                   examples/lab-demo.yaml (a lab provider, 4 hosts, etcd on 3, haproxy on 1),
 *                   shows progress per node and node-role, then proves it: a key written
 *                   through haproxy reads back.
 *   formwork down   deletes the deployment (machines included) and the provider, and stops
 *                   the server `up` started.
 *   formwork conformance [--provider P]   the yardstick's checks, a row per node.
 *
 * @example
 *   formwork up && formwork conformance && formwork down
 */

const DEMO_FILE = 'examples/lab-demo.yaml'; // in the package root
const DEMO_DEPLOYMENT = 'demo';
const DEMO_PROVIDER = 'lab';
const UP_FILE = 'up.json';
const UP_DOCUMENTS_FILE = 'up-documents.json'; // the demo with `up`'s overrides, for the server it starts
const LONG_TIMEOUT_MS = 15 * 60_000;
const UP_WAIT_SECONDS = 20 * 60; // up --wait's default

interface UpState {
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

/** DATA_DIR/server.json: where the server that serves this data dir listens, and its pid (undefined until written). */
function readServerFile(dataDir: string): { url?: string; pid?: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { url?: string; pid?: number };
  } catch {
    return undefined;
  }
}

function readUpState(dataDir: string): UpState {
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
 */
async function stopPid(pid: number, graceMs: number, escalate: boolean): Promise<boolean> {
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


const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Wakes a waiter when a node-role changes, from the server's event stream: `up` notices the
 * last node-role finishing when it happens, not at its next poll. `wait` also returns after
 * `ms` (a spinner's tick, or a safety net should the stream drop and miss something).
 */
function nodeRoleChanges(client: FormworkClient, signal: AbortSignal, interrupt: AbortSignal): { wait(ms: number): Promise<void> } {
  let changed = false;
  let wake: (() => void) | undefined;
  interrupt.addEventListener('abort', () => wake?.(), { once: true });
  void (async () => {
    try {
      for await (const _ of client.events({ types: ['noderoles'], signal })) {
        changed = true;
        wake?.();
      }
    } catch {
      // the timeout in wait() is the fallback
    }
  })();
  return {
    wait(ms) {
      if (changed || interrupt.aborted) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          changed = false;
          resolve();
        }
        wake = done;
      });
    },
  };
}

/** The first line of a message, without control characters (a terminal would act on them). */
export function oneLine(text: string): string {
  return (text.split(/\r?\n/).find((l) => l.trim()) ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

/** `text` cut to `width` characters (code points), marking the cut. */
export function fit(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, width - 1).join('') + '…';
}

/** Why a node-role is where it is, as `: reason`: its error, or what it is blocked on. */
function reasonOf(nr: TreeNodeRole): string {
  const why = nr.state === 'error' ? nr.lastError?.message : nr.state === 'blocked' ? nr.blockedReason : undefined;
  return why ? `: ${oneLine(why)}` : '';
}

/** Follows a deployment until nothing is left to run; draws a live block on a terminal, plain lines otherwise. */
async function follow(ctx: CliContext, client: FormworkClient, deployment: string, timeoutMs: number, signal: AbortSignal): Promise<DeploymentTree> {
  const stream = new AbortController();
  try {
    return await followTree(ctx, client, deployment, timeoutMs, signal, nodeRoleChanges(client, stream.signal, signal));
  } finally {
    stream.abort();
  }
}

async function followTree(
  ctx: CliContext,
  client: FormworkClient,
  deployment: string,
  timeoutMs: number,
  signal: AbortSignal,
  changes: { wait(ms: number): Promise<void> },
): Promise<DeploymentTree> {
  const tty = Boolean((ctx.io.stdout as { isTTY?: boolean }).isTTY);
  const seen = new Map<string, string>();
  let drawn = 0;
  let tick = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = await client.deploymentTree(deployment);
    const all = [...tree.nodes.flatMap((n) => n.noderoles), ...tree.other];
    if (tty) {
      // One physical row per node, or the cursor-up count of the next frame is wrong: one
      // line of each message, no control characters, cut to the terminal's width.
      const width = Math.max(20, ((ctx.io.stdout as { columns?: number }).columns ?? 160) - 1);
      const lines = tree.nodes.map((n) => {
        const done = n.noderoles.filter((x) => x.state === 'active').length;
        const failed = n.noderoles.find((x) => x.state === 'error');
        const current = n.noderoles.find((x) => x.state === 'running') ?? n.noderoles.find((x) => x.state !== 'active');
        const mark = failed ? '✖' : done === n.noderoles.length ? '✔' : SPIN[tick % SPIN.length];
        const what = failed ? `${failed.role} failed: ${oneLine(failed.lastError?.message ?? '')}` : current ? `${current.role} ${current.state}${reasonOf(current)}` : 'ready';
        return fit(`${mark} ${n.name.padEnd(12)} ${String(done).padStart(2)}/${n.noderoles.length}  ${what}`, width);
      });
      if (drawn) ctx.io.stdout.write(`\x1b[${drawn}A`);
      ctx.io.stdout.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
      drawn = lines.length;
      tick++;
    } else {
      for (const nr of all) {
        // Keyed on the reason too: a node-role blocked on a running parent, then on a failed one, says so.
        const why = reasonOf(nr);
        if (seen.get(nr.name) === nr.state + why) continue;
        seen.set(nr.name, nr.state + why);
        ctx.out(`${new Date().toISOString().slice(11, 19)} ${nr.name} ${nr.state}${why}`);
      }
    }
    const pending = all.filter((x) => x.state === 'todo' || x.state === 'running' || x.state === 'proposed');
    const blockedOnError = all.filter((x) => x.state === 'blocked' && /failed/.test(x.blockedReason ?? ''));
    const waiting = all.filter((x) => x.state === 'blocked').length - blockedOnError.length;
    if (pending.length === 0 && waiting === 0) return tree;
    if (signal.aborted) throw new FormworkError('INTERNAL', 'interrupted: run `formwork up` again to converge, or `formwork down` to remove everything');
    if (Date.now() > deadline) throw new FormworkError('RUN_TIMEOUT', `deployment ${deployment} did not finish within ${formatDuration(timeoutMs / 1000)} (--wait): ${pending.map((p) => `${p.name} (${p.state})`).join(', ')}`);
    await changes.wait(tty ? 120 : 2000);
  }
}

/** Writes a key through haproxy with etcd's v3 JSON gateway and reads it back. */
async function proveThroughHaproxy(frontend: string): Promise<{ key: string; value: string }> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const key = 'formwork-up';
  const value = `written at ${new Date().toISOString()}`;
  // node:http rather than fetch: loading fetch's implementation (undici) is ~50 ms of a CLI.
  const post = (p: string, body: unknown) =>
    new Promise<{ kvs?: Array<{ value: string }> }>((resolve, reject) => {
      const fail = (why: string) => reject(new FormworkError('RUN_FAILED', `etcd through haproxy at ${frontend}: ${why} (${p})`));
      const req = http.request(`http://${frontend}${p}`, { method: 'POST', timeout: 10_000, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if (res.statusCode !== 200) return fail(`answered ${res.statusCode}`);
          try {
            resolve(JSON.parse(text) as { kvs?: Array<{ value: string }> });
          } catch {
            fail('answered something other than JSON');
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', (e) => fail(e.message));
      req.end(JSON.stringify(body));
    });
  await post('/v3/kv/put', { key: b64(key), value: b64(value) });
  const got = await post('/v3/kv/range', { key: b64(key) });
  const read = got.kvs?.[0] ? Buffer.from(got.kvs[0].value, 'base64').toString() : undefined;
  if (read !== value) throw new FormworkError('RUN_FAILED', `wrote "${value}" through haproxy at ${frontend} but read back ${JSON.stringify(read)}`);
  return { key, value };
}

/** The demo's documents, with the lab networks moved to `subnetIndex` when given. */
async function upDocuments(subnetIndex: number | undefined): Promise<ApplyDocument[]> {
  const docs = parseAllDocuments(fs.readFileSync(path.join(packageRoot(), DEMO_FILE), 'utf8')).map((d) => d.toJSON() as ApplyDocument);
  const provider = docs.find((d) => d.kind === 'Provider');
  if (provider && subnetIndex !== undefined) provider.settings = { ...(provider.settings as object), subnetIndex };
  return docs;
}

/** A file of the demo's documents for a server to apply as it starts: the shipped one, or a copy with the overrides. */
async function upDocumentsFile(dataDir: string, subnetIndex: number | undefined): Promise<string> {
  if (subnetIndex === undefined) return path.join(packageRoot(), DEMO_FILE);
  const file = path.join(dataDir, UP_DOCUMENTS_FILE);
  fs.writeFileSync(file, JSON.stringify(await upDocuments(subnetIndex), null, 2) + '\n', { mode: 0o600 });
  return file;
}

/** Deletes and waits until it is gone (a worker deprovisions it: DELETE answers at once). */
async function deleteIfThere(client: FormworkClient, kind: string, name: string, onProgress: (line: string) => void): Promise<boolean> {
  try {
    const marked = await client.delete(kind, name);
    if (marked?.deletion) await awaitDeletion(client, kind, marked, { onProgress });
    return true;
  } catch (e) {
    if ((e as FormworkError).code === 'NOT_FOUND') return false;
    throw e;
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('bring up the lab demo: 4 real Debian hosts, etcd on 3, haproxy in front (starts a server if none runs)')
    .option('--listen <host:port>', 'where a server started by up listens', '127.0.0.1:7480')
    // Not --timeout: that is the program-wide request timeout, which would take the value.
    .option('--wait <duration>', `give up waiting for the deployment after this long (${DURATION_HINT}; default 20m)`, durationOption)
    .option('--subnet-index <n>', 'lab networks: public 198.18.(2N).0/24, private 198.18.(2N+1).0/24 (0–255)', (v) => Number(v))
    .action(async (opts: { listen: string; wait?: number; subnetIndex?: number }) => {
      const t0 = Date.now();
      const note = (s: string) => ctx.err(s);
      const dataDir = ctx.resolve().dataDir;
      // The lab driver's own checks, loaded only by `up` (docs/architecture.md, "Layering").
      const { baseDirFor, isBaseReady, requiredTools } = await import('../../providers/lab/base.js');
      const { client, url, started } = await ensureServer(ctx, opts.listen, note, {
        applyFile: () => upDocumentsFile(dataDir, opts.subnetIndex),
        // The server about to start makes the lab hosts, as this user: no tool missing, and
        // root. Checked here, so that `up` stops before it starts anything.
        preflight: requiredTools,
      });
      if (!isBaseReady(baseDirFor(dataDir))) {
        note('first run: the lab hosts\' base image is built with debootstrap (about 2 minutes; cached in the data dir after that)');
      }
      if (started) note('the server applied the demo documents as it started');
      else for (const r of await client.apply(await upDocuments(opts.subnetIndex))) note(applyResultLine(r));
      const { signal, dispose } = ctx.shutdownSignal();
      let tree: DeploymentTree;
      try {
        tree = await follow(ctx, client, DEMO_DEPLOYMENT, (opts.wait ?? UP_WAIT_SECONDS) * 1000, signal);
      } finally {
        dispose();
      }
      const all = [...tree.nodes.flatMap((n) => n.noderoles), ...tree.other];
      const failed = all.filter((x) => x.state === 'error');
      const blocked = all.filter((x) => x.state === 'blocked');
      if (failed.length || blocked.length) {
        for (const f of failed) {
          ctx.err(`\n${f.name} failed: ${f.lastError?.message ?? ''}`);
          try {
            const log = await client.runLog(f.name);
            if (log?.log) ctx.err(log.log.split('\n').slice(-15).map((l) => `  | ${l}`).join('\n'));
          } catch {
            // no run recorded
          }
        }
        if (blocked.length) ctx.err(`\nblocked:\n${blocked.map((b) => `  ${b.name}${reasonOf(b)}`).join('\n')}`);
        throw new FormworkError('RUN_FAILED', `${failed.length} node-role(s) failed, ${blocked.length} blocked; fix and run \`formwork up\` again (it converges), or \`formwork retry deployment/${DEMO_DEPLOYMENT}\``);
      }
      const haproxy = all.find((x) => x.role === 'haproxy');
      const nr = haproxy ? await client.get('noderoles', haproxy.name) : undefined;
      const frontend = (nr?.outputs as { frontend?: string } | undefined)?.frontend;
      if (!frontend) throw new FormworkError('INTERNAL', 'the haproxy node-role is active but reports no frontend');
      const proof = await proveThroughHaproxy(frontend);
      const r = ctx.resolve();
      ctx.out(
        [
          ``,
          `Formwork is up (${((Date.now() - t0) / 1000).toFixed(1)} s).`,
          `  API            ${url}/api/v1   (docs: ${url}/api/docs)`,
          `  token          ${path.join(r.dataDir, 'admin.token')}`,
          `  etcd (haproxy) http://${frontend}`,
          `  proof          wrote ${proof.key}="${proof.value}" through haproxy and read it back`,
          `  next           formwork get nodes · formwork describe deployment demo · formwork conformance · formwork down`,
        ].join('\n'),
      );
    });

  program
    .command('down')
    .description('remove what `formwork up` made: the demo deployment and its hosts, the lab provider, the background server')
    .option('--listen <host:port>', 'where a server started to tear down listens', '127.0.0.1:7480')
    .action(async (opts: { listen: string }) => {
      const note = (s: string) => ctx.err(s);
      const r = ctx.resolve();
      // Nothing `up` made can exist without its database (SQLite in the data dir, unless a
      // PostgreSQL URL says otherwise) or a server answering: then there is nothing to undo,
      // and starting a server (creating a data dir) just to find that out would be noise.
      const sqlite = !(ctx.io.env.FORMWORK_DATABASE_URL ?? '');
      if (sqlite && r.endpointSource !== 'flag' && r.endpointSource !== 'env' && !fs.existsSync(path.join(r.dataDir, 'formwork.db')) && !readServerFile(r.dataDir)) {
        ctx.out(`Nothing to remove in ${r.dataDir}: \`formwork up\` has not run there.`);
        return;
      }
      const state = readUpState(r.dataDir);
      const { client, started } = await ensureServer(ctx, opts.listen, note);
      if (await deleteIfThere(client, 'deployments', DEMO_DEPLOYMENT, note)) note(`deployment/${DEMO_DEPLOYMENT} deleted (with its hosts)`);
      if (await deleteIfThere(client, 'providers', DEMO_PROVIDER, note)) note(`provider/${DEMO_PROVIDER} deleted (bridges and apt proxy torn down)`);
      // Stop the server `up` started, and only that one: its pid (from up.json) must be the
      // pid of the server that answers for this data dir now (server.json). A pid alone may
      // by now be another process's, if that server died without `down`.
      const serving = readServerFile(r.dataDir)?.pid;
      const pid = started ? readUpState(r.dataDir).serverPid : state.serverPid !== undefined && state.serverPid === serving ? state.serverPid : undefined;
      if (!started && state.serverPid !== undefined && pid === undefined) {
        note(`the server \`up\` started (pid ${state.serverPid}) is no longer the one serving ${r.dataDir}; the one that is${serving ? ` (pid ${serving})` : ''} was started otherwise and is left running`);
      } else if (!started && state.serverPid === undefined) {
        note(`the server serving ${r.dataDir}${serving ? ` (pid ${serving})` : ''} was not started by \`formwork up\` (no ${UP_FILE}) and is left running`);
      }
      if (pid && pidAlive(pid)) {
        if (!(await stopPid(pid, 30_000, false))) {
          throw new FormworkError('INTERNAL', `the background server (pid ${pid}) did not stop within 30 s after SIGTERM; stop it, then run \`formwork down\` again`);
        }
        note(`background server (pid ${pid}) stopped`);
      }
      fs.rmSync(path.join(r.dataDir, UP_FILE), { force: true });
      fs.rmSync(path.join(r.dataDir, UP_DOCUMENTS_FILE), { force: true });
      ctx.out('Formwork is down.');
    });

  program
    .command('conformance')
    .description("check nodes against the yardstick (reachable, logged in, known host, networks, shape, post-provisioning)")
    .option('--provider <name>', "only this provider's nodes")
    .option('-o, --output <format>', 'table or json', 'table')
    .argument('[nodes...]', 'only these nodes')
    .action(async (nodes: string[], opts: { provider?: string; output: string }) => {
      const report = await ctx.client().conformance({ ...(opts.provider ? { provider: opts.provider } : {}), ...(nodes.length ? { nodes } : {}) });
      if (opts.output === 'json') ctx.out(JSON.stringify(report, null, 2));
      else {
        const rows = report.nodes.map((n) => [n.node, n.provider ?? '', ...report.checks.map((c) => (n.results.find((x) => x.check === c)?.ok ? 'pass' : 'FAIL'))]);
        ctx.out(renderTable(['NODE', 'PROVIDER', ...report.checks.map((c) => c.toUpperCase())], rows));
        for (const n of report.nodes) for (const f of n.results.filter((x) => !x.ok)) ctx.out(`${n.node}: ${f.check}: ${f.reason}`);
      }
      if (!report.passed) throw new FormworkError('RUN_FAILED', 'conformance failed: see the reasons above');
    });
}


