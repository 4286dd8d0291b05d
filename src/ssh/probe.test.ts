import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForPort } from './probe.js';
import { catchErr } from './testing/assertions.js';
import { freePort } from './testing/sshd.js';

// A plain TCP listener: all the probe looks for (no SSH server needed).
let listener: Server;
let listenerPort: number;

beforeAll(async () => {
  listener = createServer((s) => s.destroy());
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  listenerPort = (listener.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => listener?.close(r));
});

describe('waitForPort', () => {
  it('returns when the port answers', async () => {
    await waitForPort('127.0.0.1', listenerPort, 2000);
  });

  it('retries until a late listener appears', async () => {
    const port = await freePort();
    const srv = createServer((s) => s.destroy());
    const t = setTimeout(() => srv.listen(port, '127.0.0.1'), 400);
    try {
      await waitForPort('127.0.0.1', port, Date.now() + 5000, { intervalMs: 100 });
    } finally {
      clearTimeout(t);
      srv.close();
    }
  });

  it('gives SSH_UNREACHABLE at the deadline', async () => {
    const port = await freePort();
    const start = Date.now();
    const err = await catchErr(waitForPort('127.0.0.1', port, 600, { intervalMs: 100 }));
    expect(err.code).toBe('SSH_UNREACHABLE');
    expect(err.details).toMatchObject({ port });
    const took = Date.now() - start;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(2000);
  });
});
