import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_ENGINES } from '../store/testing/engines.js';
import { openHarness, type Harness } from './testing/harness.js';

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads an SSE response, one frame at a time. */
function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(timeoutMs = 5000): Promise<SseEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = buffer.indexOf('\n\n');
        if (i >= 0) {
          const frame = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const ev: SseEvent = {};
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) ev.comment = line.slice(1).trim();
            else {
              const j = line.indexOf(':');
              (ev as Record<string, string>)[line.slice(0, j)] = line.slice(j + 1).trimStart();
            }
          }
          return ev;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no SSE frame in time');
        const chunk = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no SSE frame in time')), left)),
        ]);
        if (chunk.done) throw new Error('stream ended');
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
    /** The next frame that is an event (skipping comments). */
    async nextEvent(timeoutMs = 5000): Promise<SseEvent> {
      for (;;) {
        const f = await this.next(timeoutMs);
        if (!f.comment) return f;
      }
    },
    cancel: () => reader.cancel(),
  };
}

describe.each(STORE_ENGINES)('SSE events on $name (real socket)', (engine) => {
  let h: Harness;
  let base: string;
  beforeAll(async () => {
    h = await openHarness(engine, { heartbeatMs: 200 });
    base = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const open = async (query: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/api/v1/events${query}`, { headers: { authorization: `Bearer ${h.tokens.admin}`, ...headers } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const r = sseReader(res.body!);
    expect((await r.next()).comment).toBe('connected');
    return r;
  };

  it('delivers a create, sends heartbeats, and resumes from Last-Event-ID without repeats', async () => {
    const start = await h.t.store.events.latestSeq();
    const first = await open(`?type=nodes&after=${start}`);
    const post = await h.call('POST', '/api/v1/nodes', { body: { name: 'sse-1' } });
    expect(post.statusCode).toBe(201);
    const e1 = await first.nextEvent();
    expect(e1.event).toBe('nodes');
    const data = JSON.parse(e1.data!);
    expect(data).toMatchObject({ type: 'nodes', action: 'created', key: 'sse-1', actor: 'admin-user' });
    expect(e1.id).toBe(String(data.seq));
    expect((await first.next(2000)).comment).toBe('heartbeat');
    await first.cancel();

    await h.call('POST', '/api/v1/nodes', { body: { name: 'sse-2' } });
    await h.call('POST', '/api/v1/providers', { body: { name: 'sse-p', type: 'lab' } });
    await h.call('PATCH', '/api/v1/nodes/sse-1', { body: { zone: 'z' } });
    const resumed = await open('?type=nodes', { 'last-event-id': e1.id! });
    const got = [await resumed.nextEvent(), await resumed.nextEvent()].map((e) => {
      const d = JSON.parse(e.data!);
      return `${d.key}:${d.action}`;
    });
    expect(got).toEqual(['sse-2:created', 'sse-1:updated']);
    await h.call('DELETE', '/api/v1/nodes/sse-2');
    expect(JSON.parse((await resumed.nextEvent()).data!)).toMatchObject({ key: 'sse-2', action: 'deleted' });
    await resumed.cancel();
  });

  it('refuses a cursor beyond the largest sequence number (400, not a database error)', async () => {
    const huge = '100000000000000000000';
    const header = await fetch(`${base}/api/v1/events?type=nodes`, { headers: { authorization: `Bearer ${h.tokens.admin}`, 'last-event-id': huge } });
    expect(header.status).toBe(400);
    expect(await header.json()).toMatchObject({ error: { code: 'VALIDATION', message: expect.stringContaining('Last-Event-ID must be an event sequence number') } });
    for (const after of [huge, '1000000000000000000000', String(Number.MAX_SAFE_INTEGER + 2)]) {
      const res = await h.call('GET', `/api/v1/events?format=json&after=${after}`);
      expect(res.statusCode, after).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('VALIDATION');
    }
    expect((await h.call('GET', `/api/v1/events?format=json&after=${Number.MAX_SAFE_INTEGER}`)).statusCode).toBe(200);
  });

  it('ends the stream when the replay of missed events fails, so the client reconnects', async () => {
    const events = h.t.store.events;
    const list = events.list.bind(events);
    events.list = () => Promise.reject(new Error('database unavailable'));
    try {
      const r = await open('?type=nodes&after=0');
      await expect(r.next(3000)).rejects.toThrow('stream ended');
    } finally {
      events.list = list;
    }
  });

  it("says connected only once the stream's start is fixed: what is written right after is delivered", async () => {
    // A slow read of "now" (a busy database) widens the window in which the route used to
    // say connected while the subscription had not yet fixed where it starts.
    const events = h.t.store.events;
    const latestSeq = events.latestSeq.bind(events);
    events.latestSeq = async () => {
      await new Promise((r) => setTimeout(r, 300));
      return latestSeq();
    };
    try {
      const live = await open('?key=sse-right-after');
      await h.call('POST', '/api/v1/nodes', { body: { name: 'sse-right-after' } });
      expect(JSON.parse((await live.nextEvent(3000)).data!)).toMatchObject({ key: 'sse-right-after', action: 'created' });
      await live.cancel();
    } finally {
      events.latestSeq = latestSeq;
    }
  });

  it('filters by key, starts from now without a cursor, and refuses no token', async () => {
    const live = await open('?key=sse-k2');
    await h.call('POST', '/api/v1/nodes', { body: { name: 'sse-k1' } });
    await h.call('POST', '/api/v1/nodes', { body: { name: 'sse-k2' } });
    expect(JSON.parse((await live.nextEvent()).data!)).toMatchObject({ key: 'sse-k2' });
    await live.cancel();
    expect((await fetch(`${base}/api/v1/events`)).status).toBe(401);
  });
});
