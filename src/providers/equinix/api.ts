/**
 * The Equinix Metal (Packet) API as the driver calls it: JSON over HTTPS at
 * `settings.baseUrl` (default https://api.equinix.com/metal/v1), the Secret's `apiToken` in
 * `X-Auth-Token`, every call under the provider's call policy (api-calls.ts), and the API's
 * `{errors: ["…"]}` answers mapped to Formwork's codes: 401/403 → PROVIDER_AUTH, 404 →
 * `undefined` for a read (the caller decides what a missing thing means), 422 →
 * PROVIDER_INVALID (PROVIDER_QUOTA when it speaks of a limit), 429 → PROVIDER_THROTTLED with
 * Retry-After, 5xx and dropped connections → PROVIDER_ERROR (retryable). The token never
 * appears in an error or a log line.
 *
 * @example
 *   const api = metalApi(ctx);
 *   const project = await api.get<MetalProject>(`/projects/${id}`); // undefined on 404
 *   const devices = await api.list<MetalDevice>(`/projects/${id}/devices`, 'devices');
 */
import { FormworkError } from '../../core/errors.js';
import { callPolicyFor } from '../api-calls.js';
import type { ProviderCheckContext } from '../provider.js';

/** The public API's base URL. */
export const DEFAULT_BASE_URL = 'https://api.equinix.com/metal/v1';

/** Devices asked for per page (Metal's maximum is 1000; a small page keeps answers quick). */
export const PAGE_SIZE = { value: 100 };

/** One call's options: the call policy's name for it and whether repeating it is harmless. */
export interface MetalCallOptions {
  idempotent?: boolean;
}

/**
 * How a read or delete of one device takes a 403: Metal answers it for a device whose build
 * failed and which was moved away (terraform-provider-equinix#233, #788), so there it means
 * gone; elsewhere (the project) it stays PROVIDER_AUTH.
 */
export interface MetalGoneOptions {
  forbiddenMeansGone?: boolean;
}

/** A thin client of the Metal API for one provider (see the file's comment). */
export interface MetalApi {
  readonly baseUrl: string;
  /** GET; undefined when the API answers 404 (or 403 with `forbiddenMeansGone`). */
  get<T>(path: string, what?: string, opts?: MetalGoneOptions): Promise<T | undefined>;
  /** Every item of a paged collection (`page`/`per_page`, following `meta.next` / `meta.last_page`). */
  list<T>(path: string, key: string, what?: string): Promise<T[]>;
  post<T>(path: string, body: unknown, what: string, opts?: MetalCallOptions): Promise<T>;
  /** DELETE; false when it was gone already (404, or 403 with `forbiddenMeansGone`). */
  delete(path: string, what: string, opts?: MetalGoneOptions): Promise<boolean>;
}

/**
 * The base URL of a provider, checked: a malformed one is refused naming `settings.baseUrl`.
 *
 * @example
 *   baseUrlOf({ baseUrl: 'http://127.0.0.1:8080/metal/v1/' }); // 'http://127.0.0.1:8080/metal/v1'
 */
