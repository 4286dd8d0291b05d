import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * End to end: the real CLI (`node --import tsx src/cli/main.ts ...`, nothing built) as
 * child processes against a real server started by `formwork server`.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
/** `--import tsx`, resolved from the repo so the children can run in a temp dir. */
const TSX = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;

/** The environment without any FORMWORK_* the developer may have set. */
const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FORMWORK_')));

interface Result {
  code: number | null;
  out: string;
  err: string;
}

function cli(args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; asUser?: { uid: number; gid: number } } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const as = opts.asUser ? { ...opts.asUser, cwd: '/' } : { cwd: dir }; // another user cannot enter the test's private dir
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { ...as, env: opts.env ?? cleanEnv() });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Resolves when the child's stdout matches; keeps collecting afterwards. */
function waitFor(child: ChildProcess, re: RegExp, ms = 60_000): Promise<{ match: RegExpMatchArray; output: () => string }> {
  let buf = '';
  let errBuf = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout: ${buf}; stderr: ${errBuf}`)), ms);
    child.stderr?.on('data', (c: Buffer) => (errBuf += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(timer);
        resolve({ match: m, output: () => buf });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ${re}; stdout: ${buf}; stderr: ${errBuf}`));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
  });
}

let dir: string;
let dataDir: string;
let server: ChildProcess;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fw-cli-e2e-'));
  dataDir = path.join(dir, 'data');
  // A pack the server loads from its data dir: one local role that prints a line, waits
  // for the test to let it go (the file GO), and prints another (for `logs -f`).
  const pack = path.join(dataDir, 'workloads', 'slow');
  mkdirSync(pack, { recursive: true });
  writeFileSync(
    path.join(pack, 'workload.yaml'),
    'name: slow\nversion: 1.0.0\nroles:\n  - name: slow\n    implementation: { kind: local, file: slow.sh }\n    timeoutSeconds: 60\n    retries: 0\n',
  );
  writeFileSync(path.join(pack, 'slow.sh'), `echo first line\nwhile [ ! -e ${path.join(dir, 'GO')} ]; do sleep 0.05; done\necho second line\n`);
  server = spawn(
    process.execPath,
    ['--import', TSX, MAIN, 'server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-file', path.join(dir, 'server.log')],
    { cwd: dir, env: cleanEnv() },
  );
  const { match } = await waitFor(server, /formwork server listening on (\S+)\nadmin token: (\S+)\n/);
  url = match[1];
  expect(match[2]).toBe(path.join(dataDir, 'admin.token'));
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await exited(server);
  }
  rmSync(dir, { recursive: true, force: true });
});

