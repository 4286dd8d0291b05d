import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small in-memory stand-in for the Formwork HTTP API, for client and CLI unit tests
 * (the end-to-end test uses the real server). It follows the contract: bearer tokens,
 * `{items, next}` pages, `{error: {code, message, details}}` errors, `POST /apply`,
 * tokens, whoami, and an SSE event stream that honours Last-Event-ID.
 *
 * @example
 *   const api = await startFakeApi({ tokens: { t: 'admin' } });
 *   api.objects.nodes = [{ id: 'n1', name: 'a', ... }];
 *   // ... new FormworkClient({ endpoint: api.url, token: 't' })
 *   await api.close();
 */

type Obj = Record<string, unknown> & { id: string; name: string; version: number };

export interface FakeApi {
  url: string;
  objects: Record<string, Obj[]>;
  events: Array<{ id: string; seq: number; time: string; type: string; action: string; key: string }>;
  /** Every request seen: method, url, headers. */
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body?: unknown }>;
  /** Drop the SSE connection after this many events (then the client should reconnect). */
  dropStreamAfter?: number;
  emit(type: string, action: string, key: string): void;
  close(): Promise<void>;
}

const PAGE = 2;

export async function startFakeApi(opts: { tokens?: Record<string, 'admin' | 'operator' | 'viewer'> } = {}): Promise<FakeApi> {
  const tokens = opts.tokens ?? { 'admin-token': 'admin' };
  const streams = new Set<(e: FakeApi['events'][number]) => void>();
  let seq = 0;
  const api: FakeApi = {
    url: '',
    objects: {},
    events: [],
    requests: [],
    emit(type, action, key) {
      const e = { id: String(++seq), seq, time: new Date().toISOString(), type, action, key };
      api.events.push(e);
      for (const s of streams) s(e);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const sendErr = (res: http.ServerResponse, status: number, code: string, message: string, details?: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } }));
  };
  const send = (res: http.ServerResponse, status: number, body?: unknown) => {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    api.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, ...(body ? { body } : {}) });
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/healthz') return send(res, 200, { status: 'ok', version: 'fake' });
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const role = auth ? tokens[auth[1]] : undefined;
    if (!role) return sendErr(res, 401, 'UNAUTHENTICATED', 'a valid bearer token is required');
    const parts = url.pathname.replace(/^\/api\/v1\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    const write = req.method !== 'GET';
    if (write && role === 'viewer') return sendErr(res, 403, 'FORBIDDEN', `the viewer role may not ${req.method} ${url.pathname}`);

    if (parts[0] === 'whoami') return send(res, 200, { user: 'admin', role, tokenId: 'tk_fake' });
    if (parts[0] === 'tokens') {
      if (req.method === 'GET') return send(res, 200, { items: [{ id: 'tk_1', user: 'admin', createdAt: new Date(Date.now() - 3600_000).toISOString() }] });
      if (req.method === 'POST') return send(res, 201, { token: 'fwt_new', info: { id: 'tk_2', user: body?.user, createdAt: new Date().toISOString() } });
      return send(res, 204);
    }
    if (parts[0] === 'events') {
      if (url.searchParams.get('format') === 'json') {
        const after = Number(url.searchParams.get('after') ?? 0);
        return send(res, 200, { items: api.events.filter((e) => e.seq > after) });
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hello\n\n');
      const types = url.searchParams.get('type')?.split(',');
      let sent = 0;
      const push = (e: FakeApi['events'][number]) => {
        if (types && !types.includes(e.type)) return;
        res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        sent++;
        if (api.dropStreamAfter !== undefined && sent >= api.dropStreamAfter) {
          streams.delete(push);
          // Drops the connection mid-stream once what was written has reached the socket
          // (Node 22+ buffers a response's writes until the next tick).
          res.write('', () => res.socket?.end());
        }
      };
      const last = Number(req.headers['last-event-id'] ?? NaN);
      if (!Number.isNaN(last)) for (const e of api.events.filter((x) => x.seq > last)) push(e);
      streams.add(push);
      req.on('close', () => streams.delete(push));
      return;
    }
    if (parts[0] === 'apply' && req.method === 'POST') {
      const docs = (body?.documents ?? []) as Array<Record<string, unknown>>;
      const bad = docs.findIndex((d) => d.bad);
      if (bad >= 0) return sendErr(res, 400, 'VALIDATION', 'the documents are invalid', { errors: [{ path: `/documents/${bad}/bad`, message: 'is not allowed' }] });
      const results = docs.map((d) => {
        const plural = `${String(d.kind).toLowerCase()}s`;
        const list = (api.objects[plural] ??= []);
        const existing = list.find((o) => o.name === d.name);
        const { kind: _k, ...fields } = d;
        if (!existing) {
          const o = { id: `id-${d.name}`, version: 1, labels: {}, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), ...fields } as unknown as Obj;
          list.push(o);
          return { kind: d.kind, name: d.name, action: 'created', object: o };
        }
        return { kind: d.kind, name: d.name, action: 'unchanged', object: existing };
      });
      return send(res, 200, { results });
    }
    const list = api.objects[parts[0]];
    if (!list) return sendErr(res, 404, 'NOT_FOUND', `no route ${url.pathname}`);
    if (parts.length === 1 && req.method === 'GET') {
      let items = list;
      for (const [k, v] of url.searchParams) {
        if (k === 'limit' || k === 'after') continue;
        if (k === 'label') {
          const [lk, lv] = v.split('=');
          items = items.filter((o) => (o.labels as Record<string, string>)?.[lk] === lv);
        } else items = items.filter((o) => String(o[k]) === v);
      }
      const after = url.searchParams.get('after');
      const start = after ? items.findIndex((o) => o.id === after) + 1 : 0;
      const limit = Number(url.searchParams.get('limit') ?? PAGE);
      const page = items.slice(start, start + limit);
      const more = start + limit < items.length;
      return send(res, 200, { items: page, ...(more ? { next: page[page.length - 1].id } : {}) });
    }
    const obj = list.find((o) => o.id === parts[1] || o.name === parts[1]);
    if (!obj) return sendErr(res, 404, 'NOT_FOUND', `${parts[0]} "${parts[1]}" does not exist`, { key: parts[1] });
    if (req.method === 'GET') return send(res, 200, obj);
    if (req.method === 'DELETE') {
      list.splice(list.indexOf(obj), 1);
      return send(res, 204);
    }
    return sendErr(res, 400, 'VALIDATION', 'unsupported in the fake');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

export function fakeObject(name: string, fields: Record<string, unknown> = {}): Obj {
  const t = new Date(Date.now() - 5 * 60_000).toISOString();
  return { id: `id-${name}`, name, version: 1, labels: {}, createdAt: t, updatedAt: t, ...fields };
}
