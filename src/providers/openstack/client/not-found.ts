/**
 * Reads and deletes where "gone" is an answer, not a failure: a 404 becomes `undefined`
 * (a get) or `false` (a delete), as the provider contract wants deletes of what is gone to
 * succeed.
 *
 * @example
 *   const server = await orUndefined(nova.getServer(id)); // undefined when it is gone
 */
import { FormworkError } from '../../../core/errors.js';

/**
 * The promise's value, or `undefined` when it failed with NOT_FOUND.
 *
 * @example
 *   await orUndefined(Promise.reject(new FormworkError('NOT_FOUND', 'gone'))); // undefined
 */
export async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof FormworkError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * `true` when the delete happened, `false` when there was nothing to delete (NOT_FOUND).
 *
 * @example
 *   await deleted(session.request('network', 'DELETE', `/floatingips/${id}`)); // false when already gone
 */
export async function deleted(p: Promise<unknown>): Promise<boolean> {
  return (await orUndefined(p.then(() => true))) ?? false;
}
