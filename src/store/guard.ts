import { AsyncLocalStorage } from 'node:async_hooks';
import { Kysely, type ConnectionBuilder, type DatabaseConnection, type Dialect, type Driver, type TransactionBuilder } from 'kysely';
import { FormworkError } from '../core/errors.js';

/**
 * The database handle that refuses re-entry: a query through the root handle issued from
 * inside an open transaction's async scope (on the same database) throws
 * TRANSACTION_REENTRY at once. Such a query never belongs to the transaction: on SQLite
 * (one connection) it waits for the transaction that is waiting for it, forever, and
 * every other request queues behind them; on PostgreSQL it takes a second pool
 * connection, which sees none of the transaction's writes and can deadlock on its row
 * locks. Code inside `store.transaction(fn)` must query through the `tx` it is given.
 *
 * Open transactions are tracked with AsyncLocalStorage: `transaction().execute(fn)` runs
 * fn in a scope that closes when fn settles; the driver checks the scope whenever the
 * root handle asks it for a connection (a transaction's own queries use the connection
 * it holds and never ask).
 *
 * @example
 *   const db = guardedKysely(new SqliteDialect({ database }));
 *   await db.transaction().execute(async (trx) => {
 *     await db.selectFrom('nodes').selectAll().execute(); // throws TRANSACTION_REENTRY
 *   });
 */

interface Scope {
  /** The database the transaction is on (its guarded driver). */
  owner: object;
  open: boolean;
  parent: Scope | undefined;
}

const scopes = new AsyncLocalStorage<Scope>();
const observers = new Set<(e: FormworkError) => void>();

/**
 * Calls fn with every TRANSACTION_REENTRY raised, even one the caller goes on to catch
 * and swallow (the test harness fails the test with it). Returns the unsubscribe.
 */
export function observeReentry(fn: (e: FormworkError) => void): () => void {
  observers.add(fn);
  return () => observers.delete(fn);
}

function assertNotInTransaction(owner: object): void {
  for (let s = scopes.getStore(); s; s = s.parent) {
    if (!s.open || s.owner !== owner) continue;
    const e = new FormworkError(
      'TRANSACTION_REENTRY',
      'a query went to the database outside the transaction it was issued in (it would wait on that transaction, or miss its writes): ' +
        'pass the transaction (the tx of store.transaction) down to the code that made it',
    );
    for (const o of observers) o(e);
    throw e;
  }
}

async function inScope<T>(owner: object, fn: () => Promise<T>): Promise<T> {
  const scope: Scope = { owner, open: true, parent: scopes.getStore() };
  try {
    return await scopes.run(scope, fn);
  } finally {
    scope.open = false; // timers and stray promises made inside keep the scope: it must say it ended
  }
}

class GuardedDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly owner: object,
  ) {}
  init(): Promise<void> {
    return this.inner.init();
  }
  acquireConnection(): Promise<DatabaseConnection> {
    assertNotInTransaction(this.owner);
    return this.inner.acquireConnection();
  }
  beginTransaction(...args: Parameters<Driver['beginTransaction']>): Promise<void> {
    return this.inner.beginTransaction(...args);
  }
  commitTransaction(c: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(c);
  }
  rollbackTransaction(c: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(c);
  }
  releaseConnection(c: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(c);
  }
  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** A builder whose `execute(fn)` runs fn inside the scope of `owner`'s open transaction (or held connection). */
function scoped<B extends object>(builder: B, owner: object): B {
  return new Proxy(builder, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'execute') {
        return (fn: (handle: unknown) => Promise<unknown>) =>
          (value as (cb: typeof fn) => Promise<unknown>).call(target, (handle) => inScope(owner, () => fn(handle)));
      }
      // setIsolationLevel and setAccessMode return a new builder: it stays scoped.
      return (...args: unknown[]) => {
        const out = (value as (...a: unknown[]) => unknown).apply(target, args);
        return out && typeof out === 'object' && 'execute' in out ? scoped(out, owner) : out;
      };
    },
  });
}

class GuardedKysely<DB> extends Kysely<DB> {
  constructor(
    dialect: Dialect,
    private readonly owner: object,
  ) {
    super({ dialect });
  }
  override transaction(): TransactionBuilder<DB> {
    return scoped(super.transaction(), this.owner);
  }
  /** A held connection is as exclusive as a transaction: the same re-entry would wait on it. */
  override connection(): ConnectionBuilder<DB> {
    return scoped(super.connection(), this.owner);
  }
}

/**
 * The root handle of one database, guarded against re-entry. Handles derived from it with
 * withPlugin or withSchema are not guarded: Formwork uses none.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function guardedKysely(dialect: Dialect): Kysely<any> {
  const owner = {}; // this database's identity: a transaction on another one does not count
  const guarded: Dialect = {
    createDriver: () => new GuardedDriver(dialect.createDriver(), owner),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
  return new GuardedKysely(guarded, owner);
}
