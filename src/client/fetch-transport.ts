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

/**
 * The transport over the global `fetch`: what a browser (or any runtime without node:http)
 * uses. It trusts what the runtime trusts (no `ca` option) and leaves connection pooling to
 * it; everything else — timeouts, the event stream, `ENDPOINT_UNREACHABLE` — is as over
 * node:http (node-transport.ts).
 *
 * @example
 *   const client = new FormworkClient({ transport: new FetchTransport({ endpoint: location.origin }), token });
 *   for await (const e of client.events({ types: ['nodes'] })) render(e);
 */
export class FetchTransport implements Transport {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  /** `fetchImpl` defaults to the global fetch (bound, as browsers require). */
  constructor(opts: TransportOptions & { fetchImpl?: typeof fetch }) {
    this.endpoint = normalizeEndpoint(opts.endpoint);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetch = opts.fetchImpl ?? globalThis.fetch.bind(globalThis);
  }

  close(): void {
    // Nothing pooled here: the runtime owns its connections.
  }

  async request(spec: TransportRequest): Promise<TransportResponse> {
    const timeout = this.deadline();
    try {
      const res = await this.fetch(requestUrl(this.endpoint, spec.path, spec.query), this.init(spec, timeout.signal));
      return { status: res.status, text: await res.text() };
    } catch (e) {
      throw this.unreachable(e, timeout.timedOut());
    } finally {
      timeout.clear();
    }
  }

  async stream(spec: TransportRequest & { signal?: AbortSignal }): Promise<StreamResponse> {
    const timeout = this.deadline();
    // Aborting the caller's signal ends the stream, as does the timeout until headers arrive.
    const stop = () => timeout.controller.abort(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
    if (spec.signal?.aborted) stop();
    else spec.signal?.addEventListener('abort', stop, { once: true });
    let res: Response;
    try {
      res = await this.fetch(requestUrl(this.endpoint, spec.path, spec.query), this.init(spec, timeout.signal));
    } catch (e) {
      spec.signal?.removeEventListener('abort', stop);
      throw this.unreachable(e, timeout.timedOut());
    } finally {
      timeout.clear();
    }
    if (res.status >= 400 || !res.body) {
      try {
        return { kind: 'refused', status: res.status, text: await res.text() };
      } catch (e) {
        throw this.unreachable(e, false);
      } finally {
        spec.signal?.removeEventListener('abort', stop);
      }
    }
    const body = res.body;
    const done = () => spec.signal?.removeEventListener('abort', stop);
    return {
      kind: 'open',
      status: res.status,
      chunks: textChunks(body, done),
      close: () => {
        done();
        timeout.controller.abort();
      },
    };
  }

  private init(spec: TransportRequest, signal: AbortSignal): RequestInit {
    const hasBody = spec.body !== undefined;
    return {
      method: spec.method,
      headers: { ...spec.headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
      ...(hasBody ? { body: JSON.stringify(spec.body) } : {}),
      signal,
    };
  }

  /** An abort controller that fires after the timeout until cleared. */
  private deadline(): { controller: AbortController; signal: AbortSignal; clear(): void; timedOut(): boolean } {
    const controller = new AbortController();
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      controller.abort(Object.assign(new Error('timed out'), { code: TIMEOUT_CODE }));
    }, this.timeoutMs);
    return { controller, signal: controller.signal, clear: () => clearTimeout(timer), timedOut: () => expired };
  }

  /** fetch's errors carry the system's code (ECONNREFUSED…) in `cause`, where the runtime gives one. */
  private unreachable(e: unknown, timedOut: boolean) {
    const err = e instanceof Error ? e : new Error(String(e));
    const cause = (err as { cause?: unknown }).cause;
    const code = timedOut ? TIMEOUT_CODE : (cause as { code?: unknown } | undefined)?.code;
    const inner = cause instanceof Error && !timedOut ? cause : err;
    return unreachable(this.endpoint, Object.assign(new Error(inner.message), typeof code === 'string' ? { code } : {}), this.timeoutMs);
  }
}

/** A response body as text chunks; a dropped connection (or an abort) ends it with an error. */
async function* textChunks(body: ReadableStream<Uint8Array>, onEnd: () => void): AsyncGenerator<string, void, undefined> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (value) yield value;
    }
  } finally {
    onEnd();
    reader.cancel().catch(() => undefined);
  }
}
