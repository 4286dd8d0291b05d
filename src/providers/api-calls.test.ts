import { describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { CallPolicy, callPolicyFor, DEFAULT_CALL_POLICY, forgetCallPolicies } from './api-calls.js';

const fast = { ...DEFAULT_CALL_POLICY, baseDelayMs: 1, maxDelayMs: 5, requestsPerSecond: 1000 };
const throttled = () => new FormworkError('PROVIDER_THROTTLED', 'slow down');

describe('CallPolicy', () => {
  it('tries a throttled call again until it answers, and counts the retries by call and reason', async () => {
    const calls = new CallPolicy(fast);
    let n = 0;
    const v = await calls.run('Describe', async () => {
      if (++n < 3) throw throttled();
      return 'ok';
    });
    expect([v, n, calls.retries]).toEqual(['ok', 3, { 'Describe PROVIDER_THROTTLED': 2 }]);
  });

  it('gives up after maxAttempts with the last error, and never retries a definitive refusal', async () => {
    const calls = new CallPolicy({ ...fast, maxAttempts: 3 });
    let n = 0;
    await expect(calls.run('x', async () => { n++; throw throttled(); })).rejects.toThrow('slow down');
    expect(n).toBe(3);
    n = 0;
    await expect(calls.run('x', async () => { n++; throw new FormworkError('PROVIDER_AUTH', 'bad key'); })).rejects.toThrow('bad key');
    expect(n).toBe(1);
  });

  it('repeats a call that is not idempotent only after a throttle, never after a 5xx that may have done it', async () => {
    const calls = new CallPolicy(fast);
    let n = 0;
    await expect(calls.run('create', async () => { n++; throw new FormworkError('PROVIDER_ERROR', '503'); }, { idempotent: false })).rejects.toThrow('503');
    expect(n).toBe(1);
    n = 0;
    await calls.run('create', async () => { if (++n < 2) throw throttled(); }, { idempotent: false });
    expect(n).toBe(2);
  });

  it("waits what Retry-After asked for, else a jittered backoff under the cap", () => {
    const calls = new CallPolicy({ ...DEFAULT_CALL_POLICY, baseDelayMs: 100, maxDelayMs: 1000 }, () => 0.999);
    expect(calls.delayFor(new FormworkError('PROVIDER_THROTTLED', 't', undefined, { nextDelayMs: 7000 }), 1)).toBe(7000);
    expect(calls.delayFor(throttled(), 1)).toBe(99);
    expect(calls.delayFor(throttled(), 3)).toBe(399);
    expect(calls.delayFor(throttled(), 10)).toBe(999);
    expect(new CallPolicy(DEFAULT_CALL_POLICY, () => 0).delayFor(throttled(), 5)).toBe(0);
  });

  it('keeps at most `concurrency` calls in flight and spaces their starts by the rate', async () => {
    const calls = new CallPolicy({ ...fast, concurrency: 2, requestsPerSecond: 1 });
    let inFlight = 0;
    let most = 0;
    const starts: number[] = [];
    await Promise.all(
      Array.from({ length: 2 }, () =>
        calls.run('x', async () => {
          starts.push(Date.now());
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 60));
          inFlight--;
        }),
      ),
    );
    expect(most).toBe(1); // one a second: the second call waits out the first's second
    expect(starts[1] - starts[0]).toBeGreaterThanOrEqual(990);
  });

  it('is one per provider, made again when its rate settings change', () => {
    forgetCallPolicies();
    const a = callPolicyFor({ providerName: 'p', settings: {} });
    expect(callPolicyFor({ providerName: 'p', settings: {} })).toBe(a);
    const b = callPolicyFor({ providerName: 'p', settings: { rateLimit: { requestsPerSecond: 2, concurrency: 1 } } });
    expect(b).not.toBe(a);
    expect([b.options.requestsPerSecond, b.options.concurrency]).toEqual([2, 1]);
  });
});

describe('CallPolicy limits', () => {
  it('lets a second of calls start at once, then holds to the rate; never more than `concurrency` in flight', async () => {
    const calls = new CallPolicy({ ...fast, concurrency: 3, requestsPerSecond: 20 });
    let inFlight = 0;
    let most = 0;
    const starts: number[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 30 }, () =>
        calls.run('x', async () => {
          starts.push(Date.now() - t0);
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight--;
        }),
      ),
    );
    expect(most).toBe(3);
    expect(starts.filter((t) => t < 200).length).toBeGreaterThanOrEqual(15); // the burst
    expect(starts.at(-1)!).toBeGreaterThanOrEqual(450); // 10 beyond the burst at 20 a second
  });
});
