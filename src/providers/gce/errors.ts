/**
 * Google's JSON errors as FormworkErrors, with their retry semantics. Compute Engine answers
 * `{error: {code, message, errors: [{reason, domain, message}], status}}`; an operation that
 * failed late carries `error.errors[].code` (`ZONE_RESOURCE_POOL_EXHAUSTED`, `QUOTA_EXCEEDED`).
 *
 * - 401, 403 (not a rate limit, not a quota) → PROVIDER_AUTH
 * - 429, or reason `rateLimitExceeded`/`userRateLimitExceeded` → PROVIDER_THROTTLED, with
 *   `nextDelayMs` from Retry-After
 * - reason `quotaExceeded`, code `QUOTA_EXCEEDED` → PROVIDER_QUOTA
 * - 409 → CONFLICT; other 4xx → PROVIDER_INVALID (404s keep `details.notFound`)
 * - 5xx → PROVIDER_ERROR, retryable
 *
 * Messages never hold a token: only Google's message and reason.
 *
 * @example
 *   throw googleError(429, { error: { code: 429, message: 'Rate Limit Exceeded', errors: [{ reason: 'rateLimitExceeded' }] } }, '2', 'instances.insert');
 *   // FormworkError PROVIDER_THROTTLED, nextDelayMs 2000
 */
import { FormworkError } from '../../core/errors.js';

/** Google's error body. */
export interface GoogleErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    errors?: Array<{ reason?: string; domain?: string; message?: string; code?: string }>;
  };
}

const THROTTLE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RATE_LIMIT_EXCEEDED']);
const QUOTA_REASONS = new Set(['quotaExceeded', 'QUOTA_EXCEEDED']);

/**
 * The FormworkError for an HTTP error answer of the Compute API.
 *
 * @example
 *   googleError(404, body, undefined, 'instances.get').details?.notFound; // true
 */
export function googleError(status: number, body: unknown, retryAfter: string | null | undefined, what: string): FormworkError {
  const err = (body as GoogleErrorBody | undefined)?.error;
  const reasons = (err?.errors ?? []).map((e) => e.reason ?? e.code ?? '').filter(Boolean);
  const message = `${what}: ${err?.message ?? `HTTP ${status}`}${reasons.length ? ` (${reasons.join(', ')})` : ''}`;
  const details: Record<string, unknown> = { status, reasons, call: what };
  if (status === 429 || reasons.some((r) => THROTTLE_REASONS.has(r))) {
    return new FormworkError('PROVIDER_THROTTLED', message, details, { nextDelayMs: retryAfterMs(retryAfter) });
  }
  if (reasons.some((r) => QUOTA_REASONS.has(r))) return new FormworkError('PROVIDER_QUOTA', `${message}: raise the quota or free resources`, details);
  if (status === 401 || status === 403) return new FormworkError('PROVIDER_AUTH', `${message}: fix the service account key (the credentialsSecret's serviceAccountJson) or its roles`, details);
  if (status === 409) return new FormworkError('CONFLICT', message, details);
  if (status >= 500) return new FormworkError('PROVIDER_ERROR', message, details, { retryable: true });
  return new FormworkError('PROVIDER_INVALID', message, { ...details, ...(status === 404 ? { notFound: true } : {}) });
}

/**
 * The FormworkError for an operation that ended with `error` (a late failure).
 *
 * @example
 *   operationError({ errors: [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: '…' }] }, 'insert of web-1').code; // 'PROVIDER_ERROR'
 */
export function operationError(error: { errors?: Array<{ code?: string; message?: string }> }, what: string): FormworkError {
  const errs = error.errors ?? [];
  const codes = errs.map((e) => e.code ?? '').filter(Boolean);
  const message = `${what} failed: ${errs.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.trim()).join('; ') || 'the operation ended with an error'}`;
  const details = { codes, call: what };
  if (codes.includes('QUOTA_EXCEEDED')) return new FormworkError('PROVIDER_QUOTA', `${message}: raise the quota or free resources`, details);
  if (codes.some((c) => c.includes('RESOURCE_POOL_EXHAUSTED') || c === 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS')) {
    return new FormworkError('PROVIDER_ERROR', `${message}: the zone has no capacity for this machine type now; try again later or set another settings.zone`, details, { retryable: true, nextDelayMs: 30_000 });
  }
  if (codes.some((c) => c === 'RATE_LIMIT_EXCEEDED')) return new FormworkError('PROVIDER_THROTTLED', message, details);
  if (codes.some((c) => c === 'INTERNAL_ERROR' || c === 'BACKEND_ERROR')) return new FormworkError('PROVIDER_ERROR', message, details, { retryable: true });
  return new FormworkError('PROVIDER_INVALID', message, details);
}

/**
 * Whether an error is a 404 of the Compute API (a resource not there).
 *
 * @example
 *   if (isNotFound(e)) return undefined;
 */
export function isNotFound(e: unknown): boolean {
  return e instanceof FormworkError && e.details?.notFound === true;
}

function retryAfterMs(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}
