import { formatDuration } from '../core/durations.js';
import { FormworkError } from '../core/errors.js';

/**
 * How the client reaches the server, apart from what it says to it: a Transport sends one
 * request and hands back the status and the body's text, or opens the event stream. The
 * typed surface (client.ts) builds the requests, parses the JSON and maps errors, so every
 * transport behaves the same. Two exist: node:http (node-transport.ts: the CLI's, with
 * TLS options) and fetch (fetch-transport.ts: what a browser has). Neither is imported by
 * client.ts, which loads in a browser.
 *
 * A transport never retries and never tries another address; a failure to connect or a
 * timeout rejects with `ENDPOINT_UNREACHABLE` naming the endpoint (`unreachable`).
 *
 * @example
 *   const t: Transport = new FetchTransport({ endpoint: 'http://127.0.0.1:7480' });
 *   const { status, text } = await t.request({ method: 'GET', path: '/healthz', headers: {} });
 */
export interface Transport {
  /** The normalized base URL (`normalizeEndpoint`), e.g. `http://127.0.0.1:7480`. */
  readonly endpoint: string;
  /** Sends one request and reads the whole answer. */
  request(req: TransportRequest): Promise<TransportResponse>;
  /**
   * Opens a long-lived `text/event-stream` GET. Resolves once the headers arrive (the
   * timeout covers only that); an error status comes back with its whole body instead.
   * Aborting `signal` before then rejects; after, it ends `chunks`.
   */
  stream(req: TransportRequest & { signal?: AbortSignal }): Promise<StreamResponse>;
  /** Releases pooled connections; the transport is unusable afterwards. */
  close(): void;
}

/**
 * One request as the client builds it.
 *
 * @example
 *   const req: TransportRequest = { method: 'POST', path: '/api/v1/apply', body: { documents }, headers: { accept: 'application/json' } };
 */
export interface TransportRequest {
  method: string;
  /** Path below the endpoint, starting with `/`. */
  path: string;
  query?: URLSearchParams;
  /** Sent as JSON (with `content-type: application/json`) when defined. */
  body?: unknown;
  headers: Record<string, string>;
}

/**
 * An answer: its status and its body as text (empty when there is none).
 *
 * @example
 *   const res: TransportResponse = { status: 404, text: '{"error":{"code":"NOT_FOUND","message":"…"}}' };
 */
export interface TransportResponse {
  status: number;
  text: string;
}

/**
 * An opened event stream (`open`: its text as it arrives), or the error answer the server
 * gave instead (`refused`).
 *
 * @example
 *   const s = await transport.stream({ method: 'GET', path: '/api/v1/events', headers });
 *   if (s.kind === 'open') for await (const chunk of s.chunks) parser.push(chunk);
 */
export type StreamResponse =
  | { kind: 'open'; status: number; chunks: AsyncIterable<string>; close(): void }
  | { kind: 'refused'; status: number; text: string };

/**
 * Options every transport takes.
 *
 * @example
 *   const opts: TransportOptions = { endpoint: '127.0.0.1:7480', timeoutMs: 5000 };
 */
export interface TransportOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:7480` (no `/api/v1`); `http://` is assumed when no scheme is given. */
  endpoint: string;
  /** Per-request timeout (ms); for the event stream, the time to get response headers. Default 30 s. */
  timeoutMs?: number;
}

/** The default per-request timeout (ms). */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** The error code a transport gives its own timeout, so that `unreachable` words it as one. */
export const TIMEOUT_CODE = 'FW_TIMEOUT';

/**
 * Normalizes an endpoint: adds `http://` when no scheme is given, drops trailing slashes.
 *
 * @example
 *   normalizeEndpoint('127.0.0.1:7480/'); // 'http://127.0.0.1:7480'
 */
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

/**
 * The URL of a path below an endpoint (which may itself have a path), with its query.
 *
 * @example
 *   requestUrl('http://h:1/fw', '/api/v1/nodes', new URLSearchParams('limit=2')).href; // 'http://h:1/fw/api/v1/nodes?limit=2'
 */
export function requestUrl(endpoint: string, path: string, query?: URLSearchParams): URL {
  const base = new URL(endpoint);
  const u = new URL(base.pathname.replace(/\/+$/, '') + path, base);
  if (query) u.search = query.toString();
  return u;
}

/**
 * The `ENDPOINT_UNREACHABLE` error for a failure to connect, a dropped connection or a
 * timeout, naming the endpoint and saying how to start a server.
 *
 * @example
 *   req.on('error', (e) => reject(unreachable(endpoint, e, timeoutMs)));
 */
export function unreachable(endpoint: string, err: Error & { code?: string }, timeoutMs: number): FormworkError {
  const reason = describeNetworkError(err, timeoutMs);
  return new FormworkError(
    'ENDPOINT_UNREACHABLE',
    `cannot reach the Formwork server at ${endpoint}: ${reason}. Start it with \`formwork server\` or set --endpoint/FORMWORK_ENDPOINT`,
    { endpoint, ...(err.code ? { cause: err.code } : {}) },
  );
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
    case TIMEOUT_CODE:
      return `no answer within ${formatDuration(timeoutMs / 1000)}`;
    default:
      return err.code ? `${err.message} (${err.code})` : err.message;
  }
}
