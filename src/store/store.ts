import { kindByName, knownKindNames } from '../core/kinds.js';
import type { KindObjects } from '../core/objects.js';
import { FormworkError } from '../core/errors.js';
import { databaseConflict, openDatabase, type Database, type Dialect, type Executor, type OpenOptions } from './db.js';
import { EventLog } from './events.js';
import { ObjectRepository } from './repository.js';
import { SecretStore, loadSecretKey } from './secrets.js';
import { AuthStore } from './auth.js';
import { PlatformKeys } from './platform-keys.js';

/**
 * The store: one object for everything Formwork keeps, on SQLite or PostgreSQL.
 *
 * @example
 *   const store = await Store.open({ dataDir: '.formwork' });
 *   await store.objects('nodes').create({ name: 'web-1', provider: 'lab' });
 *   await store.transaction(async (tx) => { … tx.objects('noderoles') … });
 */
export class Store {
  readonly events: EventLog;
  readonly secrets: SecretStore;
  readonly auth: AuthStore;
  /** The platform's key pairs (the SSH key all workers share), sealed. */
  readonly platformKeys: PlatformKeys;
  private readonly repos = new Map<string, ObjectRepository>();

  private constructor(
    private readonly database: Database,
    readonly db: Executor,
    private readonly secretKey: Buffer,
    events: EventLog | undefined,
    private readonly inTx: boolean,
  ) {
    this.events = events ?? new EventLog(db, database.dialect);
    this.secrets = new SecretStore(this.objects('secrets'), secretKey);
    this.auth = new AuthStore(db, this.objects('users'), this.events);
    this.platformKeys = new PlatformKeys(db, secretKey);
  }

  static async open(opts: OpenOptions & { secretKey?: Buffer }): Promise<Store> {
    const database = await openDatabase(opts);
    const key = opts.secretKey ?? loadSecretKey(opts.dataDir ?? '.formwork');
    return new Store(database, database.db, key, undefined, false);
  }

  get dialect(): Dialect {
    return this.database.dialect;
  }

  /**
   * The repository of one kind (`'nodes'`, `'node'` or `'Node'`); by its plural, the
   * kinds of core/objects.ts answer their typed objects.
   */
  objects<P extends keyof KindObjects>(kind: P): ObjectRepository<KindObjects[P]>;
  objects(kind: string): ObjectRepository;
  objects(kind: string): ObjectRepository {
    const def = kindByName(kind);
    if (!def) {
      throw new FormworkError('UNKNOWN_KIND', `unknown kind "${kind}"; known kinds: ${knownKindNames().join(', ')}`, { known: knownKindNames() });
    }
    let repo = this.repos.get(def.plural);
    if (!repo) {
      repo = new ObjectRepository(def, this.db, (fn) => this.runInTransaction(fn));
      this.repos.set(def.plural, repo);
    }
    return repo;
  }

  /** Runs fn atomically: every write in it (and its events) commits together or not at all. */
  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this);
    const result = await this.db
      .transaction()
      .execute(async (trx) => {
        await this.events.lockForAppend(trx); // first, before any row lock: see lockForAppend
        return fn(new Store(this.database, trx, this.secretKey, this.events, true));
      })
      .catch((e: unknown) => {
        throw databaseConflict(e) ?? e;
      });
    this.events.nudge();
    return result;
  }

  private async runInTransaction<T>(fn: (db: Executor, events: EventLog) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this.db, this.events);
    const result = await this.db
      .transaction()
      .execute(async (trx) => {
        await this.events.lockForAppend(trx);
        return fn(trx, this.events);
      })
      .catch((e: unknown) => {
        throw databaseConflict(e) ?? e;
      });
    this.events.nudge();
    return result;
  }

  async close(): Promise<void> {
    if (this.inTx) return;
    this.events.close();
    await this.database.close();
  }
}

