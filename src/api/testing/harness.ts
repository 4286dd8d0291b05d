import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Services } from '../../context/services.js';
import type { StoreEngine, TestStore } from '../../store/testing/engines.js';
import { buildApi, type ApiOptions } from '../app.js';
import { createLogger } from '../logging.js';

/**
 * An API over a test store, with one token per role and a captured log.
 *
 * @example
 *   const h = await openHarness(engine);
 *   const res = await h.call('POST', '/api/v1/nodes', { body: { name: 'a' } }); // as admin
 *   await h.close();
 */

export interface Harness {
  t: TestStore;
  services: Services;
  app: FastifyInstance;
  tokens: { admin: string; operator: string; viewer: string };
  /** Everything the API logged (JSON lines). */
  log(): string;
  call(method: InjectOptions['method'], url: string, opts?: { body?: unknown; token?: string | null; headers?: Record<string, string>; payload?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function openHarness(engine: StoreEngine, opts: Omit<ApiOptions, 'logger'> = {}): Promise<Harness> {
  const t = await engine.open();
  const services: Services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const app = buildApi(services, { ...opts, logger: createLogger({ level: 'trace', destination: sink }) });
  await app.ready();
  const auth = t.store.auth;
  const tokens = { admin: '', operator: '', viewer: '' };
  for (const role of ['admin', 'operator', 'viewer'] as const) {
    await auth.ensureUser(`${role}-user`, role);
    tokens[role] = (await auth.createToken(`${role}-user`)).token;
  }
  return {
    t,
    services,
    app,
    tokens,
    log: () => chunks.join(''),
    call(method, url, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const token = o.token === undefined ? tokens.admin : o.token;
      if (token) headers.authorization = `Bearer ${token}`;
      const req: InjectOptions = { method, url, headers };
      if (o.payload !== undefined) req.payload = o.payload;
      else if (o.body !== undefined) req.payload = o.body as InjectOptions['payload'];
      return app.inject(req);
    },
    async close() {
      await app.close();
      await t.cleanup();
    },
  };
}
