import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { FormworkError } from '../../core/errors.js';
import { kindByName } from '../../core/kinds.js';
import type { Services } from '../../context/services.js';
import type { FormworkEvent } from '../../store/events.js';
import { ADMIN_ONLY_TYPES } from '../auth.js';
import { ErrorResponse } from '../errors.js';
import { EventPage } from '../../core/wire.js';

/**
 * `GET /api/v1/events`: the event stream as Server-Sent Events (`id:` the sequence,
 * `event:` the type, `data:` the event as JSON), resumable with `Last-Event-ID` or
 * `?after=`; or, with `?format=json`, one page of events as JSON.
 * Events of users, tokens and secrets reach admins only.
 *
 * @example
 *   curl -N -H "Authorization: Bearer $T" 'http://127.0.0.1:7480/api/v1/events?type=nodes&key=web-1'
 */

export interface EventRouteOptions {
  /** Interval of the `: heartbeat` comment (default 15 s). */
  heartbeatMs?: number;
}

type Query = { type?: string; key?: string; after?: number; limit?: number; format?: 'sse' | 'json' };

function list(v: string | undefined): string[] | undefined {
  const items = v?.split(',').map((s) => s.trim()).filter(Boolean);
  return items?.length ? items : undefined;
}

export function eventRoutes(opts: EventRouteOptions = {}) {
  return async (app: FastifyInstance, services: Services): Promise<void> => {
    const heartbeatMs = opts.heartbeatMs ?? 15_000;
    const open = new Set<() => void>();
    // Streams never end by themselves: end them so the server can close.
    app.addHook('preClose', async () => {
      for (const end of [...open]) end();
    });

    app.get('/api/v1/events', {
      config: { auth: 'viewer' },
      schema: {
        tags: ['events'],
        summary: 'The event stream (Server-Sent Events), or a page of events as JSON',
        description:
          'SSE: each event has `id:` (its sequence number), `event:` (its type, e.g. `nodes`) and `data:` (the event as JSON); a `: heartbeat` comment every 15 s. ' +
          'Resume with the `Last-Event-ID` header or `?after=`; without either the stream starts now. `?format=json` returns `{items, next?}` instead (default limit 100).',
        querystring: Type.Object(
          {
            type: Type.Optional(Type.String({ description: 'Comma-separated types (kinds), e.g. `nodes,noderoles`' })),
            key: Type.Optional(Type.String({ description: 'Comma-separated object names' })),
            after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Only events with a larger sequence number' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            format: Type.Optional(Type.Unsafe<'sse' | 'json'>({ type: 'string', enum: ['sse', 'json'] })),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String()) }),
        response: {
          200: EventPage,
          400: ErrorResponse,
          401: ErrorResponse,
        },
      },
    }, async (request: FastifyRequest<{ Querystring: Query }>, reply) => {
      const q = request.query;
      const types = list(q.type)?.map((t) => kindByName(t)?.plural ?? t);
      const keys = list(q.key);
      const isAdmin = request.principal?.role === 'admin';
      const visible = (e: FormworkEvent) => isAdmin || !ADMIN_ONLY_TYPES.has(e.type);
      const lastId = request.headers['last-event-id'];
      let after = q.after;
      if (typeof lastId === 'string' && lastId.trim() !== '') {
        const seq = Number(lastId.trim());
        if (!/^\d+$/.test(lastId.trim()) || seq > Number.MAX_SAFE_INTEGER) {
          throw new FormworkError('VALIDATION', `Last-Event-ID must be an event sequence number (at most ${Number.MAX_SAFE_INTEGER}), got ${JSON.stringify(lastId)}: send the id of the last event you received`, {
            errors: [{ path: 'headers/last-event-id', message: 'must be an event sequence number' }],
          });
        }
        after = seq;
      }

      if (q.format === 'json') {
        const limit = q.limit ?? 100;
        const events = await services.store.events.list({ types, keys, after: after ?? 0 }, limit);
        const next = events.length === limit ? events[events.length - 1].seq : undefined;
        return { items: events.filter(visible), ...(next !== undefined ? { next } : {}) };
      }

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const unsubscribe = services.store.events.subscribe(
        { types, keys, after },
        (e) => {
          if (!visible(e)) return;
          res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        },
        (err) => {
          // The replay failed: end the stream; the client reconnects with Last-Event-ID.
          request.log.warn({ err }, 'event replay failed; ending the stream');
          end();
        },
        // Only now: a client that writes once it sees this must get what it wrote.
        () => {
          if (ended) return;
          res.write(': connected\n\n');
          heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
          heartbeat.unref();
        },
      );
      let heartbeat: NodeJS.Timeout | undefined;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(end);
        if (!res.writableEnded) res.end();
      };
      open.add(end);
      request.raw.on('close', end);
      res.on('close', end);
      res.on('error', end);
    });
  };
}
