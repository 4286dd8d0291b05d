import { describe, expect, it } from 'vitest';
import { Faults, NO_FAULTS, parseFaults } from './faults.js';

describe('parseFaults', () => {
  it('reads every fault, probabilities as fractions or percents, durations in s or ms', () => {
    expect(parseFaults('throttle=20%, error=0.05,lost=0.01,slow=0.1@500ms,never-boot=2,retry-after=3,seed=9')).toEqual({
      throttle: 0.2, error: 0.05, lost: 0.01, slow: 0.1, slowMs: 500, neverBoot: 2, unreachable: 0, retryAfterSeconds: 3, seed: 9,
    });
    expect(parseFaults(undefined)).toEqual(NO_FAULTS);
    expect(parseFaults('slow=1').slowMs).toBe(2000);
  });

  it('refuses what it cannot read, naming the fault and the form it takes', () => {
    expect(() => parseFaults('throttle=2')).toThrow(/throttle=2: a probability is from 0 to 1/);
    expect(() => parseFaults('explode=1')).toThrow(/unknown fault "explode".*throttle=P/);
    expect(() => parseFaults('slow=0.1@soon')).toThrow(/not a duration/);
    expect(() => parseFaults('throttle')).toThrow(/comma-separated list/);
    expect(() => parseFaults('throttle=0.6,error=0.6')).toThrow(/more than 1/);
  });
});

describe('Faults', () => {
  it('injects each fault at about its rate, repeatably with a seed, and counts them', () => {
    const spec = parseFaults('throttle=0.2,error=0.1,seed=42');
    const a = new Faults(spec);
    const seen = Array.from({ length: 2000 }, () => a.next());
    expect(seen.filter((f) => f === 'throttle').length / 2000).toBeCloseTo(0.2, 1);
    expect(seen.filter((f) => f === 'error').length / 2000).toBeCloseTo(0.1, 1);
    expect(seen.filter((f) => f === 'slow' || f === 'lost')).toEqual([]);
    expect(a.injected.throttle).toBe(seen.filter((f) => f === 'throttle').length);
    const b = new Faults(spec);
    expect(Array.from({ length: 2000 }, () => b.next())).toEqual(seen);
  });

  it('keeps the first N instances from booting, no more', () => {
    const f = new Faults(parseFaults('never-boot=2'));
    expect([f.takeNeverBoot(), f.takeNeverBoot(), f.takeNeverBoot()]).toEqual([true, true, false]);
    expect(new Faults().next()).toBeUndefined();
  });
});
