import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EventLoopWatchdog, runQueueWaitMs } from './event-loop.js';
import { allowEventLoopBlock } from './setup.js';

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin: the event loop is blocked
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('EventLoopWatchdog', () => {
  it('sees a 1.2 s busy loop as a block of about that long', () => {
    allowEventLoopBlock('measures a busy loop on purpose');
    const w = new EventLoopWatchdog({ waitClock: () => 0 });
    w.start();
    busy(1200);
    const seen = w.worstBlockMs();
    w.stop();
    expect(seen).toBeGreaterThan(1000); // late by the block less the interval it was due in
    expect(seen).toBeLessThan(1400);
  });

  it('does not count async waits, however long', async () => {
    const w = new EventLoopWatchdog();
    w.start();
    await sleep(1500);
    const seen = w.worstBlockMs();
    w.stop();
    expect(seen).toBeLessThan(500);
  });

  it('subtracts the time the process waited for a CPU', () => {
    allowEventLoopBlock('simulates a starved process with a busy loop');
    let wait = 0;
    const w = new EventLoopWatchdog({ waitClock: () => wait });
    w.start();
    busy(1200);
    wait = 1150; // the kernel says the process was runnable but not running for most of it
    const seen = w.worstBlockMs();
    w.stop();
    expect(seen).toBeLessThan(200);
  });

  it('reads a run-queue wait clock that moves forward', async () => {
    const a = runQueueWaitMs();
    await sleep(20);
    expect(runQueueWaitMs()).toBeGreaterThanOrEqual(a);
    expect(a).toBeGreaterThan(0); // Linux with schedstat: the project's only platform
  });
});

describe('the test harness', () => {
  it('fails a test that blocked the loop for over a second, and only that one', async () => {
    const config = fileURLToPath(new URL('./testdata/harness.config.ts', import.meta.url));
    const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
    const run = await promisify(execFile)(process.execPath, [vitest, 'run', '--config', config, '--reporter', 'json'], { maxBuffer: 1 << 24 }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as {
      testResults: { assertionResults: { title: string; status: string; failureMessages: string[] }[] }[];
    };
    const results = Object.fromEntries(report.testResults[0].assertionResults.map((a) => [a.title, a]));
    expect(results['blocks the loop for 1.2 s'].status).toBe('failed');
    expect(results['blocks the loop for 1.2 s'].failureMessages.join('')).toMatch(/event loop was blocked for \d+ ms/);
    for (const ok of ['waits 1.5 s asynchronously', 'blocks on purpose, allowed']) {
      expect(results[ok].status, results[ok].failureMessages.join('\n')).toBe('passed');
    }
  }, 120_000);
});
