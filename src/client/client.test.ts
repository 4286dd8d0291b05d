import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { ApiError, FormworkClient, normalizeEndpoint } from './client.js';
import { FetchTransport } from './fetch-transport.js';
import { httpClient, type HttpClientOptions } from './node-transport.js';
import { fakeObject, startFakeApi, type FakeApi } from './testing/fake-api.js';

/** The same client over each transport: what the CLI uses, and what a browser would. */
const TRANSPORTS: Array<{ name: string; make: (opts: HttpClientOptions) => FormworkClient }> = [
  { name: 'node:http', make: httpClient },
  { name: 'fetch', make: ({ token, userAgent, ...opts }) => new FormworkClient({ transport: new FetchTransport(opts), ...(token ? { token } : {}), ...(userAgent ? { userAgent } : {}) }) },
];

describe.each(TRANSPORTS)('FormworkClient over $name', ({ make }) => {
  let api: FakeApi;
  let client: FormworkClient;

  beforeAll(async () => {
    api = await startFakeApi({ tokens: { admin: 'admin', view: 'viewer' } });
    client = make({ endpoint: api.url, token: 'admin' });
  });
  afterAll(async () => {
    client.close();
    await api.close();
  });

  it('normalizes endpoints', () => {
    expect(normalizeEndpoint('127.0.0.1:7480/')).toBe('http://127.0.0.1:7480');
    expect(normalizeEndpoint('https://fw.example.com')).toBe('https://fw.example.com');
    expect(() => normalizeEndpoint('ftp://x')).toThrow(/only http/);
  });

  it('lists every page, passing label and field filters', async () => {
    api.objects.nodes = ['a', 'b', 'c', 'd', 'e'].map((n) => fakeObject(n, { state: n === 'c' ? 'error' : 'ready', labels: { env: 'prod' } }));
    const all = await client.listAll('Node');
    expect(all.map((o) => o.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    const ready = await client.listAll('nodes', { labels: ['env=prod'], fields: { state: 'ready' } });
    expect(ready.map((o) => o.name)).toEqual(['a', 'b', 'd', 'e']);
    const last = api.requests.filter((r) => r.url.startsWith('/api/v1/nodes')).pop()!;
    expect(last.url).toContain('label=env%3Dprod');
    expect(last.headers.authorization).toBe('Bearer admin');
  });

  it('turns API errors into FormworkErrors with code, message, details and status', async () => {
    const e = await client.get('node', 'nope').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toBeInstanceOf(FormworkError);
    expect((e as ApiError).code).toBe('NOT_FOUND');
    expect((e as ApiError).status).toBe(404);
    expect((e as ApiError).details).toEqual({ key: 'nope' });

    const viewer = make({ endpoint: api.url, token: 'view' });
    const f = await viewer.apply([{ kind: 'Node', name: 'x' }]).catch((x: unknown) => x);
    expect((f as ApiError).code).toBe('FORBIDDEN');
    expect((f as ApiError).status).toBe(403);
    viewer.close();
  });

  it('refuses unknown kinds before any request, listing the known ones', async () => {
    const e = (await client.list('gizmos').catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('UNKNOWN_KIND');
    expect(e.message).toContain('nodes');
  });

  it('reports an unreachable endpoint by name, with no fallback', async () => {
    // A port just freed (fetch refuses low ports such as 1 outright: "bad port").
    const net = await import('node:net');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const c = make({ endpoint: `http://127.0.0.1:${port}`, token: 'x' });
    const e = (await c.whoami().catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('ENDPOINT_UNREACHABLE');
    expect(e.message).toMatch(new RegExp(`^cannot reach the Formwork server at http://127\\.0\\.0\\.1:${port}: connection refused\\. Start it with \`formwork server\``));
    c.close();
  });

  it('times out slow servers', async () => {
    const http = await import('node:http');
    const slow = http.createServer(() => {});
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const port = (slow.address() as { port: number }).port;
    const c = make({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 200 });
    const e = (await c.health().catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('ENDPOINT_UNREACHABLE');
    expect(e.message).toContain('no answer within 200ms');
    c.close();
    slow.closeAllConnections();
    slow.close();
  });

  it('applies, creates tokens, and deletes', async () => {
    api.objects.nodes = [];
    const r = await client.apply([{ kind: 'Node', name: 'n1' }]);
    expect(r[0]).toMatchObject({ kind: 'Node', name: 'n1', action: 'created' });
    expect((await client.createToken({ user: 'ci' })).token).toBe('fwt_new');
    expect(await client.listTokens()).toHaveLength(1);
    await client.delete('nodes', 'n1', { ifMatch: 1 });
    expect(api.requests[api.requests.length - 1].headers['if-match']).toBe('"1"');
    expect(api.objects.nodes).toEqual([]);
  });

  it('streams events, reconnecting with Last-Event-ID when the stream drops', async () => {
    api.dropStreamAfter = 2;
    const ac = new AbortController();
    const seen: string[] = [];
    const reconnects: Array<string | undefined> = [];
    const stream = client.events({ types: ['nodes'], signal: ac.signal, retryMs: 20, onReconnect: (i) => reconnects.push(i.lastEventId) });
    const done = (async () => {
      for await (const e of stream) {
        seen.push(`${e.seq}:${e.action}:${e.key}`);
        if (seen.length === 4) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    api.emit('nodes', 'created', 'a');
    api.emit('roles', 'created', 'ignored');
    api.emit('nodes', 'updated', 'a');
    // the stream drops here; these arrive after the reconnect through Last-Event-ID replay
    api.emit('nodes', 'deleted', 'a');
    api.emit('nodes', 'created', 'b');
    await done;
    expect(seen).toEqual(['1:created:a', '3:updated:a', '4:deleted:a', '5:created:b']);
    expect(reconnects[0]).toBe('3');
    const resumed = api.requests.filter((r) => r.url.startsWith('/api/v1/events') && r.headers['last-event-id']);
    expect(resumed[0].headers['last-event-id']).toBe('3');
    api.dropStreamAfter = undefined;
  });

  it('fails the first stream connection instead of retrying', async () => {
    const c = make({ endpoint: 'http://127.0.0.1:1' });
    const it = c.events()[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: 'ENDPOINT_UNREACHABLE' });
    const noAuth = make({ endpoint: api.url });
    await expect(noAuth.events()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    c.close();
    noAuth.close();
  });

  it('calls other routes through request()', async () => {
    expect(await client.request('GET', '/api/v1/whoami')).toMatchObject({ user: 'admin' });
    await expect(client.request('POST', '/api/v1/nowhere', { body: {} })).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('reads events after a sequence number as JSON', async () => {
    const all = await client.eventsAfter(3);
    expect(all.every((e) => e.seq > 3)).toBe(true);
  });
});

describe('FormworkClient over https', () => {
  it('trusts a private CA given with `ca`, and names the endpoint when the certificate is not trusted', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const https = await import('node:https');
    const d = mkdtempSync(path.join(tmpdir(), 'fw-tls-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', path.join(d, 'key.pem'), '-out', path.join(d, 'cert.pem'),
      ], { stdio: 'ignore' });
      const cert = readFileSync(path.join(d, 'cert.pem'), 'utf8');
      const server = https.createServer({ cert, key: readFileSync(path.join(d, 'key.pem')) }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const endpoint = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
      const trusted = httpClient({ endpoint, ca: cert });
      expect(await trusted.health()).toEqual({ status: 'ok' });
      const untrusted = httpClient({ endpoint });
      const e = (await untrusted.health().catch((x: unknown) => x)) as FormworkError;
      expect(e.code).toBe('ENDPOINT_UNREACHABLE');
      expect(e.message).toContain(`cannot reach the Formwork server at ${endpoint}: self-signed certificate`);
      trusted.close();
      untrusted.close();
      server.closeAllConnections();
      server.close();
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
