import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureServer } from './background-server.js';
import { CliContext, pidAlive } from './context.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-lab-'));
  dirs.push(d);
  return d;
}

const startedPid = (s: string) => Number(/pid (\d+)/.exec(s)?.[1]);

describe('ensureServer (the background server up and down start)', { timeout: 60_000 }, () => {
  it('records the server in up.json as soon as it is spawned, and stops it when interrupted while it starts', async () => {
    const dataDir = tmp();
    const ac = new AbortController();
    const ctx = new CliContext({ stdout: { write() {} }, stderr: { write() {} }, stdin: (async function* () {})(), env: {}, cwd: dataDir, signal: ac.signal });
    ctx.globals = { dataDir };
    let pid = 0;
    let recorded: unknown;
    const failed = await ensureServer(ctx, '127.0.0.1:0', (s) => {
      pid = startedPid(s);
      recorded = JSON.parse(fs.readFileSync(path.join(dataDir, 'up.json'), 'utf8'));
      ac.abort(); // Ctrl-C before the server answers
    }).catch((e: Error) => e);
    expect(recorded).toEqual({ serverPid: pid });
    expect(String(failed)).toContain(`interrupted while the background server started; stopped it (pid ${pid})`);
    expect(pidAlive(pid)).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'up.json'))).toBe(false);
  });

  it('stops a server that does not answer in time before failing', async () => {
    const dataDir = tmp();
    const ctx = new CliContext({ stdout: { write() {} }, stderr: { write() {} }, stdin: (async function* () {})(), env: {}, cwd: dataDir });
    ctx.globals = { dataDir };
    let pid = 0;
    const failed = await ensureServer(ctx, '127.0.0.1:0', (s) => (pid = startedPid(s)), { startTimeoutMs: 1 }).catch((e: Error) => e);
    expect(String(failed)).toContain(`did not answer within 0 s; stopped it (pid ${pid})`);
    expect(pidAlive(pid)).toBe(false);
  });
});
