import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import type { FormworkEvent } from '../core/kinds.js';
import type { Dialect, Executor } from './db.js';

/**
 * The event log: every create, update, delete and state change, in one table with a
 * sequence number. Subscribers read it by polling the table (nudged at once after a
 * local commit), so events written by another process sharing a PostgreSQL database
 * reach them too, with no second delivery mechanism.
 *
 * @example
 *   const stop = events.subscribe({ types: ['nodes'], after: 0 }, (e) => console.log(e.action, e.key));
 */

export type { FormworkEvent };

export interface NewEvent {
  type: string;
  action: string;
  key: string;
  actor?: string;
  object?: unknown;
}

export interface EventFilter {
  types?: string[];
  keys?: string[];
  /** Only events with a larger sequence number. */
  after?: number;
}

const POLL_MS = 250;

/** The advisory lock that orders event-appending transactions on PostgreSQL (7480001 is the migrations'). */
const EVENT_APPEND_LOCK = 7480002;

export class EventLog {
  private readonly bus = new EventEmitter();
  private lastSeen = -1;
  /** Resolves once the poller knows where "now" is; subscribers replay from the table only after it. */
  private baseline: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private pollAgain = false;

  /** Transactions known to hold EVENT_APPEND_LOCK, so it is taken once per transaction. */
  private readonly locked = new WeakSet<Executor>();

  constructor(
    private readonly db: Executor,
    private readonly dialect: Dialect = 'sqlite',
  ) {
    this.bus.setMaxListeners(0);
  }

  /**
   * Makes sequence order commit order. Readers advance a `seq >` cursor, but a PostgreSQL
   * sequence value is taken at insert and seen only at commit: had a transaction holding
   * seq N committed after one holding N+1, readers would have passed N for good. So each
   * transaction holds this lock from its first statement until it commits (Store takes it
   * as each transaction begins): taken any later, a transaction could wait for it while
   * holding row locks (`select … for update`, a raw write) that the holder needs, and
   * PostgreSQL would end one of them as a deadlock. SQLite has one writer.
   */
  async lockForAppend(db: Executor): Promise<void> {
    if (this.dialect !== 'postgres' || this.locked.has(db)) return;
    if (!db.isTransaction) return; // append() opens a transaction for a lone event
    await sql`select pg_advisory_xact_lock(${sql.lit(EVENT_APPEND_LOCK)})`.execute(db);
    this.locked.add(db);
  }

  async append(db: Executor, e: NewEvent): Promise<void> {
    if (this.dialect === 'postgres' && !db.isTransaction) {
      // The lock only orders what is written inside the transaction that holds it.
      await db.transaction().execute((trx) => this.append(trx, e));
      return;
    }
    await this.lockForAppend(db);
    await db
      .insertInto('events')
      .values({
        time: new Date().toISOString(),
        type: e.type,
        action: e.action,
        key: e.key,
        actor: e.actor ?? null,
        object: e.object === undefined ? null : JSON.stringify(e.object),
      })
      .execute();
  }

  async list(filter: EventFilter = {}, limit = 500): Promise<FormworkEvent[]> {
    let q = this.db.selectFrom('events').selectAll().where('seq', '>', filter.after ?? 0);
    if (filter.types?.length) q = q.where('type', 'in', filter.types);
    if (filter.keys?.length) q = q.where('key', 'in', filter.keys);
    const rows = await q.orderBy('seq').limit(limit).execute();
    return rows.map(toEvent);
  }

  async latestSeq(): Promise<number> {
    const row = await this.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
    return Number(row?.m ?? 0);
  }

  /**
   * Calls `onEvent` for each matching event after `filter.after` (or from now), in order.
   * Returns an unsubscribe. `onStart` is called once the starting point is fixed ("now" is
   * read from the table, not the moment of the call): every event committed after it is
   * delivered. If the replay of missed events fails, the subscription ends (nothing more is
   * delivered or queued) and `onError` is called: the caller resumes from the last event it got.
   */
  subscribe(filter: EventFilter, onEvent: (e: FormworkEvent) => void, onError?: (e: unknown) => void, onStart?: () => void): () => void {
    let cursor = filter.after;
    const deliver = (e: FormworkEvent) => {
      if (cursor !== undefined && e.seq <= cursor) return;
      if (filter.types?.length && !filter.types.includes(e.type)) return;
      if (filter.keys?.length && !filter.keys.includes(e.key)) return;
      cursor = e.seq;
      onEvent(e);
    };
    let live = false;
    const queued: FormworkEvent[] = [];
    const onBus = (e: FormworkEvent) => (live ? deliver(e) : queued.push(e));
    this.bus.on('event', onBus);
    this.ensurePolling();
    // Replay what the caller missed, then switch to live delivery.
    void (async () => {
      // Events up to the poller's baseline come from this replay, later ones from the poller.
      await this.baseline;
      if (cursor === undefined) cursor = await this.latestSeq();
      onStart?.();
      for (;;) {
        const batch = await this.list({ ...filter, after: cursor });
        batch.forEach(deliver);
        if (batch.length < 500) break;
      }
      live = true;
      queued.forEach(deliver);
      queued.length = 0;
    })().catch((e: unknown) => {
      // Never live: without this the queue would grow for as long as the caller waits.
      unsubscribe();
      queued.length = 0;
      onError?.(e);
    });
    const unsubscribe = () => {
      this.bus.off('event', onBus);
      if (this.bus.listenerCount('event') === 0) this.stopPolling();
    };
    return unsubscribe;
  }

  /** Asks the poller to look now (called after a local commit). */
  nudge(): void {
    if (this.timer) void this.poll();
  }

  private ensurePolling(): void {
    if (this.timer) return;
    this.baseline = this.latestSeq().then(
      (seq) => {
        if (this.lastSeen < 0) this.lastSeen = seq;
      },
      () => undefined,
    );
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.lastSeen = -1;
  }

  private async poll(): Promise<void> {
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    try {
      do {
        this.pollAgain = false;
        await this.baseline;
        if (this.lastSeen < 0) this.lastSeen = await this.latestSeq();
        for (;;) {
          const batch = await this.list({ after: this.lastSeen }, 500);
          for (const e of batch) {
            this.lastSeen = e.seq;
            this.bus.emit('event', e);
          }
          if (batch.length < 500) break;
        }
      } while (this.pollAgain);
    } catch {
      // The database is briefly unavailable; the next tick tries again.
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    this.stopPolling();
    this.bus.removeAllListeners();
  }
}

function toEvent(r: Record<string, unknown>): FormworkEvent {
  const seq = Number(r.seq);
  return {
    id: String(seq),
    seq,
    time: r.time as string,
    type: r.type as string,
    action: r.action as string,
    key: r.key as string,
    ...(r.actor ? { actor: r.actor as string } : {}),
    ...(r.object ? { object: JSON.parse(r.object as string) } : {}),
  };
}
