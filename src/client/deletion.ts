import { FormworkError, type ErrorCode } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { FormworkClient } from './client.js';

/**
 * Waiting for a deletion the server accepted (DELETE answered 202: the object is marked
 * deleting and a worker deprovisions it): follows the object's events, and reads it again
 * at each one (and every `pollMs`, which also covers an event sent before the stream was
 * open), until it is gone. Progress (waiting for…, attempt n failed…) goes to `onProgress`,
 * each line once; a deletion that gave up (`failed`) throws its last error.
 *
 * @example
 *   const marked = await client.delete('deployments', 'demo');
 *   if (marked?.deletion) await awaitDeletion(client, 'deployments', marked, { onProgress: console.error });
 */

export interface AwaitDeletionOptions {
  onProgress?: (line: string) => void;
  /** Read the object again at least this often. Default 2 s. */
  pollMs?: number;
  signal?: AbortSignal;
}

interface DeletionView {
  attempts?: number;
  waitingFor?: string;
  lastError?: { code?: string; message?: string; attempt?: number; retryAt?: string };
  failed?: boolean;
}

export async function awaitDeletion(client: FormworkClient, plural: string, marked: StoredObject, opts: AwaitDeletionOptions = {}): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  const stream = client.events({ types: [plural], key: marked.name, signal: ac.signal })[Symbol.asyncIterator]();
  let next = stream.next().catch(() => undefined); // a stream that fails leaves the polling
  let said = '';
  const say = (line: string) => {
    if (line && line !== said) opts.onProgress?.(line);
    said = line;
  };
  try {
    for (;;) {
      let current: StoredObject | undefined;
      try {
        current = await client.get(plural, marked.id);
      } catch (e) {
        if (e instanceof FormworkError && e.code === 'NOT_FOUND') return;
        throw e;
      }
      const d = (current.deletion ?? undefined) as DeletionView | undefined;
      if (!d) return; // not being deleted (it cannot be unmarked: this is not the object asked for)
      if (d.failed) {
        const code = (d.lastError?.code ?? 'INTERNAL') as ErrorCode;
        throw new FormworkError(code, `${marked.name}: deletion gave up after ${d.lastError?.attempt ?? d.attempts ?? 0} attempt(s): ${d.lastError?.message ?? 'unknown error'}; fix the cause and delete it again`, { deletion: d });
      }
      if (d.lastError?.retryAt) say(`${marked.name}: attempt ${d.lastError.attempt} failed (${d.lastError.message}); retrying at ${d.lastError.retryAt}`);
      else if (d.waitingFor) say(`${marked.name}: waiting: ${d.waitingFor}`);
      else say(`${marked.name}: deleting`);
      if (opts.signal?.aborted) throw new FormworkError('INTERNAL', `stopped waiting for the deletion of ${marked.name}; it goes on on the server`);
      const event = await Promise.race([next, sleep(opts.pollMs ?? 2000, ac.signal).then(() => 'poll' as const)]);
      if (event === 'poll') continue;
      if (!event || event.done) {
        next = new Promise(() => undefined); // the stream ended: poll from now on
        continue;
      }
      if (event.value.action === 'deleted') return;
      next = stream.next().catch(() => undefined);
    }
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    ac.abort();
    void stream.return?.(undefined).catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
