import http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import { formatDuration } from '../core/durations.js';
import { ERROR_CODES, FormworkError, type ErrorCode } from '../core/errors.js';
import { kindByName, knownKindNames, type KindDef, type FormworkEvent, type StoredObject } from '../core/kinds.js';
import { SseParser } from './sse.js';

// node:https (and TLS beneath it) is loaded for https endpoints only: most CLI runs talk
// plain http to a server on the same machine and need not pay for loading it.
let httpsModule: typeof https | undefined;
const httpsLib = () => (httpsModule ??= createRequire(import.meta.url)('node:https') as typeof https);

/**
 * The typed HTTP client for the Formwork API (`/api/v1`), used by the CLI and by tests.
 *
 * It speaks node:http/node:https directly (not fetch) so that a private CA (`ca`) can be
 * trusted without extra dependencies, and so the event stream can be read as it arrives.
 * Every API error becomes a `FormworkError` carrying the server's code, message and
 * details (plus `status`, see `ApiError`); a connection failure becomes
 * `ENDPOINT_UNREACHABLE` naming the endpoint — the client never tries another address.
 *
 * @example
 *   const c = new FormworkClient({ endpoint: 'http://127.0.0.1:7480', token });
 *   const nodes = await c.listAll('nodes', { labels: ['env=prod'] });
 *   for await (const e of c.events({ types: ['nodes'] })) console.log(e.action, e.key);
 */

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:7480` (no `/api/v1`). */
  endpoint: string;
  token?: string;
  /** Per-request timeout (ms); for the event stream, the time to get response headers. Default 30 s. */
  timeoutMs?: number;
  /** PEM of a CA to trust for https endpoints (in addition to the system's). */
  ca?: string | Buffer;
  userAgent?: string;
}

export interface ListOptions {
  limit?: number;
  after?: string;
  /** Label selectors, each `k=v` (or a map). */
  labels?: string[] | Record<string, string>;
  /** Field filters `field=value` (fields the kind marks filterable). */
  fields?: Record<string, string>;
}

export interface ListPage {
  items: StoredObject[];
  next?: string;
}

export interface WriteOptions {
  /** The version the change is based on; sent as If-Match. */
  ifMatch?: number | string;
}

export interface ApplyDocument {
  kind: string;
  name: string;
  [field: string]: unknown;
}

export interface ApplyResultItem {
  kind: string;
  name: string;
  action: 'created' | 'updated' | 'unchanged';
  object: StoredObject;
}

/** An event from the stream: the same shape the store keeps (core/kinds.ts). */
export type ClientEvent = FormworkEvent;

export interface EventStreamOptions {
  /** Event types (kind plurals like `nodes`, or stream names). */
  types?: string[];
  key?: string;
  /** Resume after this event id (sent as Last-Event-ID). */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Reconnect when the stream drops (default true). The first connection is never retried. */
  reconnect?: boolean;
  /** Initial reconnect delay (ms), doubled up to 10 s; the server's `retry:` overrides it. */
  retryMs?: number;
  /** Called before each reconnect attempt. */
  onReconnect?: (info: { attempt: number; delayMs: number; lastEventId?: string; error?: Error }) => void;
}

export interface TokenInfo {
  id: string;
  user: string;
  role?: string;
  description?: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  lastUsedAt?: string;
  [field: string]: unknown;
}

export interface CreateTokenRequest {
  user?: string;
  role?: string;
  description?: string;
  expiresInSeconds?: number;
}

export interface WhoAmI {
  user: string;
  role: string;
  tokenId?: string;
  [field: string]: unknown;
}

/** A FormworkError that came from an HTTP response; `status` is the HTTP status. */
export class ApiError extends FormworkError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
    this.name = 'ApiError';
    this.status = status;
  }
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

interface RequestSpec {
  method: string;
  /** Path below the endpoint, starting with `/`. */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  headers?: Record<string, string>;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  412: 'VERSION_MISMATCH',
  413: 'BODY_TOO_LARGE',
  422: 'VALIDATION',
};

const API = '/api/v1';

/** Resolves a kind name (singular, plural, PascalCase) or throws UNKNOWN_KIND listing the known kinds. */
export function resolveKind(name: string): KindDef {
  const k = kindByName(name);
  if (!k) {
    const known = knownKindNames();
    throw new FormworkError('UNKNOWN_KIND', `unknown kind "${name}"; known kinds: ${known.join(', ')}`, { kind: name, known });
  }
  return k;
}

/** Normalizes an endpoint: adds `http://` when no scheme is given, drops trailing slashes. */
export function normalizeEndpoint(endpoint: string): string {
  let e = endpoint.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(e)) e = `http://${e}`;
  let url: URL;
  try {
    url = new URL(e);
  } catch {
    throw new FormworkError('VALIDATION', `invalid endpoint "${endpoint}": expected a URL like http://127.0.0.1:7480`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FormworkError('VALIDATION', `invalid endpoint "${endpoint}": only http:// and https:// are supported`);
  }
  return e.replace(/\/+$/, '');
}

