/**
 * The Compute Engine REST API on fetch: every call through the provider's call policy
 * (../api-calls.ts: rate, concurrency, retries honouring Retry-After), with a bearer token
 * (auth.ts) and Google's errors mapped (errors.ts); lists paged with `pageToken` /
 * `nextPageToken`; operations (zone and global) polled until DONE, a late error becoming
 * a FormworkError with its reason.
 *
 * @example
 *   const api = gceApi(ctx);
 *   const inst = await api.get(`zones/${api.zone}/instances/web-1`);
 *   const all = await api.list('zones/us-central1-a/instances', { filter: '(labels.formwork-provider = "gce1")' });
 */
import { FormworkError, toFormworkError } from '../../core/errors.js';
import { callPolicyFor } from '../api-calls.js';
import type { ProviderCheckContext } from '../provider.js';
import { bootPoll } from '../readiness.js';
import { accessToken, forgetTokens } from './auth.js';
import { googleError, isNotFound, operationError } from './errors.js';

/** The public Compute API. */
export const DEFAULT_API_ENDPOINT = 'https://compute.googleapis.com/compute/v1';

/** A Compute operation (zone or global). */
export interface GceOperation {
  name: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  targetLink?: string;
  zone?: string;
  selfLink?: string;
  error?: { errors?: Array<{ code?: string; message?: string }> };
}

/** Items asked for per page (Compute's maximum; tests set it lower to page). */
export const listPage = { size: 500 };

/** How long an operation is polled before the call counts as failed (tests set it lower). */
export const operationWait = { ms: 300_000 };

/** Per call: whether it may be repeated (a requestId makes an insert so), and query parameters. */
export interface GceCallOptions {
  query?: Record<string, string | number | undefined>;
  idempotent?: boolean;
}

/** A provider's Compute API (see the file's comment). */
export class GceApi {
  readonly endpoint: string;
  readonly project: string;
  readonly zone: string;

  constructor(private readonly ctx: ProviderCheckContext) {
    const s = ctx.settings;
    const raw = typeof s.apiEndpoint === 'string' ? s.apiEndpoint : DEFAULT_API_ENDPOINT;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.apiEndpoint "${raw}" is not a URL (e.g. ${DEFAULT_API_ENDPOINT})`, { setting: 'settings.apiEndpoint' });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.apiEndpoint "${raw}" is not an http(s) URL`, { setting: 'settings.apiEndpoint' });
    this.endpoint = raw.replace(/\/+$/, '');
    if (typeof s.project !== 'string' || !s.project) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.project is required (the Google Cloud project id)`, { setting: 'settings.project' });
    if (typeof s.zone !== 'string' || !s.zone) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.zone is required (e.g. us-central1-a)`, { setting: 'settings.zone' });
    this.project = s.project;
    this.zone = s.zone;
  }

  /** The URL of a path under the project (`zones/Z/instances`), or of an absolute `projects/…` path. */
  url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const rel = path.startsWith('projects/') ? path : `projects/${encodeURIComponent(this.project)}${path ? `/${path}` : ''}`;
    const qs = new URLSearchParams(Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, v]): [string, string] => [k, String(v)])).toString();
    return `${this.endpoint}/${rel}${qs ? `?${qs}` : ''}`;
  }

  /** One call; its JSON answer. */
  async call<T>(what: string, method: string, path: string, body?: unknown, opts: GceCallOptions = {}): Promise<T> {
    const url = this.url(path, opts.query);
    return callPolicyFor(this.ctx).run(what, () => this.once<T>(what, method, url, body), { idempotent: opts.idempotent ?? method === 'GET', signal: this.ctx.signal });
  }

  private async once<T>(what: string, method: string, url: string, body: unknown, retriedAuth = false): Promise<T> {
    const token = await accessToken(this.ctx);
    let res: Response;
    try {
      res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body), signal: this.ctx.signal });
    } catch (e) {
      throw new FormworkError('PROVIDER_ERROR', `${what}: ${this.endpoint} (settings.apiEndpoint) did not answer: ${toFormworkError(e).message}`, { call: what }, { retryable: true, cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (json === undefined && text) throw new FormworkError('PROVIDER_ERROR', `${what}: ${this.endpoint} answered something that is not JSON: is settings.apiEndpoint the Compute API (…/compute/v1)?`, { call: what, setting: 'settings.apiEndpoint' }, { retryable: true });
      return json as T;
    }
    // A cached token the API no longer takes: one fresh login, then the refusal stands.
    if (res.status === 401 && !retriedAuth) {
      forgetTokens();
      return this.once<T>(what, method, url, body, true);
    }
    throw googleError(res.status, json, res.headers.get('retry-after'), what);
  }

  /** A GET; undefined on 404. */
  async get<T>(path: string, what = 'get'): Promise<T | undefined> {
    try {
      return await this.call<T>(what, 'GET', path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Every item of a list, following `nextPageToken`. */
  async list<T>(path: string, query: Record<string, string | undefined> = {}, what = 'list'): Promise<T[]> {
    const out: T[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.call<{ items?: T[]; nextPageToken?: string }>(what, 'GET', path, undefined, { query: { ...query, maxResults: listPage.size, pageToken } });
      out.push(...(page?.items ?? []));
      pageToken = page?.nextPageToken || undefined;
    } while (pageToken);
    return out;
  }

  /** Polls an operation until DONE; throws its error (a late failure) when it has one. */
  async waitOperation(op: GceOperation, what: string): Promise<GceOperation> {
    const deadline = Date.now() + operationWait.ms;
    let cur = op;
    const path = operationPath(cur);
    while (cur.status !== 'DONE') {
      if (Date.now() > deadline) throw new FormworkError('PROVIDER_ERROR', `${what}: operation ${cur.name} not done after ${operationWait.ms / 1000} s`, { operation: cur.name }, { retryable: true });
      await new Promise((r) => setTimeout(r, bootPoll.ms));
      cur = await this.call<GceOperation>(`${what} (operation)`, 'GET', path);
    }
    if (cur.error?.errors?.length) throw operationError(cur.error, what);
    return cur;
  }
}

/** The path of an operation from its selfLink or zone (zone operations, else global). */
function operationPath(op: GceOperation): string {
  const m = op.selfLink ? /(projects\/[^/]+\/(?:zones\/[^/]+|regions\/[^/]+|global)\/operations\/[^/?]+)/.exec(op.selfLink) : null;
  if (m) return m[1];
  const zone = op.zone?.split('/').pop();
  return zone ? `zones/${zone}/operations/${op.name}` : `global/operations/${op.name}`;
}

/**
 * The provider's API client (settings checked: apiEndpoint a URL, project and zone set).
 *
 * @example
 *   gceApi(ctx).zone; // 'us-central1-a'
 */
export function gceApi(ctx: ProviderCheckContext): GceApi {
  return new GceApi(ctx);
}

/**
 * The last segment of a Compute URL (`…/machineTypes/e2-small` → `e2-small`).
 *
 * @example
 *   lastSegment('https://…/zones/us-central1-a'); // 'us-central1-a'
 */
export function lastSegment(url: string | undefined): string {
  return (url ?? '').split('/').filter(Boolean).pop() ?? '';
}