// Each CLI run is a fresh `node --import tsx` (about a second, more on a busy machine).
describe('formwork CLI end to end', { timeout: 120_000 }, () => {
  it('`server` starts, answers healthz, and leaves server.json and a private admin.token', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(statSync(path.join(dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(existsSync(path.join(dataDir, 'server.json'))).toBe(true);
  });

  it('`get nodes` on an empty store prints nothing on stdout', async () => {
    // endpoint and token come from the data dir (server.json, admin.token)
    const r = await cli(['get', 'nodes', '--data-dir', dataDir]);
    expect(r).toEqual({ code: 0, out: '', err: 'No nodes found.\n' });
  });

  it('`apply -f` creates two objects from a 2-document YAML, and again says unchanged', async () => {
    writeFileSync(
      path.join(dir, 'nodes.yaml'),
      '# two nodes\nkind: Node\nname: web-1\nlabels: {tier: web}\nzone: lab-a\n---\nkind: node\nname: db-1\nlabels: {tier: db}\n',
    );
    const first = await cli(['apply', '-f', 'nodes.yaml', '--data-dir', dataDir]);
    expect(first).toMatchObject({ code: 0, out: 'node/web-1 created\nnode/db-1 created\n' });
    const again = await cli(['apply', '-f', 'nodes.yaml', '--data-dir', dataDir]);
    expect(again).toMatchObject({ code: 0, out: 'node/web-1 unchanged\nnode/db-1 unchanged\n' });
  });

  it('`get nodes -o json` parses; tables and selectors work', async () => {
    const j = await cli(['get', 'nodes', '-o', 'json', '--endpoint', url, '--data-dir', dataDir]);
    expect(j.code).toBe(0);
    const names = (JSON.parse(j.out) as { items: Array<{ name: string }> }).items.map((o) => o.name).sort();
    expect(names).toEqual(['db-1', 'web-1']);
    const t = await cli(['get', 'nodes', '-l', 'tier=web', '--data-dir', dataDir]);
    expect(t.out).toMatch(/^NAME +PROVIDER +STATE +ADDRESS +SIZE +IMAGE +DEPLOYMENT +AGE\nweb-1 +<none> .*\d+s\n$/);
    const d = await cli(['describe', 'node', 'web-1', '--data-dir', dataDir]);
    expect(d.out).toMatch(/^Kind: +Node\nName: +web-1\n/m);
    expect(d.out).toMatch(/^Zone: +lab-a$/m);
  });

  it('`delete` removes an object', async () => {
    const r = await cli(['delete', 'node', 'db-1', '--data-dir', dataDir]);
    expect(r).toMatchObject({ code: 0, out: 'node/db-1 deleted\n' });
    const left = await cli(['get', 'nodes', '-o', 'json', '--data-dir', dataDir]);
    expect((JSON.parse(left.out) as { items: Array<{ name: string }> }).items.map((o) => o.name)).toEqual(['web-1']);
    const again = await cli(['delete', 'node', 'db-1', '--data-dir', dataDir]);
    expect(again.code).toBe(3);
    expect(again.err).toMatch(/^error: .*db-1.*\(HTTP 404 NOT_FOUND\)\n$/);
  });

  it('`delete --no-wait` returns once the node is marked deleting; the server\'s worker removes it', async () => {
    const created = await cli(['apply', '-f', '-', '--data-dir', dataDir], { stdin: 'kind: Node\nname: tmp-1\n' });
    expect(created.code).toBe(0);
    const r = await cli(['delete', 'node', 'tmp-1', '--no-wait', '--data-dir', dataDir]);
    expect(r).toMatchObject({ code: 0, out: 'node/tmp-1 deleting (formwork get node tmp-1 shows its progress)\n' });
    for (let i = 0; i < 100; i++) {
      const left = await cli(['get', 'nodes', '-o', 'json', '--data-dir', dataDir]);
      if (!(JSON.parse(left.out) as { items: Array<{ name: string }> }).items.some((o) => o.name === 'tmp-1')) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('node tmp-1 was never deleted');
  });

  it('a viewer token from `token create --role viewer` cannot write: exit 5 (forbidden) and a 403', async () => {
    const created = await cli(['token', 'create', '--role', 'viewer', '--expires', '1h', '--data-dir', dataDir]);
    expect(created.code).toBe(0);
    const token = created.out.trim();
    expect(token).toMatch(/^fwt_/);
    expect(created.err).toContain('for user viewer');
    const env = { ...cleanEnv(), FORMWORK_TOKEN: token };
    const read = await cli(['get', 'nodes', '--data-dir', dataDir], { env });
    expect(read.code).toBe(0);
    const write = await cli(['apply', '-f', '-', '--data-dir', dataDir], { env, stdin: 'kind: Node\nname: nope\n' });
    expect(write.code).toBe(5);
    expect(write.err).toMatch(/^error: .*\(HTTP 403 FORBIDDEN\)\n$/);
    const list = await cli(['token', 'list', '--data-dir', dataDir]);
    expect(list.out).toMatch(/\bviewer +active +\d{4}-/);
  });

  it('`watch` replays from --after and then prints events as they happen', async () => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, 'watch', 'nodes', '--after', '0', '--data-dir', dataDir], { cwd: dir, env: cleanEnv() });
    try {
      // web-1 was created by an earlier test: replayed through Last-Event-ID, so the stream is open once it shows
      const replay = waitFor(child, /nodes +created +web-1\n/);
      const live = waitFor(child, /nodes +created +watched-1\n/);
      await replay;
      await cli(['apply', '-f', '-', '--data-dir', dataDir], { stdin: 'kind: Node\nname: watched-1\n' });
      const { output } = await live;
      expect(output()).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}nodes {7}created {3}watched-1$/m);
      expect(output()).not.toMatch(/ users /); // only the kind asked for
      child.kill('SIGINT');
      expect(await exited(child)).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('an unreachable --endpoint fails with exit 6 (unavailable), naming it', async () => {
    const r = await cli(['get', 'nodes', '--endpoint', 'http://127.0.0.1:1', '--data-dir', dataDir]);
    expect(r.code).toBe(6);
    expect(r.out).toBe('');
    expect(r.err).toContain('error: cannot reach the Formwork server at http://127.0.0.1:1: connection refused');
  });

  it('an unknown flag exits 2; an unknown kind exits 2 too (invalid)', async () => {
    const r = await cli(['get', 'nodes', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option '--no-such-flag'");
    const k = await cli(['get', 'widgets', '--data-dir', dataDir]);
    expect(k.code).toBe(2);
    expect(k.err).toContain('known kinds: providers, nodes');
  });

  it('`logs -f` follows a running node-role\'s output as it is written, and stops when the node-role leaves running', async () => {
    const doc = path.join(dir, 'slow.yaml');
    writeFileSync(doc, 'kind: Deployment\nname: follow\nnodes: { count: 1 }\nroles:\n  slow: { nodes: [0] }\n');
    expect((await cli(['apply', '-f', doc, '--data-dir', dataDir])).code).toBe(0);
    const follower = spawn(process.execPath, ['--import', TSX, MAIN, 'logs', '-f', 'follow:follow-0:slow', '--data-dir', dataDir], { cwd: dir, env: cleanEnv() });
    let err = '';
    follower.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const first = await waitFor(follower, /first line\n/);
    expect(first.output()).not.toContain('second line'); // it is still waiting for GO
    writeFileSync(path.join(dir, 'GO'), '');
    await waitFor(follower, /second line\n/);
    expect(await exited(follower)).toBe(0);
    expect(first.output()).toBe('first line\nsecond line\n');
    expect(err).toContain('follow:follow-0:slow is active');
  });

  it('`server --apply` refuses to start on a bad document, naming its file and line, with nothing written', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'kind: Node\nname: fine\n---\nkind: Node\nname: wrong\naddresses: not-a-list\n---\nkind: Node\nname: worse\ncolour: red\n');
    const other = path.join(dir, 'other-data');
    const r = await cli(['server', '--data-dir', other, '--listen', '127.0.0.1:0', '--log-file', path.join(dir, 'other.log'), '--apply', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('/documents/1/addresses');
    expect(r.err).toContain(`at ${file}:4 (node/wrong) addresses`);
    expect(r.err).toContain(`- ${file}:8 (node/worse) colour: unknown field "colour"`); // every problem, not only the first
    expect(existsSync(path.join(other, 'server.json'))).toBe(false);
  });

  it('`up` quotes why its background server could not start (its port in use, a bad override), and nothing is written', async () => {
    const upData = path.join(dir, 'up-data');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as AddressInfo).port;
    try {
      const taken = await cli(['up', '--data-dir', upData, '--listen', `127.0.0.1:${busyPort}`]);
      expect(taken.code).toBe(1);
      expect(taken.err).toContain(`the background server exited at start: cannot listen on 127.0.0.1:${busyPort}: the address is in use (EADDRINUSE)`);
    } finally {
      busy.close();
    }
    // The port is free now; a bad override fails the server's apply, which writes nothing.
    const bad = await cli(['up', '--data-dir', upData, '--listen', `127.0.0.1:${busyPort}`, '--subnet-index', '300']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('/documents/0/settings/subnetIndex: lab setting subnetIndex must be <= 255');
    expect(bad.err).not.toContain('EADDRINUSE'); // the first start's error is further up server.log
    expect(existsSync(path.join(upData, 'server.json'))).toBe(false);
  });

  // As root, the lab's tools are there (.ci/run installs them): the check that fails here is root's.
  it.runIf(process.getuid?.() === 0)('`up` as a user other than root stops before it starts anything, saying why', async () => {
    const upData = path.join(tmpdir(), `fw-up-nobody-${process.pid}`);
    try {
      const res = await cli(['up', '--data-dir', upData, '--listen', '127.0.0.1:0'], { asUser: { uid: 65534, gid: 65534 } });
      expect(res.code).toBe(1);
      expect(res.err).toContain('error: the lab provider must run as root');
      expect(res.err).not.toContain('started a Formwork server');
      expect(existsSync(upData)).toBe(false); // no server, no log, no data dir
    } finally {
      // Should this fail, the server `up` started is still running: stop it by its pid.
      const pid = existsSync(path.join(upData, 'up.json')) ? (JSON.parse(readFileSync(path.join(upData, 'up.json'), 'utf8')) as { serverPid?: number }).serverPid : undefined;
      if (pid) process.kill(pid, 'SIGTERM');
      rmSync(upData, { recursive: true, force: true });
    }
  });

  it('`down` stops only the server `up` started: a pid in up.json that is not the serving server\'s is left alone', async () => {
    // As if `up` had started a server that died without `down`, its pid since taken by another process.
    const bystander = spawn('sleep', ['60']);
    try {
      writeFileSync(path.join(dataDir, 'up.json'), JSON.stringify({ serverPid: bystander.pid }));
      const res = await cli(['down', '--data-dir', dataDir]);
      expect(res.code).toBe(0);
      expect(res.err).toContain(`the server \`up\` started (pid ${bystander.pid}) is no longer the one serving`);
      expect(bystander.exitCode).toBeNull();
      expect(bystander.signalCode).toBeNull();
      expect(server.exitCode).toBeNull(); // the serving server was not started by `up`: left running
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      bystander.kill();
    }
  });

  it('`server` stops cleanly on SIGTERM and removes server.json', async () => {
    server.kill('SIGTERM');
    expect(await exited(server)).toBe(0);
    expect(existsSync(path.join(dataDir, 'server.json'))).toBe(false);
  });
});
