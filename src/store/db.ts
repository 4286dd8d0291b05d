import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { guardedKysely } from './guard.js';
import { FormworkError } from '../core/errors.js';
import * as m0001 from './migrations/0001_initial.js';
import * as m0002 from './migrations/0002_workers.js';
import * as m0003 from './migrations/0003_affinity.js';
import * as m0004 from './migrations/0004_deletion.js';
import * as m0005 from './migrations/0005_decisions.js';

/**
 * Opens the database: SQLite in the data dir by default, PostgreSQL when a URL is given.
 * Migrations run at open; a database migrated by a newer Formwork is refused untouched.
 *
 * @example
 *   const db = await openDatabase({ dataDir: '.formwork' });               // SQLite
 *   const db = await openDatabase({ databaseUrl: 'postgres://…/formwork' }); // PostgreSQL
 */

export type Dialect = 'sqlite' | 'postgres';

/** What every store module queries through: the root handle or a transaction. Rows map to objects by the kind descriptors, so the table type is dynamic. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Executor = Kysely<any>;

export interface Database {
  db: Executor;
  dialect: Dialect;
  close(): Promise<void>;
}

export interface OpenOptions {
  dataDir?: string;
  databaseUrl?: string;
}

interface Migration {
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

/** Every migration in order. Append only. */
export const MIGRATIONS: Migration[] = [
  { name: '0001_initial', up: m0001.up },
  { name: '0002_workers', up: m0002.up },
  { name: '0003_affinity', up: m0003.up },
  { name: '0004_deletion', up: m0004.up },
  { name: '0005_decisions', up: m0005.up },
];

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  const url = opts.databaseUrl;
  let database: Database;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new FormworkError('VALIDATION', `FORMWORK_DATABASE_URL must be a postgres:// URL, got "${redactUrl(url)}"`);
    }
    // Loaded here: a server on SQLite (the default) never needs the PostgreSQL driver.
    const { default: pg } = await import('pg');
    // bigint (the event sequence) arrives as a JS number: sequences stay far below 2^53.
    pg.types.setTypeParser(20, (v: string) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    pool.on('error', () => undefined); // an idle client dropped; the next query reconnects
    const db = guardedKysely(new PostgresDialect({ pool }));
    database = { db, dialect: 'postgres', close: () => db.destroy() };
  } else {
    const dataDir = opts.dataDir ?? '.formwork';
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, 'formwork.db');
    // Made private before SQLite opens it (its -wal and -shm files take the same mode): it
    // holds run logs, node facts and sealed values, whatever the data dir's own mode.
    fs.closeSync(fs.openSync(file, 'a', 0o600));
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    // A committed transaction is in the WAL before the call returns: it survives a killed
    // process. NORMAL (not FULL) trades the last transactions on power loss for speed.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const db = guardedKysely(new SqliteDialect({ database: sqlite }));
    database = { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  try {
    await migrate(database);
  } catch (e) {
    await database.close();
    throw e;
  }
  return database;
}

/**
 * The database refusing a write as a domain error, or undefined for anything else: a value
 * it cannot store (VALIDATION), a unique
 * key taken by a concurrent writer (ALREADY_EXISTS when it is an object's name, else
 * CONFLICT), a reference to a row that is gone (CONFLICT), or a transaction that lost to
 * another (CONFLICT, retryable). The repositories check names and versions first; this is
 * for the race between their check and the write, so that it never surfaces as a 500.
 *
 * @example
 *   try { … } catch (e) { throw databaseConflict(e) ?? e; }
 */
export function databaseConflict(e: unknown): FormworkError | undefined {
  const err = e as { code?: unknown; message?: unknown; table?: unknown; detail?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  // PostgreSQL: 23505 unique, 23503 foreign key. SQLite: "UNIQUE constraint failed: nodes.name".
  const unique = code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  if (unique) {
    const sqlite = /constraint failed: (\w+)\.(\w+)/.exec(text(err.message));
    const table = sqlite?.[1] ?? (text(err.table) || undefined);
    // PostgreSQL names the key in its detail, "Key (name)=(web-1) already exists.": the
    // column is kept, the value is not repeated.
    const column = sqlite?.[2] ?? /^Key \(([^)]+)\)=/.exec(text(err.detail))?.[1];
    const what = `a row of ${table ?? 'a table'}${column ? ` with that ${column}` : ''}`;
    return new FormworkError(column === 'name' ? 'ALREADY_EXISTS' : 'CONFLICT', `${what} was written by another request at the same time; read it again and retry if still needed`, {
      ...(table ? { table } : {}),
      ...(column ? { column } : {}),
    });
  }
  if (code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new FormworkError('CONFLICT', 'a row this write refers to was deleted by another request at the same time; read again and retry', {});
  }
  // 22021: PostgreSQL text cannot hold a NUL character (SQLite can). The API refuses NUL
  // before it gets here; this keeps any other way in from becoming a 500.
  if (code === '22021') {
    return new FormworkError('VALIDATION', 'a value holds a character the database cannot store (a NUL, \\u0000): remove it', {});
  }
  // 40001 serialization failure, 40P01 deadlock, SQLITE_BUSY and its extended codes
  // (SQLITE_BUSY_SNAPSHOT: a stale read snapshot cannot become a write): nothing was written;
  // the same write may succeed now.
  if (code === '40001' || code === '40P01' || code.startsWith('SQLITE_BUSY')) {
    return new FormworkError('CONFLICT', 'the write lost to a concurrent one and was rolled back; retry it', {}, { retryable: true, nextDelayMs: 50 });
  }
  return undefined;
}

const MIGRATION_TABLE = 'formwork_migrations';

/** Applies pending migrations in one transaction each; refuses a schema newer than this code. */
export async function migrate({ db, dialect }: Database): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // Several processes may start at once against one database: one migrates, the others
    // wait. The lock comes before everything, the migrations table included: two
    // concurrent CREATE TABLE IF NOT EXISTS collide on PostgreSQL (a duplicate key).
    if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7480001)`.execute(trx);
    await trx.schema
      .createTable(MIGRATION_TABLE)
      .ifNotExists()
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();
    await applyPending(trx, dialect);
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function applyPending(trx: Kysely<any>, dialect: Dialect): Promise<void> {
  const applied = (await trx.selectFrom(MIGRATION_TABLE).select('name').execute()).map((r) => r.name as string);
  const known = new Set(MIGRATIONS.map((m) => m.name));
  const unknown = applied.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new FormworkError(
      'SCHEMA_TOO_NEW',
      `The database schema is newer than this Formwork (it has migration ${unknown.join(', ')}, which this version does not know). ` +
        'It was left untouched: run a Formwork at least as new as the one that migrated it.',
      { unknownMigrations: unknown },
    );
  }
  for (const m of MIGRATIONS) {
    if (applied.includes(m.name)) continue;
    await m.up(trx, dialect);
    await trx.insertInto(MIGRATION_TABLE).values({ name: m.name, applied_at: new Date().toISOString() }).execute();
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
