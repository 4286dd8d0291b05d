/**
 * A cross-process lock file: `open(O_EXCL)` holding the owner's PID and start time. A lock whose
 * owner is gone is taken over, so a crashed Formwork never wedges the next one.
 *
 * @example
 *   await withFileLock('/data/lab/base.lock', () => buildBase(), { timeoutMs: 900_000 });
 */
import { open, readFile, stat, unlink, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import { isAlive, procRef, sleep } from './exec.js';

export interface LockOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The tail of each path's in-process queue: waiters in this process line up here instead of polling the file. */
const queues = new Map<string, Promise<unknown>>();

export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const before = queues.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = before.then(() => mine);
  queues.set(path, tail);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  try {
    await queued(before, path, deadline, opts.signal);
    await acquire(path, { ...opts, timeoutMs: deadline - Date.now() });
    try {
      return await fn();
    } finally {
      await unlink(path).catch(() => undefined);
    }
  } finally {
    release();
    if (queues.get(path) === tail) queues.delete(path);
  }
}

/** Waits for the holders ahead in this process, within the same deadline and abort signal as the file lock. */
async function queued(before: Promise<unknown>, path: string, deadline: number, signal?: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      before,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FormworkError('PROVIDER_ERROR', `timed out waiting for lock ${path} (held in this process)`, { path })), Math.max(0, deadline - Date.now()));
        onAbort = () => reject(signal!.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        if (signal?.aborted) onAbort();
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

async function acquire(path: string, opts: LockOptions): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const me = procRef(process.pid)!;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${me.pid} ${me.startTime}\n`);
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const content = await readFile(path, 'utf8').catch(() => '');
    const [pid, startTime] = content.trim().split(' ');
    if (content && !isAlive({ pid: Number(pid), startTime: startTime ?? '' })) {
      // The owner died holding it (or the file is from another boot): take it over.
      await takeOver(path, content);
      continue;
    }
    if (Date.now() > deadline) {
      throw new FormworkError('PROVIDER_ERROR', `timed out waiting for lock ${path} (held by pid ${pid})`, { path, holder: pid });
    }
    await sleep(50 + Math.random() * 100);
  }
}

/**
 * Removes a dead owner's lock file, through a second lock: two processes that both find the
 * owner dead must not both remove "its" file, or the slower would remove the lock the faster
 * has just taken. The file is removed only if it still holds what was read.
 */
async function takeOver(path: string, deadContent: string): Promise<void> {
  const takeover = `${path}.takeover`;
  let fh;
  try {
    fh = await open(takeover, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another process is taking over. Its takeover file, if it died in that instant, goes after 10 s.
    const st = await stat(takeover).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 10_000) await unlink(takeover).catch(() => undefined);
    return;
  }
  try {
    await fh.close();
    if ((await readFile(path, 'utf8').catch(() => '')) === deadContent) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(takeover).catch(() => undefined);
  }
}
