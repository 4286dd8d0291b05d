import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { STORE_ENGINES, createTestDatabase } from '../store/testing/engines.js';
import { ADMIN_TOKEN_FILE, SERVER_FILE, startServer } from './server.js';

/** `startServer({ role })`: an API server and an engine worker side by side on one store. */
describe.each(STORE_ENGINES)('server roles on $name', (engine) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function tempDir(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-roles-'));
    cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
    return d;
  }

  it('an api server runs no engine, a worker listens nowhere; both share the store and the platform key', async () => {
    const previousKey = process.env.FORMWORK_SECRET_KEY;
    process.env.FORMWORK_SECRET_KEY = randomBytes(32).toString('base64');
    cleanups.push(() => {
      if (previousKey === undefined) delete process.env.FORMWORK_SECRET_KEY;
      else process.env.FORMWORK_SECRET_KEY = previousKey;
    });
    let databaseUrl: string | undefined;
    if (engine.name === 'postgres') {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      databaseUrl = db.url;
    }
    const apiDir = tempDir();
    // SQLite lives in the data dir: there the two share it; PostgreSQL lets them have their own.
    const workerDir = databaseUrl ? tempDir() : apiDir;
    const api = await startServer({ role: 'api', dataDir: apiDir, databaseUrl, listen: '127.0.0.1:0', handleSignals: false, logFile: path.join(apiDir, 'api.log') });
    cleanups.push(() => api.close());
    expect(api.services.engine).toBeUndefined();
    expect(fs.existsSync(path.join(apiDir, 'ssh'))).toBe(false); // provisions nothing, needs no key
    const token = fs.readFileSync(path.join(apiDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    const keyOf = () => fetch(`${api.url}/api/v1/platform/ssh-key`, { headers: { authorization: `Bearer ${token}` } });
    expect((await keyOf()).status).toBe(404);

    const worker = await startServer({ role: 'worker', dataDir: workerDir, databaseUrl, handleSignals: false, logFile: path.join(workerDir, 'worker.log') });
    cleanups.push(() => worker.close());
    expect(worker.url).toBeUndefined();
    expect(worker.services.engine).toBeDefined();
    if (databaseUrl) {
      expect(fs.existsSync(path.join(workerDir, SERVER_FILE))).toBe(false);
      expect(fs.existsSync(path.join(workerDir, ADMIN_TOKEN_FILE))).toBe(false);
    }
    const workers = await api.services.store.db.selectFrom('workers').select(['id', 'pid']).execute();
    expect(workers.map((w) => w.pid)).toEqual([process.pid]);
    expect(fs.readdirSync(path.join(workerDir, 'workers')).filter((f) => f.endsWith('.json'))).toHaveLength(1);

    // The API shows the key the worker stored; the worker's data dir holds the same.
    const res = await keyOf();
    expect(res.status).toBe(200);
    const pub = fs.readFileSync(path.join(workerDir, 'ssh', 'id_ed25519.pub'), 'utf8').trim();
    expect(((await res.json()) as { publicKey: string }).publicKey).toBe(pub);

    await worker.close();
    expect(fs.readdirSync(path.join(workerDir, 'workers')).filter((f) => f.endsWith('.json'))).toHaveLength(0);
    expect(fs.readFileSync(path.join(workerDir, 'worker.log'), 'utf8')).toMatch(/formwork worker running[\s\S]*formwork worker stopped/);
  });

  it('refuses an unknown role before anything starts', async () => {
    const dir = tempDir();
    await expect(startServer({ role: 'both' as 'all', dataDir: dir, handleSignals: false })).rejects.toThrow(/all, api, worker/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
