import { it } from 'vitest';
import { allowEventLoopBlock } from '../setup.js';

// Run by event-loop.test.ts in a vitest of its own (harness.config.ts): the harness must fail
// the first test, and pass the other two.
// Spins for ms of this thread's CPU time, not wall time: on busy shared cores the harness
// discounts time spent waiting for a CPU, and so must the fixture.
function busy(ms: number): void {
  const cpu = () => {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  };
  const end = cpu() + ms;
  while (cpu() < end) {
    // spin: the event loop is blocked
  }
}

it('blocks the loop for 1.2 s', () => {
  busy(1200);
});

it('waits 1.5 s asynchronously', async () => {
  await new Promise((r) => setTimeout(r, 1500));
});

it('blocks on purpose, allowed', () => {
  allowEventLoopBlock('the fixture checks the allowance');
  busy(1200);
});