export function baseUrlOf(settings: Record<string, unknown>): string {
  const raw = typeof settings.baseUrl === 'string' ? settings.baseUrl : DEFAULT_BASE_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FormworkError('PROVIDER_INVALID', `settings.baseUrl "${raw}" is not a URL: set it to the Metal API's base (default ${DEFAULT_BASE_URL})`, { setting: 'baseUrl' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FormworkError('PROVIDER_INVALID', `settings.baseUrl "${raw}" is not an http(s) URL: set it to the Metal API's base (default ${DEFAULT_BASE_URL})`, { setting: 'baseUrl' });
  return url.toString().replace(/\/+$/, '');
}

/** The error text of a Metal answer: its `errors` joined (or `error`), else the status. */
function messageOf(body: unknown, status: number): string {
  const b = body as { errors?: unknown; error?: unknown } | undefined;
  if (Array.isArray(b?.errors) && b.errors.length) return b.errors.map(String).join('; ');
  if (typeof b?.error === 'string') return b.error;
  return `HTTP ${status}`;
}

/**
 * The FormworkError for a refused call (never 404: reads turn it into undefined).
 *
 * @example
 *   metalError(429, { errors: ['Too many requests'] }, '2', 'provider m1: POST /projects/p/devices'); // PROVIDER_THROTTLED, nextDelayMs 2000
 */
export function metalError(status: number, body: unknown, retryAfter: string | null, what: string): FormworkError {
  const msg = `${what}: ${messageOf(body, status)}`;
  if (status === 401 || status === 403) return new FormworkError('PROVIDER_AUTH', `${msg} (HTTP ${status}): fix the apiToken in the provider's credentialsSecret`, { status });
  if (status === 429) {
    const seconds = Number(retryAfter);
    return new FormworkError('PROVIDER_THROTTLED', `${msg} (HTTP 429)`, { status }, { retryable: true, ...(Number.isFinite(seconds) && seconds >= 0 ? { nextDelayMs: seconds * 1000 } : {}) });
  }
  if (status >= 500) return new FormworkError('PROVIDER_ERROR', `${msg} (HTTP ${status})`, { status }, { retryable: true });
  if (/quota|limit reached|exceed|capacity/i.test(msg)) return new FormworkError('PROVIDER_QUOTA', `${msg} (HTTP ${status})`, { status });
  return new FormworkError('PROVIDER_INVALID', `${msg} (HTTP ${status})`, { status });
}

/**
 * The Metal API of a provider.
 *
 * @example
 *   await metalApi(ctx).post('/projects/p/ssh-keys', { label, key }, 'CreateSSHKey');
 */
export function metalApi(ctx: ProviderCheckContext): MetalApi {
  const baseUrl = baseUrlOf(ctx.settings);
  const token = ctx.credentials?.apiToken;
  if (!token) throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: no apiToken: put the Metal API token under the key apiToken of the provider's credentialsSecret`, { provider: ctx.providerName });
  const calls = callPolicyFor(ctx);

  const once = async (method: string, path: string, body: unknown, gone: MetalGoneOptions = {}): Promise<{ status: number; json: unknown }> => {
    const what = `provider ${ctx.providerName}: ${method} ${path.split('?')[0]}`;
    let res: Response;
    try {
      res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { 'X-Auth-Token': token, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: ctx.signal,
      });
    } catch (e) {
      throw new FormworkError('PROVIDER_ERROR', `${what}: ${baseUrl} did not answer (${e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e)}); check settings.baseUrl`, { baseUrl }, { retryable: true, cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      if (res.ok) throw new FormworkError('PROVIDER_ERROR', `${what}: the answer is not JSON (is settings.baseUrl ${baseUrl} the Metal API?)`, { baseUrl }, { retryable: true });
    }
    if (res.status === 404 || (res.status === 403 && gone.forbiddenMeansGone)) return { status: 404, json };
    if (!res.ok) throw metalError(res.status, json, res.headers.get('retry-after'), what);
    return { status: res.status, json };
  };

  const api: MetalApi = {
    baseUrl,
    async get<T>(path: string, what = `GET ${path}`, opts: MetalGoneOptions = {}) {
      const r = await calls.run(what, () => once('GET', path, undefined, opts), { signal: ctx.signal });
      return r.status === 404 ? undefined : (r.json as T);
    },
    async list<T>(path: string, key: string, what = `LIST ${path}`) {
      const out: T[] = [];
      for (let page = 1; page < 10_000; page++) {
        const sep = path.includes('?') ? '&' : '?';
        const body = await api.get<Record<string, unknown>>(`${path}${sep}page=${page}&per_page=${PAGE_SIZE.value}`, what);
        if (!body) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: ${path.split('?')[0]} is not found (HTTP 404)`, { path });
        const items = Array.isArray(body[key]) ? (body[key] as T[]) : [];
        out.push(...items);
        const meta = body.meta as { next?: unknown; last_page?: unknown; current_page?: unknown } | undefined;
        const last = typeof meta?.last_page === 'number' ? meta.last_page : undefined;
        const more = meta?.next ? true : last !== undefined ? page < last : false;
        if (!more || items.length === 0) break;
      }
      return out;
    },
    async post<T>(path: string, body: unknown, what: string, opts: MetalCallOptions = {}) {
      const r = await calls.run(what, () => once('POST', path, body), { idempotent: opts.idempotent ?? true, signal: ctx.signal });
      if (r.status === 404) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: POST ${path}: not found (HTTP 404): ${messageOf(r.json, 404)}`, { path });
      return r.json as T;
    },
    async delete(path: string, what: string, opts: MetalGoneOptions = {}) {
      const r = await calls.run(what, () => once('DELETE', path, undefined, opts), { signal: ctx.signal });
      return r.status !== 404;
    },
  };
  return api;
}

