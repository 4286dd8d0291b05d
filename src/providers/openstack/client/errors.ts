/**
 * OpenStack's error bodies turned into FormworkErrors with registered codes.
 *
 * Every service says "what went wrong" in its own shape: Neutron
 * `{"NeutronError": {"type", "message", "detail"}}`, Nova `{"badRequest": {"message", "code"}}`
 * (the key names the fault: `itemNotFound`, `forbidden`, `overLimit`, `conflictingRequest`…),
 * Keystone `{"error": {"code", "title", "message"}}`, Placement and newer APIs
 * `{"errors": [{"title", "detail"}]}`, Glance often plain text. The cloud's message and type
 * are kept in `details` (`cloudMessage`, `cloudType`) and in the message, with every known
 * secret masked first.
 *
 * @example
 *   throw errorFromResponse({ status: 404, headers: new Headers(), text: '{"itemNotFound": {"message": "Flavor 7 could not be found.", "code": 404}}' },
 *     { service: 'compute', method: 'GET', path: '/flavors/7' }, []);
 *   // FormworkError NOT_FOUND: compute GET /flavors/7: 404 itemNotFound: Flavor 7 could not be found.
 */
import { FormworkError, type ErrorCode } from '../../../core/errors.js';

/** What a request was, for the message and `details` of its error (never its body or headers). */
export interface RequestSummary {
  service: string;
  method: string;
  path: string;
}

/** The fault an error body names: its type (`itemNotFound`, `OverQuota`…) and message, when it has them. */
export interface CloudFault {
  type?: string;
  message?: string;
}

/**
 * Reads the fault out of any of OpenStack's error bodies (JSON or text).
 *
 * @example
 *   parseFault('{"NeutronError": {"type": "NetworkNotFound", "message": "Network x could not be found.", "detail": ""}}');
 *   // { type: 'NetworkNotFound', message: 'Network x could not be found.' }
 */
export function parseFault(text: string): CloudFault {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
    return plain ? { message: plain.slice(0, 500) } : {};
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return {};
  const obj = body as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  if (Array.isArray(obj.errors) && obj.errors[0] && typeof obj.errors[0] === 'object') {
    const e = obj.errors[0] as Record<string, unknown>;
    return { type: str(e.code) ?? str(e.title), message: str(e.detail) ?? str(e.title) };
  }
  if (obj.NeutronError && typeof obj.NeutronError === 'object') {
    const e = obj.NeutronError as Record<string, unknown>;
    return { type: str(e.type), message: str(e.message) };
  }
  if (obj.error && typeof obj.error === 'object') {
    const e = obj.error as Record<string, unknown>;
    return { type: str(e.title), message: str(e.message) };
  }
  if (str(obj.message)) return { type: str(obj.title) ?? str(obj.type), message: str(obj.message) };
  // Nova's shape: one key naming the fault, its value holding the message.
  const keys = Object.keys(obj);
  if (keys.length === 1 && obj[keys[0]] && typeof obj[keys[0]] === 'object') {
    const e = obj[keys[0]] as Record<string, unknown>;
    return { type: keys[0], message: str(e.message) ?? str(e.explanation) };
  }
  return {};
}

/**
 * `text` with every secret replaced by `***` (secrets shorter than 4 characters are left:
 * masking them would garble the text and reveal nothing).
 *
 * @example
 *   redact('token abc123 refused', ['abc123']); // 'token *** refused'
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

const QUOTA = /overlimit|overquota|quota ?exceeded|quotaerror|exceeds.*quota|quota.*exceeded/i;

/**
 * How many milliseconds a `Retry-After` header asks to wait (seconds or an HTTP date).
 *
 * @example
 *   retryAfterMs('7'); // 7000
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The code a failed response gets, from its status and fault. */
function codeFor(status: number, fault: CloudFault): { code: ErrorCode; retryable?: boolean } {
  const quota = QUOTA.test(fault.type ?? '') || QUOTA.test(fault.message ?? '');
  if (status === 429) return { code: 'PROVIDER_THROTTLED' };
  if (status >= 500) return { code: 'PROVIDER_ERROR', retryable: true };
  if (quota && status >= 400) return { code: 'PROVIDER_QUOTA' };
  if (status === 401 || status === 403) return { code: 'PROVIDER_AUTH' };
  if (status === 404) return { code: 'NOT_FOUND' };
  // A conflict with the resource's current state (a server mid-task, a network still in use)
  // passes once that state does.
  if (status === 409) return { code: 'CONFLICT', retryable: true };
  return { code: 'PROVIDER_INVALID' };
}

/**
 * The FormworkError for a response that is not 2xx. The message names the call, the
 * status, the cloud's fault type and message; `details` keeps them apart, with the
 * request id the cloud logged (`x-openstack-request-id`), for its operators.
 *
 * @example
 *   errorFromResponse({ status: 409, headers: new Headers(), text: '{"NeutronError":{"type":"OverQuota","message":"Quota exceeded for resources: [\'floatingip\']."}}' },
 *     { service: 'network', method: 'POST', path: '/v2.0/floatingips' }, []).code; // 'PROVIDER_QUOTA'
 */
export function errorFromResponse(
  res: { status: number; headers: Headers; text: string },
  req: RequestSummary,
  secrets: readonly string[],
): FormworkError {
  const fault = parseFault(res.text);
  const cloudMessage = fault.message === undefined ? undefined : redact(fault.message, secrets);
  const { code, retryable } = codeFor(res.status, fault);
  const nextDelayMs = retryAfterMs(res.headers.get('retry-after'));
  const requestId = res.headers.get('x-openstack-request-id') ?? res.headers.get('x-compute-request-id') ?? undefined;
  const what = [fault.type, cloudMessage].filter(Boolean).join(': ');
  const message = `OpenStack ${req.service} ${req.method} ${req.path}: ${res.status}${what ? ` ${what}` : ''}`;
  const details: Record<string, unknown> = { service: req.service, method: req.method, path: req.path, status: res.status };
  if (fault.type) details.cloudType = fault.type;
  if (cloudMessage) details.cloudMessage = cloudMessage;
  if (requestId) details.requestId = requestId;
  return new FormworkError(code, message, details, { retryable, nextDelayMs });
}

/**
 * The FormworkError for a call that got no answer (refused, reset, DNS, timeout): a
 * retryable PROVIDER_ERROR keeping the original as its cause.
 *
 * @example
 *   networkError(new TypeError('fetch failed'), { service: 'compute', method: 'GET', path: '/servers' }, []);
 */
export function networkError(e: unknown, req: RequestSummary, secrets: readonly string[]): FormworkError {
  const cause = e instanceof Error && e.cause instanceof Error ? `${e.message} (${e.cause.message})` : e instanceof Error ? e.message : String(e);
  const reason = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError') ? 'no answer in time' : redact(cause, secrets);
  return new FormworkError('PROVIDER_ERROR', `OpenStack ${req.service} ${req.method} ${req.path}: ${reason}`, { service: req.service, method: req.method, path: req.path }, { cause: e, retryable: true });
}
