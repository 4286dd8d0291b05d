/**
 * One HTTP call to an OpenStack API on the built-in `fetch`: JSON in and out, a timeout,
 * and every failure (a refused connection, a non-2xx answer) as a FormworkError with the
 * secrets masked (errors.ts). Headers and bodies are never put in errors: they carry tokens
 * and passwords.
 *
 * @example
 *   const res = await sendRequest({ service: 'network', method: 'GET', url: 'http://127.0.0.1:9696/v2.0/networks' }, { secrets: [] });
 *   (res.body as { networks: unknown[] }).networks;
 */
import { errorFromResponse, networkError, type RequestSummary } from './errors.js';

/** A call to make. `body` is sent as JSON; `service` names the API in errors. */
export interface HttpRequest {
  service: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Statuses outside 2xx to answer with rather than throw (Keystone's `300 Multiple Choices` discovery document). */
  alsoOk?: readonly number[];
}

/** A 2xx answer: its status, headers and body (parsed JSON, or `undefined` when empty or not JSON). */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/** How calls are made: a `fetch` to use instead of the global one (tests), the timeout, the secrets to mask. */
export interface HttpOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
  secrets: readonly string[];
}

/**
 * The default per-call timeout: OpenStack APIs answer in seconds, a server create in well under a minute.
 *
 * @example
 *   await sendRequest(req, { secrets, timeoutMs: DEFAULT_TIMEOUT_MS * 2 });
 */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The request's path and query for errors (`/v2.0/ports?device_id=…`), never its host:
 * error messages are the same whichever endpoint answered.
 *
 * @example
 *   summarize({ service: 'compute', method: 'GET', url: 'http://x:8774/v2.1/servers' }).path; // '/v2.1/servers'
 */
export function summarize(req: HttpRequest): RequestSummary {
  let path = req.url;
  try {
    const u = new URL(req.url);
    path = u.pathname + u.search;
  } catch {
    /* not a URL: keep it as given */
  }
  return { service: req.service, method: req.method, path };
}

/**
 * Sends one request; resolves with a 2xx answer, rejects with a FormworkError for any other
 * status (errors.ts says which code) or no answer (a retryable PROVIDER_ERROR).
 *
 * @example
 *   await sendRequest({ service: 'compute', method: 'DELETE', url }, { secrets: [token] }).catch((e) => e.code); // 'NOT_FOUND' when gone
 */
export async function sendRequest(req: HttpRequest, opts: HttpOptions): Promise<HttpResponse> {
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  if (req.body !== undefined) headers['content-type'] ??= 'application/json';
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(req.url, {
      method: req.method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      redirect: 'follow',
    });
  } catch (e) {
    throw networkError(e, summarize(req), opts.secrets);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw networkError(e, summarize(req), opts.secrets);
  }
  if ((res.status < 200 || res.status > 299) && !req.alsoOk?.includes(res.status)) throw errorFromResponse({ status: res.status, headers: res.headers, text }, summarize(req), opts.secrets);
  let body: unknown;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined; // a 2xx without JSON (a 204, Glance's empty answers): nothing to read
    }
  }
  return { status: res.status, headers: res.headers, body };
}
