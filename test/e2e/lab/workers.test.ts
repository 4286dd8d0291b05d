/**
 * End-to-end (root only), issue 12 §3's must-show: two workers on one PostgreSQL, on two
 * data dirs (one FORMWORK_SECRET_KEY), both reaching the same lab hosts with the one
 * platform key from the store.
 *
 * Worker A (`formwork server --role all`, data dir A) makes two lab hosts and runs their
 * yardstick (node-ready logs in over SSH). A then restarts as `--role api`, and worker B
 * (`--role worker`, data dir B, which never held a key) is the only engine: a changed input
 * of node-ready makes it run again on both hosts, over SSH, by B. On the old code B would
 * make a key of its own and fail SSH_AUTH_FAILED on A's hosts.
 *
 * Uses the built CLI (bin/formwork.js → dist; run `npm run build` first) and the base
 * image cached in $FORMWORK_LAB_CACHE, hard-linked into A's data dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBaseImage, labLeftovers, missingTools } from '../../../src/providers/lab/index.js';
import { freePort } from '../../../src/ssh/testing/sshd.js';
import { createTestDatabase } from '../../../src/store/testing/engines.js';

const pexec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'bin/formwork.js');
const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : !fs.existsSync(path.join(ROOT, 'dist/cli/main.js')) ? 'not built: run npm run build' : '';
if (skipReason) console.warn(`lab workers e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';
// Subnet 17 (198.18.34.0/24 and .35): apart from the other lab tests' and a developer's `formwork up`.
const PROVIDER = { kind: 'Provider', name: 'wlab', type: 'lab', settings: { subnetIndex: 17 } };
const deployment = (wait: number) => ({
  kind: 'Deployment',
  name: 'wdemo',
  provider: 'wlab',
  nodes: { count: 2, size: 'small', image: 'debian-12' },
  roles: { 'node-ready': { nodes: [0, 1], inputs: { 'ssh-wait-seconds': wait } } },
});

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

describe.skipIf(!!skipReason)('two workers on one PostgreSQL, two data dirs, one platform key', () => {
  const dirA = fs.mkdtempSync(path.join(tmpdir(), 'fw-workers-a-'));
  const dirB = fs.mkdtempSync(path.join(tmpdir(), 'fw-workers-b-'));
  const secretKey = randomBytes(32).toString('base64');
  let databaseUrl = '';
  let dropDatabase = async () => undefined as void;
  const running = new Set<Proc>();

  function server(dataDir: string, args: string[]): Proc {
    const env = { ...process.env, FORMWORK_DATA_DIR: dataDir, FORMWORK_DATABASE_URL: databaseUrl, FORMWORK_SECRET_KEY: secretKey, FORMWORK_ENDPOINT: '', FORMWORK_TOKEN: '' };
    const child = spawn(process.execPath, [BIN, 'server', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const proc: Proc = { child, out: () => out, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
    running.add(proc);
    void proc.exited.then(() => running.delete(proc));
    return proc;
  }
  /** Stops a server by its pid (SIGTERM) and waits for it to exit. */
  async function stop(p: Proc): Promise<void> {
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await p.exited;
  }
  async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  let url = '';
  let token = '';
  async function api(method: string, p: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(url + p, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    return (await res.json()) as Record<string, unknown>;
  }
  async function startA(role: 'all' | 'api', listen: string): Promise<Proc> {
    fs.rmSync(path.join(dirA, 'server.json'), { force: true });
    const a = server(dirA, ['--role', role, '--listen', listen, '--log-file', path.join(dirA, `server-${role}.log`)]);
    await until('server A', () => fs.existsSync(path.join(dirA, 'server.json')) || a.child.exitCode !== null, 60_000);
    expect(a.child.exitCode, a.out()).toBeNull();
    url = JSON.parse(fs.readFileSync(path.join(dirA, 'server.json'), 'utf8')).url as string;
    token = fs.readFileSync(path.join(dirA, 'admin.token'), 'utf8').trim();
    return a;
  }
  const readyRoles = async () =>
    ((await api('GET', '/api/v1/noderoles?deployment=wdemo&role=node-ready')).items as Array<{ name: string; state: string; node: string; inputHash: string }>) ?? [];
  const runsOf = async () => ((await api('GET', '/api/v1/runs?deployment=wdemo&role=node-ready&limit=1000')).items as Array<{ node: string; state: string; worker: string; error?: unknown }>) ?? [];

  beforeAll(async () => {
    const base = await ensureBaseImage(CACHE, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
    fs.mkdirSync(path.join(dirA, 'lab'), { recursive: true });
    await pexec('cp', ['-al', base, path.join(dirA, 'lab', 'base')]);
    const db = await createTestDatabase();
    databaseUrl = db.url;
    dropDatabase = db.drop;
  }, 900_000);

  afterAll(async () => {
    for (const p of [...running]) await stop(p);
    // Teardown by a full server on A's data dir (the lab hosts' records live there). DELETE
    // only marks (202): the server's annealer deprovisions, so wait until each is gone.
    let left: unknown;
    if (databaseUrl) {
      const a = await startA('all', `127.0.0.1:${await freePort()}`).catch(() => undefined);
      if (a) {
        const gone = (p: string) => until(`${p} to be deleted`, async () => ((await api('GET', p)).error as { code?: string } | undefined)?.code === 'NOT_FOUND' || undefined, 150_000);
        for (const p of ['/api/v1/deployments/wdemo', '/api/v1/providers/wlab']) {
          await api('DELETE', p).then(() => gone(p)).catch((e: unknown) => console.error(`deleting ${p}:`, e));
        }
        await stop(a);
      }
      left = await labLeftovers({ dataDir: dirA, providerName: 'wlab', settings: { subnetIndex: 17 } }).catch((e: unknown) => String(e));
      await dropDatabase();
    }
    fs.rmSync(dirA, { recursive: true, force: true });
    fs.rmSync(dirB, { recursive: true, force: true });
    // Leftovers (bridges holding subnet 17) would fail the next run's apply: fail here instead.
    if (left !== undefined) expect(left).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });
  }, 300_000);

  it('worker B, on its own data dir, runs roles over SSH on the hosts worker A made', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    // A: the whole server. It stores the platform key and makes the hosts.
    let a = await startA('all', listen);
    const applied = await api('POST', '/api/v1/apply', { documents: [PROVIDER, deployment(120)] });
    expect(applied.results ?? applied, JSON.stringify(applied)).toBeTruthy();
    await until('node-ready active on both hosts (worker A)', async () => {
      const nrs = await readyRoles();
      return nrs.length === 2 && nrs.every((n) => n.state === 'active') ? nrs : undefined;
    }, 900_000);
    const keyA = fs.readFileSync(path.join(dirA, 'ssh', 'id_ed25519'), 'utf8');
    // Lab is host-bound: prepared here, it is bound to this host, where both workers run.
    expect((await api('GET', '/api/v1/providers/wlab')).affinity).toBe(hostname());
    const workerA = `:${a.child.pid}:`;
    const byA = (await runsOf()).filter((r) => r.state === 'succeeded' && r.worker.includes(workerA));
    expect(new Set(byA.map((r) => r.node)).size).toBe(2);

    // A becomes API-only; B, on a data dir that never held a key, is the only engine.
    await stop(a);
    a = await startA('api', listen);
    expect(fs.existsSync(path.join(dirB, 'ssh'))).toBe(false);
    const b = server(dirB, ['--role', 'worker', '--log-file', path.join(dirB, 'worker.log')]);
    await until('worker B running', () => /formwork worker running/.test(b.out()) || b.child.exitCode !== null, 60_000);
    expect(b.child.exitCode, b.out()).toBeNull();

    // A changed input: node-ready runs again on both hosts, by B, over SSH with the store's key.
    const before = (await runsOf()).length;
    await api('POST', '/api/v1/apply', { documents: [deployment(121)] });
    const workerB = `:${b.child.pid}:`;
    const byB = await until('node-ready run again by worker B on both hosts', async () => {
      const runs = (await runsOf()).filter((r) => r.worker.includes(workerB));
      const failed = runs.find((r) => r.state === 'failed');
      if (failed) throw new Error(`a run by worker B failed: ${JSON.stringify(failed.error)}`);
      const done = runs.filter((r) => r.state === 'succeeded');
      return new Set(done.map((r) => r.node)).size === 2 ? done : undefined;
    }, 300_000);
    expect((await runsOf()).length).toBeGreaterThan(before);
    expect([...new Set(byB.map((r) => r.node))].sort()).toEqual([...new Set(byA.map((r) => r.node))].sort());
    expect((await readyRoles()).every((n) => n.state === 'active')).toBe(true);
    expect(fs.readFileSync(path.join(dirB, 'ssh', 'id_ed25519'), 'utf8')).toBe(keyA);
    // The key never reached a log.
    const body = keyA.split('\n')[1]!;
    for (const f of [path.join(dirA, 'server-all.log'), path.join(dirA, 'server-api.log'), path.join(dirB, 'worker.log')]) {
      expect(fs.readFileSync(f, 'utf8')).not.toContain(body);
    }
    await stop(b);
    await stop(a);
  }, 1_500_000);
});
