import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../server/server.js';
import type { FormworkEvent } from '../core/kinds.js';
import { ApiError, FormworkClient } from './client.js';
import { FetchTransport } from './fetch-transport.js';
import { httpClient } from './node-transport.js';

/**
 * The typed client is written against a Transport only: the same calls, against a real
 * server, give the same answers over node:http (the CLI's) and over fetch (a browser's).
 */

let dir: string;
let server: RunningServer;
let token: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-transports-'));
  server = await startServer({ dataDir: dir, databaseUrl: '', listen: '127.0.0.1:0', handleSignals: false, logFile: path.join(dir, 'server.log'), assemble: { engine: false } });
  token = fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
});
afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const TRANSPORTS: Array<{ name: string; make: (endpoint: string, token?: string) => FormworkClient }> = [
  { name: 'node:http', make: (endpoint, token) => httpClient({ endpoint, ...(token ? { token } : {}) }) },
  { name: 'fetch', make: (endpoint, token) => new FormworkClient({ transport: new FetchTransport({ endpoint }), ...(token ? { token } : {}) }) },
];

/** Every call the CLI makes, in one pass; `tag` keeps the two transports' objects apart. */
async function exercise(client: FormworkClient, tag: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  const ac = new AbortController();
  const events: FormworkEvent[] = [];
  const stream = (async () => {
    for await (const e of client.events({ types: ['deployments'], key: `d-${tag}`, signal: ac.signal })) {
      events.push(e);
      if (e.action !== 'created') ac.abort(); // the commit's `state` event
    }
  })();
  await new Promise((r) => setTimeout(r, 100)); // the stream is open before the writes it waits for

  seen.push(await client.health());
  seen.push(await client.whoami().then((w) => ({ user: w.user, role: w.role })));
  const applied = await client.apply([
    { kind: 'Provider', name: `p-${tag}`, type: 'static', settings: { machines: [] } },
    { kind: 'Deployment', name: `d-${tag}`, provider: `p-${tag}`, nodes: [], commit: false },
  ]);
  seen.push(applied.map((r) => [r.kind, r.name.replace(tag, '*'), r.action]));
  seen.push((await client.deploymentTree(`d-${tag}`)).deployment.state);
  seen.push((await client.commit(`d-${tag}`)).changed);
  const listed = await client.listAll('providers', { labels: {}, fields: { type: 'static' } });
  seen.push(listed.some((p) => p.name === `p-${tag}`));
  const p = await client.get('provider', `p-${tag}`);
  const patched = await client.patch('providers', p.name, { labels: { env: tag } }, { ifMatch: p.version });
  seen.push(patched.version - p.version);
  const stale = await client.patch('providers', p.name, { labels: {} }, { ifMatch: p.version }).catch((e: unknown) => e);
  seen.push([(stale as ApiError).code, (stale as ApiError).status]);
  const missing = await client.get('nodes', 'nope').catch((e: unknown) => e);
  seen.push([missing instanceof ApiError, (missing as ApiError).code, (missing as ApiError).status]);
  const created = await client.createToken({ user: `u-${tag}`, role: 'viewer' });
  seen.push((await client.listTokens()).some((t) => t.id === created.info.id));
  await client.revokeToken(created.info.id);
  seen.push(Boolean((await client.listTokens()).find((t) => t.id === created.info.id)?.revokedAt));
  const after = (await client.eventsAfter(0, { types: ['providers'], key: `p-${tag}` })).map((e) => e.action);
  seen.push(after);
  await stream;
  seen.push(events.map((e) => [e.type, e.action]));
  await client.delete('providers', `p-${tag}`).catch((e: unknown) => e);
  return seen;
}

describe('the typed client over each transport, against a real server', () => {
  const results = new Map<string, unknown[]>();

  it.each(TRANSPORTS)('answers every call over $name', async ({ name, make }) => {
    const client = make(server.url, token);
    try {
      const seen = await exercise(client, name === 'fetch' ? 'f' : 'n');
      expect(seen[0]).toEqual({ status: 'ok', store: 'sqlite' });
      expect(seen[1]).toEqual({ user: 'admin', role: 'admin' });
      expect(seen[2]).toEqual([['Provider', 'p-*', 'created'], ['Deployment', 'd-*', 'created']]);
      expect(seen.slice(3)).toEqual(['proposed', 0, true, 1, ['VERSION_MISMATCH', 412], [true, 'NOT_FOUND', 404], true, true, ['created', 'updated'], [['deployments', 'created'], ['deployments', 'state']]]);
      results.set(name, seen);
    } finally {
      client.close();
    }
  });

  it('gives the same answers over both', () => {
    expect(results.size).toBe(2);
    expect(results.get('fetch')).toEqual(results.get('node:http'));
  });

  it.each(TRANSPORTS)('refuses the event stream without a token over $name, with the server’s error', async ({ make }) => {
    const client = make(server.url);
    try {
      await expect(client.events()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    } finally {
      client.close();
    }
  });
});

describe('the typed surface loads in a browser', () => {
  it('imports no node: module, directly or through what it imports', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*import\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]/gm)) {
        if (m[1]) continue; // types load nothing
        expect(m[2], `${path.relative(import.meta.dirname, file)} imports ${m[2]}`).not.toMatch(/^node:/);
        if (m[2].startsWith('.')) visit(path.resolve(path.dirname(file), m[2]).replace(/\.js$/, '.ts'));
      }
    };
    for (const f of ['client.ts', 'fetch-transport.ts', 'transport.ts', 'sse.ts']) visit(path.join(import.meta.dirname, f));
    expect(seen.size).toBeGreaterThan(4);
  });
});
