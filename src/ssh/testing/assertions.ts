/**
 * Test helpers shared by the SSH suites: an awaited error, polling for a condition, and the
 * local processes a command left running (the test sshd runs on this machine).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { FormworkError } from '../../core/errors.js';

/**
 * The FormworkError `p` rejects with; fails the test when it resolves or throws anything else.
 *
 * @example
 *   expect((await catchErr(pool.exec(target, 'sleep 9', { timeoutMs: 100 }))).code).toBe('RUN_TIMEOUT');
 */
export async function catchErr(p: Promise<unknown>): Promise<FormworkError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FormworkError);
    return e as FormworkError;
  }
  throw new Error('expected the promise to reject');
}

/**
 * Local pids whose command line matches (the sshd runs on this machine).
 *
 * @example
 *   await until(() => pidsWithCmdline(/^sleep 377$/).length === 0);
 */
export function pidsWithCmdline(re: RegExp): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (re.test(cmd)) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Polls `cond` every 50 ms; throws when it is still false after `ms`.
 *
 * @example
 *   await until(() => pool.stats().open === 0, 3000);
 */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
