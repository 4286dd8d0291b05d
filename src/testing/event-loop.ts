import fs from 'node:fs';

/**
 * A timer-drift watchdog for the event loop: a periodic timer that fires late by more
 * than it could have been kept waiting says the loop was blocked (a synchronous call, a
 * busy loop) for the difference. Time the process was runnable but not scheduled (the
 * kernel's run-queue wait, from /proc/self/schedstat) is subtracted: on shared cores a
 * starved process is slow, not blocked.
 *
 * @example
 *   const w = new EventLoopWatchdog(); w.start(); … ; if (w.worstBlockMs() > 1000) fail(); w.stop();
 */

/** Nanoseconds the main thread spent runnable but waiting for a CPU, in ms; 0 where the kernel does not say. */
export function runQueueWaitMs(): number {
  try {
    // "<ns on cpu> <ns waiting on a run queue> <timeslices>"; /proc/self is the main thread, the loop's.
    const fields = fs.readFileSync('/proc/self/schedstat', 'utf8').trim().split(/\s+/);
    return Number(fields[1]) / 1e6 || 0;
  } catch {
    return 0;
  }
}

export interface WatchdogOptions {
  /** How often the timer fires; a block shorter than this may go unseen, which is fine for a 1 s limit. */
  intervalMs?: number;
  /** The run-queue wait clock (ms), injectable for tests. */
  waitClock?: () => number;
}

export class EventLoopWatchdog {
  private readonly intervalMs: number;
  private readonly waitClock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private lastWait = 0;
  private worst = 0;

  constructor(opts: WatchdogOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 100;
    this.waitClock = opts.waitClock ?? runQueueWaitMs;
  }

  start(): void {
    if (this.timer) return;
    this.mark();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref(); // never what keeps a process alive
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Forgets what was seen so far (a new test begins). */
  reset(): void {
    this.worst = 0;
    this.mark();
  }

  /**
   * The longest block seen since the last reset, in ms, counting the one that may be
   * going on now (a block at the very end of a test has not let the timer fire yet).
   */
  worstBlockMs(): number {
    this.sample();
    return this.worst;
  }

  private sample(): void {
    const now = performance.now();
    const wait = this.waitClock();
    const late = now - this.lastAt - this.intervalMs;
    const blocked = late - (wait - this.lastWait);
    if (blocked > this.worst) this.worst = blocked;
    this.lastAt = now;
    this.lastWait = wait;
  }

  private mark(): void {
    this.lastAt = performance.now();
    this.lastWait = this.waitClock();
  }
}
