import { afterEach, beforeEach } from 'vitest';
import type { FormworkError } from '../core/errors.js';
import { observeReentry } from '../store/guard.js';
import { EventLoopWatchdog } from './event-loop.js';

/**
 * Checks every test (a vitest setupFiles module, see vitest.config.ts) for two defects that
 * otherwise show only as a hung server: an event loop blocked for more than a second, and
 * a TRANSACTION_REENTRY, even one the code under test caught and swallowed.
 *
 * @example
 *   it('times a busy loop', () => { allowEventLoopBlock('measures a busy loop on purpose'); … });
 */

export const EVENT_LOOP_BLOCK_LIMIT_MS = 1000;

interface Allowances {
  block?: string;
  reentry?: string;
}

// On globalThis: a test file importing this module must see the instance vitest set up.
const KEY = Symbol.for('formwork.test-harness');
type HarnessState = { allow: Allowances; reentries: FormworkError[]; watchdog: EventLoopWatchdog };
const g = globalThis as unknown as Record<symbol, HarnessState | undefined>;

function state(): HarnessState {
  return (g[KEY] ??= { allow: {}, reentries: [], watchdog: new EventLoopWatchdog() });
}

/** Lets the running test block the event loop (say why: it is the rare test that must). */
export function allowEventLoopBlock(reason: string): void {
  state().allow.block = reason;
}

/** Lets the running test raise TRANSACTION_REENTRY (a test of the guard itself). */
export function allowTransactionReentry(reason: string): void {
  state().allow.reentry = reason;
}

const s = state();
s.watchdog.start();
observeReentry((e) => s.reentries.push(e));

beforeEach(() => {
  s.allow = {};
  s.reentries = [];
  s.watchdog.reset();
});

afterEach(() => {
  const problems: string[] = [];
  const blocked = s.watchdog.worstBlockMs();
  if (blocked > EVENT_LOOP_BLOCK_LIMIT_MS && !s.allow.block) {
    problems.push(
      `the event loop was blocked for ${Math.round(blocked)} ms during this test (limit ${EVENT_LOOP_BLOCK_LIMIT_MS} ms): ` +
        'a synchronous call (execSync, spawnSync, a sync file or crypto call on much data) or a busy loop stops every timer and request; ' +
        'make it async, or call allowEventLoopBlock(reason) if the test blocks on purpose',
    );
  }
  if (s.reentries.length && !s.allow.reentry) {
    problems.push(`TRANSACTION_REENTRY was raised ${s.reentries.length} time(s) during this test: ${s.reentries[0].message}\n${s.reentries[0].stack ?? ''}`);
  }
  if (problems.length) throw new Error(problems.join('\n'));
});
