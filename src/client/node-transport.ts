import http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import { FormworkClient } from './client.js';
import {
  DEFAULT_TIMEOUT_MS,
  normalizeEndpoint,
  requestUrl,
  TIMEOUT_CODE,
  unreachable,
  type StreamResponse,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from './transport.js';

// node:https (and TLS beneath it) is loaded for https endpoints only: most CLI runs talk
// plain http to a server on the same machine and need not pay for loading it.
let httpsModule: typeof https | undefined;
const httpsLib = () => (httpsModule ??= createRequire(import.meta.url)('node:https') as typeof https);

/**
 * Options of the node:http transport.
 *
 * @example
 *   const opts: NodeTransportOptions = { endpoint: 'https://fw.example.com', ca: readFileSync('ca.pem') };
 */
export interface NodeTransportOptions extends TransportOptions {
  /** PEM of a CA to trust for https endpoints (in addition to the system's). */
  ca?: string | Buffer;
}

/**
 * The transport the CLI uses: node:http/node:https directly (not fetch), so that a private
 * CA (`ca`) is trusted without extra dependencies, with pooled keep-alive connections; the
 * event stream gets a connection of its own.
 *
 * @example
 *   const client = new FormworkClient({ transport: new NodeHttpTransport({ endpoint: 'http://127.0.0.1:7480' }), token });
 */
export class NodeHttpTransport implements Transport {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;
  private readonly ca: string | Buffer | undefined;

  constructor(opts: NodeTransportOptions) {
    this.endpoint = normalizeEndpoint(opts.endpoint);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ca = opts.ca;
    this.agent =
      new URL(this.endpoint).protocol === 'https:'
        ? new (httpsLib().Agent)({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) })
        : new http.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  request(spec: TransportRequest): Promise<TransportResponse> {
    const url = requestUrl(this.endpoint, spec.path, spec.query);
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const headers = {
      ...spec.headers,
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
    };
    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(unreachable(this.endpoint, e, this.timeoutMs));
      };
      const req = this.module(url).request(url, { method: spec.method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: TIMEOUT_CODE })), this.timeoutMs);
      req.on('error', fail);
      req.end(payload);
    });
  }

  stream(spec: TransportRequest & { signal?: AbortSignal }): Promise<StreamResponse> {
    const url = requestUrl(this.endpoint, spec.path, spec.query);
    const signal = spec.signal;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(unreachable(this.endpoint, e, this.timeoutMs));
      };
      // Streams get their own connection: they stay open, so they must not hold a pooled socket.
      const options = { method: spec.method, headers: spec.headers, agent: false as const, ...(url.protocol === 'https:' && this.ca ? { ca: this.ca } : {}) };
      const req = this.module(url).request(url, options, (res) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            settled = true;
            resolve({ kind: 'refused', status, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', fail);
          return;
        }
        settled = true;
        if (signal) {
          const stop = () => res.destroy();
          if (signal.aborted) stop();
          else signal.addEventListener('abort', stop, { once: true });
          res.once('close', () => signal.removeEventListener('abort', stop));
        }
        res.setEncoding('utf8');
        resolve({ kind: 'open', status, chunks: res as AsyncIterable<string>, close: () => res.destroy() });
      });
      const onAbort = () => req.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      if (signal) {
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
      const timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: TIMEOUT_CODE })), this.timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fail(e);
      });
      req.end();
    });
  }

  private module(url: URL): typeof http | typeof https {
    return url.protocol === 'https:' ? httpsLib() : http;
  }
}

/**
 * Options of `httpClient`: the transport's, and who the client is.
 *
 * @example
 *   const opts: HttpClientOptions = { endpoint: 'http://127.0.0.1:7480', token, timeoutMs: 5000 };
 */
export interface HttpClientOptions extends NodeTransportOptions {
  token?: string;
  userAgent?: string;
}

/**
 * A FormworkClient over node:http: what the CLI and tests use.
 *
 * @example
 *   const c = httpClient({ endpoint: 'http://127.0.0.1:7480', token });
 *   const nodes = await c.listAll('nodes', { labels: ['env=prod'] });
 *   c.close();
 */
export function httpClient(opts: HttpClientOptions): FormworkClient {
  const { token, userAgent, ...transport } = opts;
  return new FormworkClient({ transport: new NodeHttpTransport(transport), ...(token !== undefined ? { token } : {}), ...(userAgent !== undefined ? { userAgent } : {}) });
}
