import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { STORE_ENGINES, createTestDatabase, type TestStore } from './testing/engines.js';
import { MIGRATIONS } from './db.js';
import { Store } from './store.js';
import type { FormworkEvent } from './events.js';
import { LAST_USED_RESOLUTION_MS } from './auth.js';

async function expectCode(p: Promise<unknown>, code: string): Promise<FormworkError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FormworkError);
  expect((e as FormworkError).code).toBe(code);
  return e as FormworkError;
}

describe.each(STORE_ENGINES)('store on $name', (engine) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await engine.open();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('creates, reads by id and by name, and maps fields both ways', async () => {
    const nodes = t.store.objects('nodes');
    const created = await nodes.create({
      name: 'web-1',
      provider: 'lab',
      state: 'pending',
      addresses: [{ address: '198.18.0.11', family: 4, role: 'public' }],
      labels: { env: 'prod' },
    });
    expect(created.id).toMatch(/^nd_[0-9a-z]{26}$/);
    expect(created.version).toBe(1);
    const byName = await nodes.get('web-1');
    const byId = await nodes.get(created.id);
    expect(byId).toEqual(byName);
    expect(byName.addresses).toEqual([{ address: '198.18.0.11', family: 4, role: 'public' }]);
    expect(byName.labels).toEqual({ env: 'prod' });
    expect(byName.loginUser).toBeUndefined();
  });

  it("refuses a JSON field its kind's schema forbids, on create and on update, writing nothing", async () => {
    const deps = t.store.objects('deployments');
    const e = await expectCode(deps.create({ name: 'd', spec: { nodeOrder: ['n1'] } }), 'VALIDATION');
    expect(e.message).toBe('deployment field "spec" does not match its schema: (value) must NOT have additional properties');
    expect(await deps.find('d')).toBeUndefined();
    await deps.create({ name: 'd', spec: { nodes: [{ name: 'n1' }] } });
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n1' });
    await expectCode(nodes.update('n1', { addresses: [{ address: '198.18.0.5', family: 5, role: 'public' }] }), 'VALIDATION');
    expect((await nodes.get('n1')).version).toBe(1);
  });

  it('refuses unknown fields, bad names, duplicate names and missing required fields', async () => {
    const nodes = t.store.objects('node');
    const e = await expectCode(nodes.create({ name: 'a', colour: 'red' }), 'VALIDATION');
    expect(e.message).toContain('"colour"');
    await expectCode(nodes.create({ name: '-bad name' }), 'VALIDATION');
    await nodes.create({ name: 'a' });
    await expectCode(nodes.create({ name: 'a' }), 'ALREADY_EXISTS');
    await expectCode(t.store.objects('providers').create({ name: 'p' }), 'VALIDATION');
    await expectCode(Promise.resolve().then(() => t.store.objects('widgets')), 'UNKNOWN_KIND');
    expect((await nodes.list()).items.map((n) => n.name)).toEqual(['a']);
  });

  it('creates racing for one name: one wins, the others get ALREADY_EXISTS (not a database error)', async () => {
    const nodes = t.store.objects('nodes');
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => nodes.create({ name: 'race' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) expect(r.reason).toMatchObject({ code: 'ALREADY_EXISTS' });
  });

  it('turns a key the database refuses into a conflict error, not a database error, with nothing written', async () => {
    const nodes = t.store.objects('nodes');
    const first = await nodes.create({ name: 'first' });
    // The repository checks names itself; an id is the key it does not check, so it reaches the database.
    const e = await expectCode(nodes.create({ name: 'second', id: first.id }), 'CONFLICT');
    expect(e.message).toMatch(/^a row of nodes with that id was written by another request/);
    expect(await nodes.find('second')).toBeUndefined();
    // A name refused by the database (as when two creates race past the check) is ALREADY_EXISTS.
    await t.store.transaction((tx) => tx.db.insertInto('users').values({ id: 'us_dup', name: 'admin-twin', role: 'viewer', version: 1, labels: '{}', created_at: 'x', updated_at: 'x' }).execute());
    const twin = t.store.transaction((tx) => tx.db.insertInto('users').values({ id: 'us_dup2', name: 'admin-twin', role: 'viewer', version: 1, labels: '{}', created_at: 'x', updated_at: 'x' }).execute());
    expect((await expectCode(twin, 'ALREADY_EXISTS')).details).toMatchObject({ table: 'users', column: 'name' });
  });

  it('updates with optimistic versions and leaves the object unchanged on a stale version', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n', state: 'pending' });
    const v2 = await nodes.update('n', { state: 'ready' }, { expectedVersion: 1 });
    expect(v2.version).toBe(2);
    await expectCode(nodes.update('n', { state: 'error' }, { expectedVersion: 1 }), 'VERSION_MISMATCH');
    expect((await nodes.get('n')).state).toBe('ready');
    // Writing the same values is not a change: no new version.
    expect((await nodes.update('n', { state: 'ready' })).version).toBe(2);
    await expectCode(nodes.update('n', { name: 'other' }), 'VALIDATION');
    await expectCode(nodes.update('missing', { state: 'x' }), 'NOT_FOUND');
  });

  it('clears a field with null', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n', zone: 'z1' });
    const n = await nodes.update('n', { zone: null });
    expect(n.zone).toBeUndefined();
    expect((await nodes.get('n')).zone).toBeUndefined();
  });

  it('deletes with a version check', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n' });
    await expectCode(nodes.delete('n', { expectedVersion: 7 }), 'VERSION_MISMATCH');
    await nodes.delete('n', { expectedVersion: 1 });
    expect(await nodes.find('n')).toBeUndefined();
    await expectCode(nodes.delete('n'), 'NOT_FOUND');
  });

  it('refuses a delete whose version changed between its check and its delete, deleting nothing', async () => {
    const nodes = t.store.objects('nodes');
    const n = await nodes.create({ name: 'x' });
    const other = await t.reopen(); // another process
    // Another writer updates the node right after the delete has read (and checked) version 1.
    // A raw write: a repository write would wait for the event lock the delete holds on PostgreSQL.
    const get = nodes.get.bind(nodes);
    let meddle: (() => Promise<unknown>) | undefined = () => other.db.updateTable('nodes').set({ version: 2, zone: 'theirs' }).where('name', '=', 'x').execute();
    nodes.get = async (...args: Parameters<typeof nodes.get>) => {
      const read = await get(...args);
      const m = meddle;
      meddle = undefined;
      if (m) await m();
      return read;
    };
    const e = await t.store.objects('nodes').delete('x', { expectedVersion: n.version }).then(
      () => undefined,
      (err: unknown) => err as FormworkError,
    );
    // PostgreSQL: the version condition finds no row. SQLite: the other process could not
    // write while this transaction read, or this one cannot write after it: a retryable conflict.
    expect(e?.code === 'VERSION_MISMATCH' || (e?.code === 'CONFLICT' && e.retryable)).toBe(true);
    expect(await other.objects('nodes').get('x')).toMatchObject({ version: 2, zone: 'theirs' });
  });

  it('refuses a value the database cannot store (NUL on PostgreSQL, a json field nested too deeply) as VALIDATION, not a database error', async () => {
    const nodes = t.store.objects('nodes');
    if (engine.name === 'postgres') await expectCode(nodes.create({ name: 'nul', message: 'a\u0000b' }), 'VALIDATION');
    else expect((await nodes.create({ name: 'nul', message: 'a\u0000b' })).message).toBe('a\u0000b');
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    const e = await expectCode(nodes.create({ name: 'deep', inventory: deep }), 'VALIDATION');
    expect(e.message).toBe('node field "inventory" is nested too deeply to store; flatten it');
    expect(await nodes.find('deep')).toBeUndefined();
  });

  it('filters by field and label and paginates in creation order', async () => {
    const nodes = t.store.objects('nodes');
    for (let i = 0; i < 25; i++) {
      await nodes.create({ name: `n${String(i).padStart(2, '0')}`, state: i % 2 ? 'ready' : 'pending', labels: { tier: i < 10 ? 'web' : 'db' } });
    }
    const ready = await nodes.all({ filters: { state: 'ready' } });
    expect(ready).toHaveLength(12);
    const webReady = await nodes.all({ filters: { state: 'ready' }, labels: { tier: 'web' } });
    expect(webReady.map((n) => n.name)).toEqual(['n01', 'n03', 'n05', 'n07', 'n09']);
    const names: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await nodes.list({ limit: 10, after });
      names.push(...page.items.map((n) => n.name));
      after = page.next;
      pages++;
    } while (after);
    expect(pages).toBe(3);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(25);
    await expectCode(nodes.list({ filters: { colour: 'x' } }), 'VALIDATION');
  });

  it('keeps label filters right after labels change', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n', labels: { env: 'dev' } });
    await nodes.update('n', { labels: { env: 'prod' } });
    expect(await nodes.all({ labels: { env: 'dev' } })).toHaveLength(0);
    expect(await nodes.all({ labels: { env: 'prod' } })).toHaveLength(1);
  });

  it('applies declaratively: created, unchanged, updated', async () => {
    const providers = t.store.objects('providers');
    const doc = { kind: 'Provider', name: 'lab', type: 'lab', settings: { subnetIndex: 0, nested: { a: [1, 2] } } };
    expect((await providers.apply(doc)).action).toBe('created');
    expect((await providers.apply({ ...doc, settings: { nested: { a: [1, 2] }, subnetIndex: 0 } })).action).toBe('unchanged');
    const r = await providers.apply({ ...doc, settings: { subnetIndex: 1 } });
    expect(r.action).toBe('updated');
    expect(r.object.version).toBe(2);
  });

  it('rolls back every write of a failed transaction, events included', async () => {
    const before = await t.store.events.latestSeq();
    await expect(
      t.store.transaction(async (tx) => {
        await tx.objects('nodes').create({ name: 'a' });
        await tx.objects('nodes').create({ name: 'b' });
        await tx.objects('nodes').create({ name: 'a' });
      }),
    ).rejects.toThrow(/already exists/);
    expect(await t.store.objects('nodes').all()).toHaveLength(0);
    expect(await t.store.events.latestSeq()).toBe(before);
  });

  it('records an event for every create, update, state change and delete', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'n', state: 'pending' }, { actor: 'alice' });
    await nodes.update('n', { state: 'ready' }, { actor: 'bob' });
    await nodes.update('n', { zone: 'z' });
    await nodes.delete('n');
    const events = await t.store.events.list({ types: ['nodes'] });
    expect(events.map((e) => e.action)).toEqual(['created', 'state', 'updated', 'deleted']);
    expect(events[0].actor).toBe('alice');
    expect(events[1].actor).toBe('bob');
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
    expect((events[1].object as { state: string }).state).toBe('ready');
  });

  it('delivers events to subscribers, from a given point, including writes from another process', async () => {
    const nodes = t.store.objects('nodes');
    await nodes.create({ name: 'before' });
    const start = await t.store.events.latestSeq();
    const got: FormworkEvent[] = [];
    const stop = t.store.events.subscribe({ types: ['nodes'], after: start - 1 }, (e) => got.push(e));
    const other = await t.reopen(); // a second Store on the same database, as another process
    await other.objects('nodes').create({ name: 'from-other' });
    await nodes.create({ name: 'local' });
    await waitFor(() => got.length >= 3);
    stop();
    expect(got.map((e) => e.key)).toEqual(['before', 'from-other', 'local']);
  });

  it('delivers an event whose transaction commits after a later write began (sequence order is commit order)', async () => {
    const got: FormworkEvent[] = [];
    const stop = t.store.events.subscribe({ types: ['nodes'] }, (e) => got.push(e));
    await new Promise((r) => setTimeout(r, 300)); // the subscriber is live
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const insertedP = new Promise<void>((r) => (inserted = r));
    const slow = t.store.transaction(async (tx) => {
      await tx.objects('nodes').create({ name: 'slow' });
      inserted();
      await gate;
    });
    await insertedP;
    // A later write (PostgreSQL: on another connection, so it would commit first if it could).
    const fast = t.store.objects('nodes').create({ name: 'fast' });
    await new Promise((r) => setTimeout(r, 400));
    release();
    await Promise.all([slow, fast]);
    await waitFor(() => got.length >= 2);
    stop();
    expect(got.map((e) => e.key)).toEqual(['slow', 'fast']);
    expect((await t.store.events.list({ types: ['nodes'] })).map((e) => e.key)).toEqual(['slow', 'fast']);
  });

  it('a transaction that locks rows before it writes does not deadlock with another writer of those rows', async () => {
    // The annealer's claim: `for update skip locked` on every candidate, then an update of only
    // the one it runs. A writer of another candidate waits for the claim and then succeeds.
    if (engine.name !== 'postgres') return; // SQLite has one writer and no row locks
    const x = await t.store.objects('nodes').create({ name: 'x' });
    const y = await t.store.objects('nodes').create({ name: 'y' });
    const other = await t.reopen(); // another connection pool, as another process
    let rowsLocked!: () => void;
    const locked = new Promise<void>((r) => (rowsLocked = r));
    const claim = t.store.transaction(async (tx) => {
      await sql`select id from nodes where id in (${sql.join([x.id, y.id])}) for update skip locked`.execute(tx.db);
      rowsLocked();
      await new Promise((r) => setTimeout(r, 200));
      return tx.objects('nodes').update(y.id, { zone: 'claimed' });
    });
    await locked;
    const write = other.objects('nodes').update('x', { zone: 'applied' });
    await expect(Promise.all([claim, write])).resolves.toHaveLength(2);
    expect((await t.store.objects('nodes').get('x')).zone).toBe('applied');
  });

  it('ends a subscription whose replay fails, telling the subscriber, and queues nothing after', async () => {
    const events = t.store.events;
    const list = events.list.bind(events);
    events.list = () => Promise.reject(new Error('database unavailable'));
    const got: FormworkEvent[] = [];
    let failed: unknown;
    events.subscribe({ types: ['nodes'], after: 0 }, (e) => got.push(e), (e) => (failed = e));
    await waitFor(() => failed !== undefined);
    events.list = list;
    expect((failed as Error).message).toBe('database unavailable');
    await t.store.objects('nodes').create({ name: 'later' });
    await new Promise((r) => setTimeout(r, 600)); // two polls
    expect(got).toEqual([]);
  });

  it('encrypts secrets at rest and never exposes the value on the object or in events', async () => {
    const value = 'sk-live-' + Math.random().toString(36).slice(2);
    const obj = await t.store.secrets.create({ name: 'aws', data: { accessKeyId: 'AKIA1', secretAccessKey: value } });
    expect(obj.keys).toEqual(['accessKeyId', 'secretAccessKey']);
    expect(JSON.stringify(obj)).not.toContain(value);
    expect(JSON.stringify(await t.store.objects('secrets').get('aws'))).not.toContain(value);
    expect(JSON.stringify(await t.store.events.list())).not.toContain(value);
    const raw = await t.store.db.selectFrom('secrets').selectAll().execute();
    expect(JSON.stringify(raw)).not.toContain(value);
    expect((await t.store.secrets.reveal('aws')).secretAccessKey).toBe(value);
    await t.store.secrets.update('aws', { data: { token: 't2' } });
    expect(await t.store.secrets.reveal('aws')).toEqual({ token: 't2' });
    await expectCode(t.store.secrets.create({ name: 'bad', data: { n: 1 } }), 'VALIDATION');
  });

  it('issues tokens stored hashed, records their last use, and refuses revoked and expired ones', async () => {
    await t.store.auth.ensureUser('admin', 'admin');
    const { token, info } = await t.store.auth.createToken('admin');
    expect((await t.store.auth.authenticate(token)).role).toBe('admin');
    const rows = await t.store.db.selectFrom('tokens').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(token);
    const used = (await t.store.auth.listTokens()).find((x) => x.id === info.id)?.lastUsedAt;
    expect(Date.now() - Date.parse(used ?? '')).toBeLessThan(10_000);
    // Within the resolution, a use writes nothing; after it, the new time is recorded.
    await t.store.auth.authenticate(token);
    expect((await t.store.auth.listTokens()).find((x) => x.id === info.id)?.lastUsedAt).toBe(used);
    const longAgo = new Date(Date.now() - LAST_USED_RESOLUTION_MS - 1000).toISOString();
    await t.store.db.updateTable('tokens').set({ last_used_at: longAgo }).where('id', '=', info.id).execute();
    await t.store.auth.authenticate(token);
    expect((await t.store.auth.listTokens()).find((x) => x.id === info.id)?.lastUsedAt).not.toBe(longAgo);
    await t.store.auth.revokeToken(info.id);
    await expectCode(t.store.auth.authenticate(token), 'UNAUTHENTICATED');
    const short = await t.store.auth.createToken('admin', { expiresInSeconds: 0.001 });
    await new Promise((r) => setTimeout(r, 5));
    await expectCode(t.store.auth.authenticate(short.token), 'UNAUTHENTICATED');
    await expectCode(t.store.auth.authenticate('fwt_nope'), 'UNAUTHENTICATED');
    await expectCode(t.store.auth.authenticate(undefined), 'UNAUTHENTICATED');
  });

  it('revokes a token and records the event together, and issues tokens inside a transaction', async () => {
    await t.store.auth.ensureUser('admin', 'admin');
    const { token, info } = await t.store.auth.createToken('admin');
    const events = t.store.events;
    const append = events.append.bind(events);
    events.append = () => Promise.reject(new Error('event log unavailable'));
    await expect(t.store.auth.revokeToken(info.id)).rejects.toThrow('event log unavailable');
    events.append = append;
    expect((await t.store.auth.authenticate(token)).tokenId).toBe(info.id); // not revoked
    // A token and the user it is for commit together, or neither does.
    const made = await t.store.transaction(async (tx) => {
      await tx.auth.ensureUser('ci', 'viewer');
      return tx.auth.createToken('ci');
    });
    expect((await t.store.auth.authenticate(made.token)).user).toBe('ci');
    await expect(
      t.store.transaction(async (tx) => {
        await tx.auth.ensureUser('ci-2', 'viewer');
        await tx.auth.createToken('ci-2');
        throw new Error('later step failed');
      }),
    ).rejects.toThrow('later step failed');
    expect(await t.store.objects('users').find('ci-2')).toBeUndefined();
    expect((await t.store.auth.listTokens()).map((x) => x.user)).not.toContain('ci-2');
  });

  it('refuses, untouched, a database migrated by a newer Formwork', async () => {
    await t.store.db.insertInto('formwork_migrations').values({ name: '9999_future', applied_at: new Date().toISOString() }).execute();
    await t.store.objects('nodes').create({ name: 'keep' });
    const opened = t.reopen();
    const e = await expectCode(opened, 'SCHEMA_TOO_NEW');
    expect(e.message).toContain('9999_future');
    expect(await t.store.objects('nodes').find('keep')).toBeDefined();
    const names = (await t.store.db.selectFrom('formwork_migrations').select('name').execute()).map((r) => r.name);
    expect(names).toEqual([...MIGRATIONS.map((m) => m.name), '9999_future'].sort());
  });

  it('migrates idempotently when opened again', async () => {
    await t.store.objects('nodes').create({ name: 'n' });
    const again: Store = await t.reopen();
    expect((await again.objects('nodes').get('n')).name).toBe('n');
  });
});

