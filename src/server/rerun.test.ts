import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STORE_ENGINES, createTestDatabase } from '../store/testing/engines.js';
import { ADMIN_TOKEN_FILE, startServer, type RunningServer } from './server.js';

/**
 * Issue 11, defect 1: a re-run on change hung the whole server. A's re-run finishes with
 * new outputs, so its child B goes back to `todo`; deciding that read B's role through the
 * root store inside the finishing transaction once the role cache (2 s) had expired, and
 * SQLite's one connection waited on itself. Sleeps of 3 s let the cache expire; with 0.5 s
 * it did not.
 */

const PACK = `name: chain
version: 1.0.0
roles:
  - name: chain-a
    inputs:
      greeting: { type: string, default: hello }
      sleep-seconds: { type: number, default: 0 }
    outputs:
      said: { type: string }
    implementation: { kind: local, file: a.sh }
    timeoutSeconds: 60
    retries: 0
  - name: chain-b
    requires: [chain-a]
    inputs:
      heard: { type: string, from: "outputs(chain-a).said" }
      sleep-seconds: { type: number, default: 0 }
    outputs:
      echoed: { type: string }
    implementation: { kind: local, file: b.sh }
    timeoutSeconds: 60
    retries: 0
`;
const A_SH = `sleep "$FW_INPUT_SLEEP_SECONDS"\nprintf '{"said":"%s"}' "$FW_INPUT_GREETING" > "$FW_OUTPUTS"\n`;
const B_SH = `sleep "$FW_INPUT_SLEEP_SECONDS"\nprintf '{"echoed":"b heard %s"}' "$FW_INPUT_HEARD" > "$FW_OUTPUTS"\n`;

function deployment(greeting: string): Record<string, unknown> {
  return { kind: 'Deployment', name: 'chain', nodes: { count: 1 }, attribs: { greeting, 'sleep-seconds': 3 }, roles: { 'chain-b': { nodes: [0], inputs: { 'sleep-seconds': 3 } } } };
}

describe.each(STORE_ENGINES)('a re-run on change, through the server, on $name', (engine) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(dataDir: string, databaseUrl: string | undefined): Promise<{ server: RunningServer; call: (method: string, url: string, body?: unknown) => Promise<Response> }> {
    const server = await startServer({ dataDir, listen: '127.0.0.1:0', databaseUrl, handleSignals: false, logFile: path.join(dataDir, 'server.log') });
    const stop = server.close.bind(server);
    let closed = false;
    const close = async () => {
      if (!closed) await stop();
      closed = true;
    };
    cleanups.push(close);
    const token = fs.readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    const call = (method: string, url: string, body?: unknown) =>
      fetch(server.url + url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(5000), // a hung server fails the test here, not at its timeout
      });
    return { server: Object.assign(server, { close }), call };
  }

  /** Polls B's node-role (every request must answer) until its outputs are `want`. */
  async function waitForB(call: (m: string, u: string) => Promise<Response>, want: string, ms = 40_000): Promise<void> {
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      const health = await call('GET', '/healthz');
      expect(health.status).toBe(200);
      const res = await call('GET', '/api/v1/noderoles/chain:chain-0:chain-b');
      if (res.status === 200) {
        last = await res.json();
        const nr = last as { state: string; outputs?: { echoed?: string } };
        if (nr.state === 'active' && nr.outputs?.echoed === want) return;
        expect(nr.state, JSON.stringify(nr)).not.toBe('error');
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`chain-b never became active with "${want}"; last seen: ${JSON.stringify(last)}`);
  }

  it('keeps answering while the parent re-runs and the child follows, and after a restart mid-way', { timeout: 120_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-rerun-'));
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    let databaseUrl: string | undefined;
    if (engine.name === 'postgres') {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      databaseUrl = db.url;
    }
    const pack = path.join(dataDir, 'workloads', 'chain');
    fs.mkdirSync(pack, { recursive: true });
    fs.writeFileSync(path.join(pack, 'workload.yaml'), PACK);
    fs.writeFileSync(path.join(pack, 'a.sh'), A_SH);
    fs.writeFileSync(path.join(pack, 'b.sh'), B_SH);

    const first = await start(dataDir, databaseUrl);
    expect((await first.call('POST', '/api/v1/apply', [deployment('one')])).status).toBe(200);
    await waitForB(first.call, 'b heard one');

    // The re-run on change: A runs again (3 s), then B does.
    expect((await first.call('POST', '/api/v1/apply', [deployment('two')])).status).toBe(200);
    await waitForB(first.call, 'b heard two');

    // And with a restart while the re-run is pending.
    expect((await first.call('POST', '/api/v1/apply', [deployment('three')])).status).toBe(200);
    await first.server.close();
    const second = await start(dataDir, databaseUrl);
    await waitForB(second.call, 'b heard three');
  });
});
