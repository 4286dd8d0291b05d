import { FormworkError } from './errors.js';

/**
 * The one way Formwork reads and writes a length of time typed by a person (`--timeout`,
 * `--wait`, `--expires`): whole amounts with units — s, m, h, d, w — alone or combined
 * (`1h30m`), or a plain whole number, which means seconds. Help texts quote DURATION_HINT
 * and the error repeats it, so what an option promises and what it refuses agree.
 *
 * @example
 *   parseDuration('1h30m'); // 5400 (seconds)
 *   parseDuration('90');    // 90
 *   formatDuration(5400);   // "1h30m"
 */

const UNIT_SECONDS = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 } as const;

/** For help texts: what a duration may look like. */
export const DURATION_HINT = 'e.g. 30s, 5m, 1h30m, 7d; a plain number is seconds';

/** Seconds in `text`; a VALIDATION error saying what a duration looks like when it is not one (or is zero). */
export function parseDuration(text: string): number {
  const s = text.trim().toLowerCase();
  let total = 0;
  if (/^\d+$/.test(s)) total = Number(s);
  else if (/^(\d+[smhdw])+$/.test(s)) {
    for (const m of s.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  }
  if (total > 0 && Number.isSafeInteger(total)) return total;
  throw new FormworkError('VALIDATION', `"${text}" is not a duration: ${DURATION_HINT} (more than zero).`, { value: text });
}

/**
 * `seconds` the way parseDuration reads it back (`1h30m`, `45s`); a fraction of a second,
 * which only the program itself makes (a default, a test's short timeout), in milliseconds (`200ms`).
 */
export function formatDuration(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds <= 0) return `${Math.round(seconds * 1000)}ms`;
  let rest = seconds;
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
