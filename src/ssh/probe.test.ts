import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForPort } from './probe.js';
import { catchErr } from './testing/assertions.js';
import { freePort } from './testing/sshd.js';

// A listener that says what an sshd says first: all the probe looks for (no SSH server needed).
const greet = (s: Socket) => s.end('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n');
let listener: Server;
let listenerPort: number;

beforeAll(async () => {
  listener = createServer(greet);
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
    const srv = createServer(greet);
    const t = setTimeout(() => srv.listen(port, '127.0.0.1'), 400);
    try {
      await waitForPort('127.0.0.1', port, Date.now() + 5000, { intervalMs: 100 });
    } finally {
      clearTimeout(t);
      srv.close();
    }
  });

  it('does not take an accepted connection that says nothing, or something else, for an SSH server', async () => {
    const silent = createServer(() => undefined); // accepts and waits, as a transparent proxy does
    const http = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await Promise.all([silent, http].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))));
    try {
      for (const [srv, why] of [[silent, 'no SSH banner'], [http, 'closed without an SSH banner']] as const) {
        const port = (srv.address() as { port: number }).port;
        const err = await catchErr(waitForPort('127.0.0.1', port, 900, { attemptTimeoutMs: 300, intervalMs: 100 }));
        expect(err.code).toBe('SSH_UNREACHABLE');
        expect(err.message).toContain(why);
      }
    } finally {
      for (const srv of [silent, http]) srv.close();
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
