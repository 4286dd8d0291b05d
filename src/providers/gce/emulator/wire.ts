/**
 * Compute Engine's wire format, as the emulator answers it: Google's JSON error bodies,
 * operations (zone and global) in the shape of the recorded responses
 * (../shared/fixtures/libcloud/gce/operations_*.json), self links, list pages with
 * `nextPageToken`, and the list `filter` expressions the driver and gcloud send
 * (the documented `(labels.k = "v") (labels.k2 = "v2")`, and `labels.k=v AND labels.k2=v2`, `name = x`).
 *
 * @example
 *   googleErrorAnswer(404, 'notFound', "The resource 'projects/p/zones/z/instances/x' was not found");
 *   page(items, query, 'compute#instanceList', selfLink);
 */
import { randomBytes } from 'node:crypto';

/** An answer of the emulator. */
export interface GceAnswer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS', 412: 'FAILED_PRECONDITION', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

/**
 * Google's JSON error answer.
 *
 * @example
 *   googleErrorAnswer(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': '1' });
 */
export function googleErrorAnswer(code: number, reason: string, message: string, headers?: Record<string, string>): GceAnswer {
  return { status: code, headers, body: { error: { code, message, errors: [{ message, domain: code === 429 ? 'usageLimits' : 'global', reason }], status: STATUS_NAMES[code] ?? 'UNKNOWN' } } };
}

/**
 * The 404 of a resource path.
 *
 * @example
 *   notFound('projects/p/zones/z/instances/x');
 */
export function notFound(path: string): GceAnswer {
  return googleErrorAnswer(404, 'notFound', `The resource '${path}' was not found`);
}

/** The 401 of a call without a valid bearer token. */
export const UNAUTHENTICATED: GceAnswer = googleErrorAnswer(401, 'required', 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.');

/**
 * A decimal id as Compute writes them (a string of up to 19 digits).
 *
 * @example
 *   numericId(); // '4006034190819017667'
 */
export function numericId(): string {
  return (BigInt(`0x${randomBytes(8).toString('hex')}`) % 9_000_000_000_000_000_000n + 1_000_000_000_000_000_000n).toString();
}

/**
 * A timestamp as Compute writes them (RFC 3339 with a zone offset).
 *
 * @example
 *   timestamp(); // '2026-12-03T10:45:23.351-00:00'
 */
export function timestamp(at = Date.now()): string {
  return new Date(at).toISOString().replace('Z', '-00:00');
}

/** An operation as the emulator keeps it. */
export interface GceOperationRecord {
  kind: 'compute#operation';
  id: string;
  name: string;
  operationType: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress: number;
  targetLink: string;
  targetId?: string;
  user: string;
  insertTime: string;
  startTime: string;
  endTime?: string;
  selfLink: string;
  zone?: string;
  error?: { errors: Array<{ code: string; message: string; location?: string }> };
}

/**
 * A new operation (RUNNING) on `targetLink`, zonal when `zoneLink` is given.
 *
 * @example
 *   newOperation(base, 'insert', target, 'sa@p.iam.gserviceaccount.com', zoneLink);
 */
export function newOperation(projectLink: string, operationType: string, targetLink: string, user: string, zoneLink?: string): GceOperationRecord {
  const name = `operation-${Date.now()}-${randomBytes(6).toString('hex')}-${randomBytes(4).toString('hex')}`;
  const now = timestamp();
  return {
    kind: 'compute#operation',
    id: numericId(),
    name,
    operationType,
    status: 'RUNNING',
    progress: 0,
    targetLink,
    user,
    insertTime: now,
    startTime: now,
    selfLink: zoneLink ? `${zoneLink}/operations/${name}` : `${projectLink}/global/operations/${name}`,
    ...(zoneLink ? { zone: zoneLink } : {}),
  };
}

/**
 * One page of a list: `maxResults` items from `pageToken` on, with `nextPageToken` when more remain.
 *
 * @example
 *   page(items, new URLSearchParams('maxResults=2'), 'compute#instanceList', selfLink);
 */
export function page<T>(items: T[], query: URLSearchParams, kind: string, selfLink: string, id = selfLink.replace(/^.*?\/projects\//, 'projects/')): Record<string, unknown> {
  const max = Math.min(Math.max(Number(query.get('maxResults') ?? 500) || 500, 1), 500);
  const from = Number(query.get('pageToken') ? Buffer.from(query.get('pageToken')!, 'base64url').toString() : 0) || 0;
  const slice = items.slice(from, from + max);
  return { kind, id, selfLink, items: slice, ...(from + max < items.length ? { nextPageToken: Buffer.from(String(from + max)).toString('base64url') } : {}) };
}

/** One term of a list filter. */
interface FilterTerm {
  path: string[];
  negate: boolean;
  value: string;
}

/**
 * The terms of a list filter (`labels.a=b AND (name != "c")`); undefined when it cannot be read.
 *
 * @example
 *   parseFilter('labels.formwork-provider=gce1'); // [{ path: ['labels', 'formwork-provider'], negate: false, value: 'gce1' }]
 */
export function parseFilter(filter: string | null): FilterTerm[] | undefined {
  if (!filter?.trim()) return [];
  const terms: FilterTerm[] = [];
  const re = /\(?\s*([A-Za-z][\w.-]*)\s*(=|!=|\beq\b|\bne\b)\s*"?([^"\s)]*)"?\s*\)?/g;
  const rest = filter.replace(re, (_m, path: string, op: string, value: string) => {
    terms.push({ path: path.split('.'), negate: op === '!=' || op === 'ne', value });
    return ' ';
  });
  if (rest.replace(/\bAND\b/gi, ' ').trim()) return undefined;
  return terms;
}

/**
 * Whether a resource matches every term.
 *
 * @example
 *   matches({ labels: { a: 'b' } }, parseFilter('labels.a=b')!); // true
 */
export function matches(resource: unknown, terms: FilterTerm[]): boolean {
  return terms.every((t) => {
    let v: unknown = resource;
    for (const p of t.path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    const eq = typeof v === 'string' || typeof v === 'number' ? String(v) === t.value : false;
    return t.negate ? !eq : eq;
  });
}
