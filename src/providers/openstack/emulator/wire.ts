/**
 * What the emulator's services share on the wire: a parsed request, an answer, the error
 * bodies of each service in the shape the real one uses (Neutron's `NeutronError`, Nova's
 * fault-named key, Keystone's `error`, Glance's plain text), and `limit`/`marker` pagination
 * with the `rel: next` links (Nova, Neutron) or the `next` path (Glance) each service gives.
 *
 * @example
 *   return neutronError(409, 'NetworkInUse', `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`);
 */

/** A request as the services see it: method, path segments after the service's version, query, JSON body and headers. */
export interface EmuRequest {
  method: string;
  /** Path segments after the service prefix and version (`['servers', 'detail']`). */
  segments: string[];
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** What a service answers (status 200 unless said, JSON unless `text`). */
export interface EmuAnswer {
  status?: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

/**
 * Neutron's error body: `{"NeutronError": {"type", "message", "detail"}}`.
 *
 * @example
 *   neutronError(404, 'NetworkNotFound', 'Network n1 could not be found.');
 */
export function neutronError(status: number, type: string, message: string): EmuAnswer {
  return { status, body: { NeutronError: { type, message, detail: '' } } };
}

/**
 * Nova's error body: one key naming the fault (`badRequest`, `itemNotFound`, `conflictingRequest`, `forbidden`).
 *
 * @example
 *   novaError(400, 'badRequest', 'Invalid flavorRef provided.');
 */
export function novaError(status: number, fault: string, message: string): EmuAnswer {
  return { status, body: { [fault]: { code: status, message } } };
}

/**
 * Keystone's error body (also what keystonemiddleware answers a missing or expired token with).
 *
 * @example
 *   keystoneError(401, 'Unauthorized', 'The request you have made requires authentication.');
 */
export function keystoneError(status: number, title: string, message: string): EmuAnswer {
  return { status, body: { error: { code: status, title, message } } };
}

/**
 * Glance's error answers: plain text, status line first.
 *
 * @example
 *   glanceError(404, 'Not Found', 'No image found with ID x');
 */
export function glanceError(status: number, title: string, message: string): EmuAnswer {
  return { status, text: `${status} ${title}\n\n${message}\n\n   `, headers: { 'content-type': 'text/plain; charset=UTF-8' } };
}

/**
 * The 401 every service gives a call without a valid token.
 *
 * @example
 *   if (!valid) return UNAUTHORIZED;
 */
export const UNAUTHORIZED: EmuAnswer = keystoneError(401, 'Unauthorized', 'The request you have made requires authentication.');

/** A page of a list and where the next one starts (undefined when this is the last). */
export interface Page<T> {
  items: T[];
  nextMarker?: string;
  limit?: number;
}

/**
 * One page of `items` by `limit` and `marker` (an unknown marker is `undefined`: each
 * service answers that its own way). Without `limit`, `defaultLimit` items; never more
 * than `maxLimit`.
 *
 * @example
 *   paginate([{ id: 'a' }, { id: 'b' }], new URLSearchParams('limit=1')); // { items: [{ id: 'a' }], nextMarker: 'a', limit: 1 }
 */
export function paginate<T extends { id?: unknown; name?: unknown }>(items: T[], query: URLSearchParams, maxLimit = 1000, key: 'id' | 'name' = 'id', defaultLimit = maxLimit): Page<T> | undefined {
  const asked = Number(query.get('limit') ?? NaN);
  const limit = Number.isInteger(asked) && asked > 0 ? Math.min(asked, maxLimit) : defaultLimit;
  const marker = query.get('marker');
  let start = 0;
  if (marker) {
    const at = items.findIndex((i) => String(i[key]) === marker);
    if (at === -1) return undefined;
    start = at + 1;
  }
  const slice = items.slice(start, start + limit);
  const more = start + limit < items.length;
  return { items: slice, nextMarker: more && slice.length ? String(slice[slice.length - 1][key]) : undefined, limit };
}

/**
 * The query of the next page: the same filters, `limit` and the new `marker`.
 *
 * @example
 *   nextQuery(new URLSearchParams('status=ACTIVE&limit=2'), 'abc', 2); // 'status=ACTIVE&limit=2&marker=abc'
 */
export function nextQuery(query: URLSearchParams, marker: string, limit: number): string {
  const q = new URLSearchParams(query);
  q.set('limit', String(limit));
  q.set('marker', marker);
  return q.toString();
}

/**
 * Whether a resource passes a Neutron-style filter query: each field given (several values:
 * any of them), `tags` (all), `tags-any`, `not-tags`; booleans compared as `true`/`false`.
 *
 * @example
 *   matchesQuery({ 'router:external': true, tags: [] }, new URLSearchParams('router:external=True')); // true
 */
export function matchesQuery(doc: Record<string, unknown>, query: URLSearchParams, ignore: readonly string[] = []): boolean {
  const skip = new Set(['limit', 'marker', 'fields', 'sort_key', 'sort_dir', 'page_reverse', ...ignore]);
  const tags = Array.isArray(doc.tags) ? (doc.tags as string[]) : [];
  for (const key of new Set(query.keys())) {
    if (skip.has(key)) continue;
    const wanted = query.getAll(key);
    if (key === 'tags' || key === 'tags-any' || key === 'not-tags') {
      const list = wanted.flatMap((w) => w.split(','));
      if (key === 'tags' && !list.every((t) => tags.includes(t))) return false;
      if (key === 'tags-any' && !list.some((t) => tags.includes(t))) return false;
      if (key === 'not-tags' && list.every((t) => tags.includes(t))) return false;
      continue;
    }
    const value = doc[key];
    if (value === undefined) continue; // Neutron ignores filters on fields a resource does not have
    const actual = typeof value === 'boolean' ? String(value) : value === null ? 'null' : String(value);
    if (!wanted.some((w) => w.toLowerCase() === actual.toLowerCase() || (w === '' && actual === 'null'))) return false;
  }
  return true;
}

/**
 * An ISO timestamp without milliseconds, as OpenStack writes them.
 *
 * @example
 *   isoNow(); // '2026-12-03T08:20:00Z'
 */
export function isoNow(now = Date.now()): string {
  return new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
}