function describeNetworkError(err: Error & { code?: string }, timeoutMs: number): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${err.code})`;
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to host (${err.code})`;
    case 'ETIMEDOUT':
    case 'FW_TIMEOUT':
      return `no answer within ${formatDuration(timeoutMs / 1000)}`;
    default:
      return err.code ? `${err.message} (${err.code})` : err.message;
  }
}

export class FormworkClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    this.endpoint = normalizeEndpoint(opts.endpoint);
    this.base = new URL(this.endpoint);
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? 'formwork-client';
    this.agent =
      this.base.protocol === 'https:'
        ? new (httpsLib().Agent)({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) })
        : new http.Agent({ keepAlive: true });
  }

  /** Releases pooled connections. The client is unusable afterwards. */
  close(): void {
    this.agent.destroy();
  }

  get hasToken(): boolean {
    return Boolean(this.token);
  }

  // ---- objects ---------------------------------------------------------------------------

  async list(kind: string, opts: ListOptions = {}): Promise<ListPage> {
    const k = resolveKind(kind);
    const q = new URLSearchParams();
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    if (opts.after !== undefined) q.set('after', opts.after);
    const labels = Array.isArray(opts.labels) ? opts.labels : Object.entries(opts.labels ?? {}).map(([a, b]) => `${a}=${b}`);
    for (const l of labels) q.append('label', l);
    for (const [f, v] of Object.entries(opts.fields ?? {})) q.append(f, v);
    const page = await this.json<ListPage | StoredObject[]>({ method: 'GET', path: `${API}/${k.plural}`, query: q });
    if (Array.isArray(page)) return { items: page };
    return { items: page.items ?? [], ...(page.next ? { next: page.next } : {}) };
  }

  /** Every page of a list, following `next`. */
  async listAll(kind: string, opts: Omit<ListOptions, 'after'> = {}): Promise<StoredObject[]> {
    const all: StoredObject[] = [];
    let after: string | undefined;
    const seen = new Set<string>();
    for (;;) {
      const page = await this.list(kind, { ...opts, ...(after !== undefined ? { after } : {}) });
      all.push(...page.items);
      if (!page.next || page.items.length === 0 || seen.has(page.next)) return all;
      seen.add(page.next);
      after = page.next;
    }
  }

  async get(kind: string, idOrName: string): Promise<StoredObject> {
    return this.json({ method: 'GET', path: this.objectPath(kind, idOrName) });
  }

  async create(kind: string, body: Record<string, unknown>): Promise<StoredObject> {
    return this.json({ method: 'POST', path: `${API}/${resolveKind(kind).plural}`, body });
  }

  async patch(kind: string, idOrName: string, body: Record<string, unknown>, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.json({ method: 'PATCH', path: this.objectPath(kind, idOrName), body, headers: ifMatch(opts) });
  }

  async put(kind: string, idOrName: string, body: Record<string, unknown>, opts: WriteOptions = {}): Promise<StoredObject> {
    return this.json({ method: 'PUT', path: this.objectPath(kind, idOrName), body, headers: ifMatch(opts) });
  }

  /** Deletes; resolves to the deleted object when the server returns it. */
  async delete(kind: string, idOrName: string, opts: WriteOptions = {}): Promise<StoredObject | undefined> {
    return this.json({ method: 'DELETE', path: this.objectPath(kind, idOrName), headers: ifMatch(opts) });
  }

  async apply(documents: ApplyDocument[]): Promise<ApplyResultItem[]> {
    const r = await this.json<{ results: ApplyResultItem[] }>({ method: 'POST', path: `${API}/apply`, body: { documents } });
    return r.results ?? [];
  }

  // ---- auth --------------------------------------------------------------------------------

  async listTokens(): Promise<TokenInfo[]> {
    const r = await this.json<{ items: TokenInfo[] } | TokenInfo[]>({ method: 'GET', path: `${API}/tokens` });
    return Array.isArray(r) ? r : (r.items ?? []);
  }

  async createToken(req: CreateTokenRequest): Promise<{ token: string; info: TokenInfo }> {
    return this.json({ method: 'POST', path: `${API}/tokens`, body: req });
  }

  async revokeToken(id: string): Promise<void> {
    await this.json({ method: 'DELETE', path: `${API}/tokens/${encodeURIComponent(id)}` });
  }

  async whoami(): Promise<WhoAmI> {
    return this.json({ method: 'GET', path: `${API}/whoami` });
  }

  async health(): Promise<unknown> {
    return this.json({ method: 'GET', path: '/healthz' });
  }

  // ---- events ------------------------------------------------------------------------------

  /** Events after a sequence number, as one JSON answer (no stream). */
  async eventsAfter(after: number, opts: { types?: string[]; key?: string } = {}): Promise<ClientEvent[]> {
    const q = eventQuery(opts);
    q.set('format', 'json');
    q.set('after', String(after));
    const r = await this.json<{ items: ClientEvent[] } | ClientEvent[]>({ method: 'GET', path: `${API}/events`, query: q });
    return Array.isArray(r) ? r : (r.items ?? []);
  }

  /**
   * The live event stream as an async iterator. Reconnects (with Last-Event-ID) when the
   * stream drops, unless `reconnect: false`. Ends when `signal` aborts or the loop breaks.
   */
  async *events(opts: EventStreamOptions = {}): AsyncGenerator<ClientEvent, void, undefined> {
    const q = eventQuery(opts);
    let lastEventId = opts.lastEventId;
    let delay = opts.retryMs ?? 500;
    let attempt = 0;
    let connectedOnce = false;
    const signal = opts.signal;
    while (!signal?.aborted) {
      let res: http.IncomingMessage;
      try {
        res = await this.openStream(`${API}/events`, q, lastEventId, signal);
      } catch (e) {
        if (signal?.aborted) return;
        // An API answer (401, 400, ...) or a first failure to connect is final.
        if (!connectedOnce || !(e instanceof FormworkError && e.code === 'ENDPOINT_UNREACHABLE') || opts.reconnect === false) throw e;
        attempt++;
        opts.onReconnect?.({ attempt, delayMs: delay, ...(lastEventId ? { lastEventId } : {}), error: e });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 10_000);
        continue;
      }
      connectedOnce = true;
      attempt = 0;
      const parser = new SseParser();
      let dropError: Error | undefined;
      try {
        res.setEncoding('utf8');
        for await (const chunk of res as AsyncIterable<string>) {
          for (const msg of parser.push(chunk)) {
            if (msg.retry !== undefined) delay = msg.retry;
            if (msg.id !== undefined) lastEventId = msg.id;
            let data: unknown;
            try {
              data = JSON.parse(msg.data);
            } catch {
              continue; // not one of ours (e.g. a comment-like ping with data)
            }
            if (!data || typeof data !== 'object') continue;
            const ev = data as Partial<ClientEvent>;
            const event: ClientEvent = {
              ...(ev as ClientEvent),
              id: ev.id ?? msg.id ?? '',
              type: ev.type ?? msg.event,
            };
            yield event;
          }
        }
      } catch (e) {
        dropError = e instanceof Error ? e : new Error(String(e));
      } finally {
        res.destroy();
      }
      if (signal?.aborted || opts.reconnect === false) return;
      attempt++;
      opts.onReconnect?.({ attempt, delayMs: delay, ...(lastEventId ? { lastEventId } : {}), ...(dropError ? { error: dropError } : {}) });
      await sleep(delay, signal);
    }
  }

  // ---- any other route ---------------------------------------------------------------------

  /**
   * Calls a route the typed methods do not cover (e.g. `POST /api/v1/deployments/x/commit`):
   * sends `body` as JSON, resolves to the parsed JSON answer (undefined when empty), and
   * throws the same FormworkErrors as the typed methods.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: { query?: Record<string, string> | URLSearchParams; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    if (!path.startsWith('/')) throw new FormworkError('VALIDATION', `request path must start with "/": ${path}`);
    const query = opts.query instanceof URLSearchParams ? opts.query : opts.query ? new URLSearchParams(opts.query) : undefined;
    return this.json<T>({
      method: method.toUpperCase(),
      path,
      ...(query ? { query } : {}),
      ...(opts.body !== undefined ? { body: opts.body } : {}),
      ...(opts.headers ? { headers: opts.headers } : {}),
    });
  }

  // ---- transport ---------------------------------------------------------------------------

  private objectPath(kind: string, idOrName: string): string {
    return `${API}/${resolveKind(kind).plural}/${encodeURIComponent(idOrName)}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      accept: 'application/json',
      'user-agent': this.userAgent,
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...extra,
    };
  }

  private url(path: string, query?: URLSearchParams): URL {
    const u = new URL(this.base.pathname.replace(/\/+$/, '') + path, this.base);
    if (query) u.search = query.toString();
    return u;
  }

  private unreachable(err: Error & { code?: string }): FormworkError {
    const reason = describeNetworkError(err, this.timeoutMs);
    return new FormworkError(
      'ENDPOINT_UNREACHABLE',
      `cannot reach the Formwork server at ${this.endpoint}: ${reason}. Start it with \`formwork server\` or set --endpoint/FORMWORK_ENDPOINT`,
      { endpoint: this.endpoint, ...(err.code ? { cause: err.code } : {}) },
    );
  }

  /** Sends a request and returns the parsed JSON body (undefined when empty), or throws. */
  private async json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.send(spec);
    if (res.status >= 400) throw this.apiError(res);
    if (!res.text.trim()) return undefined as T;
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new FormworkError('INTERNAL', `the server at ${this.endpoint} answered ${spec.method} ${spec.path} with a body that is not JSON (HTTP ${res.status})`);
    }
  }

  private apiError(res: RawResponse): ApiError {
    let code: ErrorCode | undefined;
    let message: string | undefined;
    let details: Record<string, unknown> | undefined;
    try {
      const body = JSON.parse(res.text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
      if (body?.error) {
        if (body.error.code && body.error.code in ERROR_CODES) code = body.error.code as ErrorCode;
        message = body.error.message;
        details = body.error.details;
        if (body.error.code && !code) details = { ...(details ?? {}), serverCode: body.error.code };
      }
    } catch {
      /* not JSON: use the status */
    }
    code ??= CODE_BY_STATUS[res.status] ?? 'INTERNAL';
    message ??= `HTTP ${res.status}${res.text.trim() ? `: ${res.text.trim().slice(0, 200)}` : ''}`;
    return new ApiError(res.status, code, message, details);
  }

  private send(spec: RequestSpec): Promise<RawResponse> {
    const url = this.url(spec.path, spec.query);
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const headers = this.headers({
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      ...(spec.headers ?? {}),
    });
    const mod = url.protocol === 'https:' ? httpsLib() : http;
    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      };
      const req = mod.request(url, { method: spec.method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => fail(this.unreachable(e)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const timer = setTimeout(() => {
        const e = Object.assign(new Error('timed out'), { code: 'FW_TIMEOUT' });
        req.destroy(e);
      }, this.timeoutMs);
      req.on('error', (e) => fail(this.unreachable(e)));
      req.end(payload);
    });
  }

  private openStream(path: string, query: URLSearchParams, lastEventId: string | undefined, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const url = this.url(path, query);
    const headers = this.headers({
      accept: 'text/event-stream',
      'cache-control': 'no-cache',
      ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
    });
    const mod = url.protocol === 'https:' ? httpsLib() : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      // Streams get their own connection: they stay open, so they must not hold a pooled socket.
      const req = mod.request(url, { method: 'GET', headers, agent: false, ...(url.protocol === 'https:' ? { ca: (this.agent as https.Agent).options.ca } : {}) }, (res) => {
        clearTimeout(timer);
        if ((res.statusCode ?? 0) >= 400) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            settled = true;
            reject(this.apiError({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          });
          res.on('error', (e) => {
            settled = true;
            reject(this.unreachable(e));
          });
          return;
        }
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (signal) {
          const stop = () => res.destroy();
          if (signal.aborted) stop();
          else signal.addEventListener('abort', stop, { once: true });
          res.once('close', () => signal.removeEventListener('abort', stop));
        }
        resolve(res);
      });
      const onAbort = () => req.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      if (signal) {
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: 'FW_TIMEOUT' })), this.timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (!settled) {
          settled = true;
          reject(this.unreachable(e));
        }
      });
      req.end();
    });
  }
}

function ifMatch(opts: WriteOptions): Record<string, string> {
  if (opts.ifMatch === undefined) return {};
  const v = String(opts.ifMatch);
  return { 'if-match': /^(W\/)?".*"$/.test(v) ? v : `"${v}"` };
}

function eventQuery(opts: { types?: string[]; key?: string }): URLSearchParams {
  const q = new URLSearchParams();
  if (opts.types?.length) q.set('type', opts.types.join(','));
  if (opts.key) q.set('key', opts.key);
  return q;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
