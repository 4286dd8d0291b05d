import { FormworkError } from '../core/errors.js';
import { kindByName, knownKindNames, type KindDef, type FormworkEvent, type StoredObject } from '../core/kinds.js';
import type {
  ApplyResult,
  ApplyResponse,
  CommitResult,
  ConformanceReport,
  CreatedToken,
  CreateTokenRequest,
  DeploymentTree,
  EventPage,
  Health,
  ListPage,
  RetryResult,
  RunLog,
  TokenInfo,
  TokenList,
  WhoAmI,
} from '../core/wire.js';
import { apiError } from './errors.js';
import { SseParser } from './sse.js';
import type { StreamResponse, Transport, TransportRequest } from './transport.js';

export { ApiError } from './errors.js';
export { normalizeEndpoint } from './transport.js';
export type { ApplyResult, CreateTokenRequest, ListPage, TokenInfo, WhoAmI } from '../core/wire.js';

/**
 * The typed client of the Formwork API (`/api/v1`), used by the CLI and by tests, written
 * against a Transport only (transport.ts) so that it runs wherever one does: over node:http
 * in the CLI (`httpClient`, node-transport.ts), over fetch in a browser (fetch-transport.ts).
 *
 * Every API error becomes a `FormworkError` carrying the server's code, message and
 * details (plus `status`, see `ApiError`); a connection failure becomes
 * `ENDPOINT_UNREACHABLE` naming the endpoint — the client never tries another address.
 * The answers are typed by their wire shapes (core/wire.ts).
 *
 * @example
 *   const c = new FormworkClient({ transport: new FetchTransport({ endpoint: 'http://127.0.0.1:7480' }), token });
 *   const nodes = await c.listAll('nodes', { labels: ['env=prod'] });
 *   for await (const e of c.events({ types: ['nodes'] })) console.log(e.action, e.key);
 */

/**
 * What a client is made of: how it reaches the server, and who it is.
 *
 * @example
 *   const opts: ClientOptions = { transport: new NodeHttpTransport({ endpoint }), token, userAgent: 'formwork-cli' };
 */
export interface ClientOptions {
  transport: Transport;
  token?: string;
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

export interface WriteOptions {
  /** The version the change is based on; sent as If-Match. */
  ifMatch?: number | string;
}

export interface ApplyDocument {
  kind: string;
  name: string;
  [field: string]: unknown;
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

/** A request as the methods describe it; `headers` adds to (or overrides) the client's own. */
type RequestSpec = Omit<TransportRequest, 'headers'> & { headers?: Record<string, string> };

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

export class FormworkClient {
  readonly transport: Transport;
  private readonly token: string | undefined;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    this.transport = opts.transport;
    this.token = opts.token;
    this.userAgent = opts.userAgent ?? 'formwork-client';
  }

  /** The server's base URL, e.g. `http://127.0.0.1:7480`. */
  get endpoint(): string {
    return this.transport.endpoint;
  }

  /** Releases pooled connections. The client is unusable afterwards. */
  close(): void {
    this.transport.close();
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

  async apply(documents: ApplyDocument[]): Promise<ApplyResult[]> {
    const r = await this.json<ApplyResponse>({ method: 'POST', path: `${API}/apply`, body: { documents } });
    return r.results ?? [];
  }

  // ---- auth --------------------------------------------------------------------------------

  async listTokens(): Promise<TokenInfo[]> {
    const r = await this.json<TokenList | TokenInfo[]>({ method: 'GET', path: `${API}/tokens` });
    return Array.isArray(r) ? r : (r.items ?? []);
  }

  async createToken(req: CreateTokenRequest): Promise<CreatedToken> {
    return this.json({ method: 'POST', path: `${API}/tokens`, body: req });
  }

  async revokeToken(id: string): Promise<void> {
    await this.json({ method: 'DELETE', path: `${API}/tokens/${encodeURIComponent(id)}` });
  }

  async whoami(): Promise<WhoAmI> {
    return this.json({ method: 'GET', path: `${API}/whoami` });
  }

  async health(): Promise<Health> {
    return this.json({ method: 'GET', path: '/healthz' });
  }

  // ---- deployments, engine, providers --------------------------------------------------------

  /** Commits a deployment: its proposed node-roles become todo (or blocked), and the engine starts. */
  async commit(deployment: string): Promise<CommitResult> {
    return this.json({ method: 'POST', path: `${API}/deployments/${encodeURIComponent(deployment)}/commit`, body: {} });
  }

  /** A deployment's node-roles grouped by node, with state and blocked reason. */
  async deploymentTree(deployment: string): Promise<DeploymentTree> {
    return this.json({ method: 'GET', path: `${API}/deployments/${encodeURIComponent(deployment)}/tree` });
  }

  /** Retries a failed node-role, or every failed node-role of `{ deployment }`. */
  async retry(target: { noderole: string } | { deployment: string }): Promise<RetryResult> {
    const path = 'deployment' in target ? `${API}/deployments/${encodeURIComponent(target.deployment)}/retry` : `${API}/noderoles/${encodeURIComponent(target.noderole)}/retry`;
    return this.json({ method: 'POST', path });
  }

  /** A node-role's latest run and its log, or the run named by `run` (id or name). */
  async runLog(noderole: string, run?: string): Promise<RunLog> {
    return this.json({ method: 'GET', path: `${API}/noderoles/${encodeURIComponent(noderole)}/log`, ...(run ? { query: new URLSearchParams({ run }) } : {}) });
  }

  /** Runs the yardstick's checks on nodes: all, one provider's, or the ones named. */
  async conformance(select: { provider?: string; nodes?: string[] } = {}): Promise<ConformanceReport> {
    return this.json({ method: 'POST', path: `${API}/conformance`, body: select });
  }

  // ---- events ------------------------------------------------------------------------------

  /** Events after a sequence number, as one JSON answer (no stream). */
  async eventsAfter(after: number, opts: { types?: string[]; key?: string } = {}): Promise<ClientEvent[]> {
    const q = eventQuery(opts);
    q.set('format', 'json');
    q.set('after', String(after));
    const r = await this.json<EventPage | ClientEvent[]>({ method: 'GET', path: `${API}/events`, query: q });
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
      let stream: Extract<StreamResponse, { kind: 'open' }>;
      try {
        stream = await this.openStream(`${API}/events`, q, lastEventId, signal);
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
        for await (const chunk of stream.chunks) {
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
        stream.close();
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

  /** Sends a request and returns the parsed JSON body (undefined when empty), or throws. */
  private async json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.transport.request({ ...spec, headers: this.headers(spec.headers) });
    if (res.status >= 400) throw apiError(res);
    if (!res.text.trim()) return undefined as T;
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new FormworkError('INTERNAL', `the server at ${this.endpoint} answered ${spec.method} ${spec.path} with a body that is not JSON (HTTP ${res.status})`);
    }
  }

  private async openStream(path: string, query: URLSearchParams, lastEventId: string | undefined, signal?: AbortSignal): Promise<Extract<StreamResponse, { kind: 'open' }>> {
    const headers = this.headers({
      accept: 'text/event-stream',
      'cache-control': 'no-cache',
      ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
    });
    const res = await this.transport.stream({ method: 'GET', path, query, headers, ...(signal ? { signal } : {}) });
    if (res.kind === 'refused') throw apiError(res);
    return res;
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