// Only PostgreSQL: several servers share a database only there (a SQLite data dir has one
// server), and SQLite connections in one process would block each other in busy waits.
describe.each(STORE_ENGINES.filter((e) => e.name === 'postgres'))('opening a fresh database on $name', () => {
  it('several processes opening it at once all succeed; one migrates', async () => {
    const dirs = Array.from({ length: 12 }, () => fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-test-')));
    const pg = await createTestDatabase();
    try {
      const results = await Promise.allSettled(dirs.map((d) => Store.open({ dataDir: d, databaseUrl: pg.url, secretKey: randomBytes(32) })));
      const opened = results.filter((r): r is PromiseFulfilledResult<Store> => r.status === 'fulfilled').map((r) => r.value);
      const names = opened.length ? (await opened[0].db.selectFrom('formwork_migrations').select('name').execute()).map((r) => r.name) : [];
      await Promise.all(opened.map((s) => s.close()));
      expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r.reason as Error).message)))).toEqual(dirs.map(() => 'ok'));
      expect(names).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await pg.drop();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('waits for the migration lock before it writes anything, the migrations table included', async () => {
    const db = await createTestDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-test-'));
    const other = new pg.Client({ connectionString: db.url }); // another process, migrating
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock(7480001)');
      const opening = Store.open({ dataDir: dir, databaseUrl: db.url, secretKey: randomBytes(32) });
      await new Promise((r) => setTimeout(r, 500));
      expect((await other.query(`select to_regclass('formwork_migrations') as t`)).rows[0].t).toBeNull();
      await other.query('commit');
      const store = await opening;
      expect(await store.db.selectFrom('formwork_migrations').select('name').execute()).toHaveLength(MIGRATIONS.length);
      await store.close();
    } finally {
      await other.end();
      await db.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
