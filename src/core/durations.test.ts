import { describe, expect, it } from 'vitest';
import { FormworkError } from './errors.js';
import { DURATION_HINT, formatDuration, parseDuration } from './durations.js';

describe('parseDuration', () => {
  it('reads units, combinations and plain numbers as seconds', () => {
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration('7d')).toBe(604800);
    expect(parseDuration('2w')).toBe(1209600);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration(' 45S ')).toBe(45);
  });

  it('refuses nonsense, zero, negatives, fractions and overflow with a VALIDATION error quoting the accepted forms', () => {
    for (const bad of ['', 'h', '1x', '-1h', '0', '0m', '1.5h', 'soon', '30 s', '9'.repeat(20)]) {
      let err: unknown;
      try {
        parseDuration(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(FormworkError);
      expect((err as FormworkError).code).toBe('VALIDATION');
      expect((err as FormworkError).message).toBe(`"${bad}" is not a duration: ${DURATION_HINT} (more than zero).`);
    }
  });

  it('the forms the hint promises are the forms it reads', () => {
    for (const example of DURATION_HINT.match(/\b\d+[a-z]*\b/g)!) expect(parseDuration(example)).toBeGreaterThan(0);
  });
});

describe('formatDuration', () => {
  it('writes what parseDuration reads back', () => {
    for (const s of [1, 45, 60, 90, 3600, 5400, 86400 + 61, 604800 * 3 + 7]) expect(parseDuration(formatDuration(s))).toBe(s);
    expect(formatDuration(5400)).toBe('1h30m');
    expect(formatDuration(1200)).toBe('20m');
  });
  it('shows a fraction of a second in milliseconds', () => {
    expect(formatDuration(0.2)).toBe('200ms');
  });
});
