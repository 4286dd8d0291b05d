/**
 * Run logs: kept capped (head and tail, with a marker for what was dropped) and published
 * as `logs` events in batches, so a chatty script cannot flood the store.
 */
import type { Store } from '../store/store.js';

export const DEFAULT_LOG_CAP = 1024 * 1024;

/** Keeps the first and last `max/2` characters of a stream of text. */
export class HeadTailText {
  private head = '';
  private tail: string[] = [];
  private tailLen = 0;
  private dropped = 0;
  constructor(private readonly max = DEFAULT_LOG_CAP) {}

  push(chunk: string): void {
    const headMax = Math.ceil(this.max / 2);
    const tailMax = this.max - headMax;
    if (this.head.length < headMax) {
      const take = Math.min(headMax - this.head.length, chunk.length);
      this.head += chunk.slice(0, take);
      chunk = chunk.slice(take);
      if (!chunk) return;
    }
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    if (this.tailLen > tailMax * 2) this.compact(tailMax);
  }

  private compact(tailMax: number): void {
    const all = this.tail.join('');
    const excess = all.length - tailMax;
    if (excess > 0) {
      this.dropped += excess;
      this.tail = [all.slice(excess)];
      this.tailLen = tailMax;
    }
  }

  get truncated(): boolean {
    this.compact(this.max - Math.ceil(this.max / 2));
    return this.dropped > 0;
  }

  get length(): number {
    return this.head.length + this.tailLen;
  }

  toString(): string {
    this.compact(this.max - Math.ceil(this.max / 2));
    const tail = this.tail.join('');
    if (!this.dropped) return this.head + tail;
    return `${this.head}\n[... ${this.dropped} characters truncated ...]\n${tail}`;
  }
}

export interface LogPublisherOptions {
  /** How often buffered output is published. Default 200 ms. */
  intervalMs?: number;
  /** The most text one event carries (head and tail kept). Default 64 KiB. */
  maxChunk?: number;
}

/** Publishes a run's output as `logs`/`output` events keyed by the node-role name, batched. */
export class LogPublisher {
  private buf = new HeadTailText(64 * 1024);
  private pending = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;

  constructor(
    private readonly store: Store,
    private readonly key: string,
    private readonly runId: string,
    opts: LogPublisherOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 200;
    this.buf = new HeadTailText(opts.maxChunk ?? 64 * 1024);
  }

  write(chunk: string): void {
    if (!chunk) return;
    this.buf.push(chunk);
    this.pending = true;
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (!this.pending) return;
    const chunk = this.buf.toString();
    this.buf = new HeadTailText(64 * 1024);
    this.pending = false;
    this.chain = this.chain
      .then(async () => {
        await this.store.events.append(this.store.db, { type: 'logs', action: 'output', key: this.key, object: { runId: this.runId, chunk } });
        this.store.events.nudge();
      })
      .catch(() => undefined); // the log stream is best effort; the run record keeps the log
  }

  /** Publishes what is buffered and waits for it. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    await this.chain;
  }
}
