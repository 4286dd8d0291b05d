import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../server/server.js';
import { createTestDatabase } from '../store/testing/engines.js';
import { waitFor } from './testing/fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const MAIN = path.join(root, 'src/cli/main.ts');
const TSX = pathToFileURL(createRequire(path.join(root, 'package.json')).resolve('tsx')).href;

/**
 * The must-show: a DELETE of a deployment answers 202 from a server that only serves
 * the API (`role: 'api'`: no engine, no deleting), and a separate worker process, started as
 * users do (`formwork server --role worker`, nothing built), with a data dir of its own (not the
 * server's), sharing the PostgreSQL database and the secret key, finishes the teardown.
 * PostgreSQL only: SQLite cannot be shared by two data dirs.
 */
describe.skipIf(process.env.FORMWORK_TEST_SKIP_POSTGRES === '1')('deletion by a separate worker process (PostgreSQL)', () => {
  let db: { url: string; drop(): Promise<void> };
  let apiDir: string;
  let workerDir: string;
  let server: RunningServer | undefined;
  let worker: ChildProcess | undefined;
  const key = randomBytes(32).toString('base64');

  beforeEach(async () => {
    db = await createTestDatabase();
    apiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-api-'));
    workerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-worker-'));
    const before = process.env.FORMWORK_SECRET_KEY;
    process.env.FORMWORK_SECRET_KEY = key;
    try {
      server = await startServer({ dataDir: apiDir, databaseUrl: db.url, listen: '127.0.0.1:0', handleSignals: false, logFile: path.join(apiDir, 'server.log'), role: 'api' });
    } finally {
      if (before === undefined) delete process.env.FORMWORK_SECRET_KEY;
      else process.env.FORMWORK_SECRET_KEY = before;
    }
  });
  afterEach(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      await new Promise((r) => worker!.once('exit', r));
    }
    await server?.close();
    await db.drop();
    fs.rmSync(apiDir, { recursive: true, force: true });
    fs.rmSync(workerDir, { recursive: true, force: true });
  });

  it('DELETE of a deployment answers 202 from the API-only server; the worker process finishes the teardown', async () => {
    const token = fs.readFileSync(path.join(apiDir, 'admin.token'), 'utf8').trim();
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(server!.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    expect(server!.services.engine).toBeUndefined();
    // The provider's credentials are a secret: the worker can read them only with the shared key.
    const applied = await call('POST', '/api/v1/apply', {
      documents: [
        { kind: 'Secret', name: 'static-creds', data: { token: 'not-for-logs' } },
        { kind: 'Provider', name: 'st', type: 'static', credentialsSecret: 'static-creds', settings: { machines: [{ name: 'm1', address: '198.18.0.10', user: 'root' }, { name: 'm2', address: '198.18.0.11', user: 'root' }] } },
        { kind: 'Deployment', name: 'demo', provider: 'st', nodes: [{ name: 'a' }, { name: 'b' }], roles: {} },
      ],
    });
    expect(applied.status).toBe(200);
    expect((await call('GET', '/api/v1/nodes?deployment=demo')).json.items).toHaveLength(2);

    const started = Date.now();
    const del = await call('DELETE', '/api/v1/deployments/demo');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(del.status).toBe(202);
    expect(del.json).toMatchObject({ name: 'demo', deletion: { requestedBy: 'admin', attempts: 0 } });
    // The API server deletes nothing by itself.
    await new Promise((r) => setTimeout(r, 500));
    expect((await call('GET', '/api/v1/deployments/demo')).status).toBe(200);

    let workerLog = '';
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', FORMWORK_SECRET_KEY: key, FORMWORK_DATABASE_URL: db.url };
    worker = spawn(process.execPath, ['--import', TSX, MAIN, 'server', '--role', 'worker', '--data-dir', workerDir, '--log-level', 'warn'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
    await waitFor(async () => (await call('GET', '/api/v1/deployments/demo')).status === 404, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; the worker's output:\n${workerLog}`);
    });
    expect((await call('GET', '/api/v1/nodes')).json.items).toEqual([]);
    expect((await call('GET', '/api/v1/noderoles')).json.items).toEqual([]);
    const events = (await call('GET', '/api/v1/events?format=json&type=deployments,nodes&limit=1000')).json.items as Array<{ type: string; key: string; action: string; actor?: string }>;
    const deleted = events.filter((e) => e.action === 'deleted').map((e) => `${e.type}/${e.key} by ${e.actor}`);
    // By the worker process (its id is host:pid:random), not by the API server.
    const by = `${os.hostname()}:${worker.pid}:`;
    expect(deleted.sort()).toEqual(['deployments/demo', 'nodes/a', 'nodes/b'].map((k) => expect.stringMatching(new RegExp(`^${k} by ${by.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f]{6}$`))));
    // The worker kept to its own data dir: its record is there, and none in the server's.
    expect(fs.existsSync(path.join(workerDir, 'workers'))).toBe(true);
    expect(fs.existsSync(path.join(apiDir, 'workers'))).toBe(false);
  }, 90_000);
});
