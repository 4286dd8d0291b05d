import { isFormworkError, type ErrorCategory } from '../core/errors.js';

/**
 * The `formwork` exit codes: one per group of error categories (core/errors.ts), so a
 * script tells "fix the input" from "not there", "try again later" or "report a bug"
 * without parsing messages. docs/errors.md lists them; main.test.ts keeps the two in sync.
 */
export const EXIT_OK = 0;
/** An operation ran and failed (a script, a provider call). */
export const EXIT_FAILED = 1;
/** The command line or the input is wrong (commander's own errors use it too). */
export const EXIT_USAGE = 2;

export const CATEGORY_EXIT: Record<ErrorCategory, number> = {
  failed: EXIT_FAILED,
  invalid: EXIT_USAGE,
  too_large: EXIT_USAGE,
  not_found: 3,
  conflict: 4,
  precondition: 4,
  unauthenticated: 5,
  forbidden: 5,
  unavailable: 6,
  internal: 7,
};

/** The exit code for an error a command threw; what is not a Formwork error is a defect (internal). */
export function exitCodeOf(e: unknown): number {
  return CATEGORY_EXIT[isFormworkError(e) ? e.category : 'internal'];
}
