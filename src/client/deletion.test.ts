import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../server/server.js';
import { createTestDatabase } from '../store/testing/engines.js';
import type { FormworkClient } from './client.js';
import { httpClient } from './node-transport.js';
import { awaitDeletion } from './deletion.js';

/** What `formwork delete` waits with: the object's progress while a worker deletes it, and its end. */
describe.each(['sqlite', 'postgres'] as const)('waiting for a deletion on %s', (engine) => {
  let dir: string;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let server: RunningServer;
  let client: FormworkClient;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-delete-'));
    db = engine === 'postgres' ? await createTestDatabase() : undefined;
    server = await startServer({ dataDir: dir, databaseUrl: db?.url ?? '', listen: '127.0.0.1:0', handleSignals: false, logFile: path.join(dir, 'server.log'), assemble: { engine: { tickMs: 20, retryBaseMs: 20 } } });
    client = httpClient({ endpoint: server.url, token: fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim() });
    const store = server.services.store;
    await store.objects('providers').create({ name: 'st', type: 'static', settings: { machines: [{ name: 'm1', address: '198.18.0.10', user: 'root' }] } });
    await store.objects('nodes').create({ name: 'n1', provider: 'st', nativeId: 'm1' });
    await store.objects('noderoles').create({ name: 'demo:n1:web', node: 'n1', deployment: 'demo', role: 'web', state: 'running', leaseOwner: 'elsewhere', leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() });
  });
  afterEach(async () => {
    client.close();
    await server.close();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports what the deletion waits for, and returns once the object is gone', async () => {
    const marked = await client.delete('nodes', 'n1');
    expect(marked?.deletion).toMatchObject({ attempts: 0 });
    const lines: string[] = [];
    let released = false;
    const done = awaitDeletion(client, 'nodes', marked!, {
      pollMs: 100,
      onProgress: (line) => {
        lines.push(line);
        // The running node-role ends: the machine is released and the node goes.
        if (line.includes('waiting') && !released) {
          released = true;
          void server.services.store.objects('noderoles').update('demo:n1:web', { state: 'active', leaseOwner: null, leaseExpiresAt: null });
        }
      },
    });
    await done;
    expect(lines).toContain('n1: waiting: node-roles still running: demo:n1:web');
    expect(new Set(lines).size).toBe(lines.length); // each line once
    expect(await server.services.store.objects('nodes').find('n1')).toBeUndefined();
  });

  it('a deletion that gives up ends the wait with its error', async () => {
    await server.services.store.objects('noderoles').update('demo:n1:web', { state: 'active', leaseOwner: null, leaseExpiresAt: null });
    // The static provider's claims file is unreadable: a PROVIDER_ERROR that is not retryable.
    fs.mkdirSync(path.join(dir, 'providers', 'st'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'providers', 'st', 'claims.json'), '{not json');
    const marked = await client.delete('nodes', 'n1');
    const err = await awaitDeletion(client, 'nodes', marked!, { pollMs: 100 }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(err).toMatchObject({ code: 'PROVIDER_ERROR' });
    expect(err!.message).toMatch(/^n1: deletion gave up after 1 attempt\(s\): .*claims\.json.*; fix the cause and delete it again$/);
    expect((await server.services.store.objects('nodes').get('n1')).deletion).toMatchObject({ failed: true });
  });
});
