import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Store } from '../store.js';

/**
 * Both store engines, for suites that must pass on each (`describe.each(STORE_ENGINES)`).
 * PostgreSQL comes from FORMWORK_TEST_POSTGRES_URL (default: the local server .ci/run
 * starts); every opened store gets a database of its own, dropped on cleanup.
 *
 * @example
 *   describe.each(STORE_ENGINES)('nodes on $name', (engine) => {
 *     let t: TestStore; beforeEach(async () => { t = await engine.open(); }); afterEach(() => t.cleanup());
 *   });
 */

export interface TestStore {
  store: Store;
  dataDir: string;
  /** The URL of this store's database (PostgreSQL) or undefined (SQLite). */
  databaseUrl?: string;
  /** Opens a second Store on the same database, as another process would. */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface StoreEngine {
  name: 'sqlite' | 'postgres';
  open(): Promise<TestStore>;
}

export const TEST_POSTGRES_URL = process.env.FORMWORK_TEST_POSTGRES_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const SECRET_KEY = randomBytes(32);

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-test-'));
}

export const sqliteEngine: StoreEngine = {
  name: 'sqlite',
  async open() {
    const dataDir = tempDir();
    const store = await Store.open({ dataDir, secretKey: SECRET_KEY });
    const opened = [store];
    return {
      store,
      dataDir,
      async reopen() {
        const s = await Store.open({ dataDir, secretKey: SECRET_KEY });
        opened.push(s);
        return s;
      },
      async cleanup() {
        await Promise.all(opened.map((s) => s.close()));
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  const name = `fwtest_${randomBytes(6).toString('hex')}`;
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = '/' + name;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export const postgresEngine: StoreEngine = {
  name: 'postgres',
  async open() {
    const dataDir = tempDir();
    const database = await createTestDatabase();
    const store = await Store.open({ dataDir, databaseUrl: database.url, secretKey: SECRET_KEY });
    const opened = [store];
    return {
      store,
      dataDir,
      databaseUrl: database.url,
      async reopen() {
        const s = await Store.open({ dataDir, databaseUrl: database.url, secretKey: SECRET_KEY });
        opened.push(s);
        return s;
      },
      async cleanup() {
        await Promise.all(opened.map((s) => s.close()));
        await database.drop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

/** Every engine: PostgreSQL is left out only when FORMWORK_TEST_SKIP_POSTGRES=1 (never in CI). */
export const STORE_ENGINES: StoreEngine[] =
  process.env.FORMWORK_TEST_SKIP_POSTGRES === '1' ? [sqliteEngine] : [sqliteEngine, postgresEngine];
