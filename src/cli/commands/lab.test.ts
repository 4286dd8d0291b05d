import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CliContext } from '../context.js';
import { buildProgram, main } from '../main.js';

const dirs: string[] = [];
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-lab-'));
  dirs.push(d);
  return d;
}

/** An HTTP server answering with `h` (404 when it returns undefined); the requests it saw. */
async function fakeServer(h: (req: http.IncomingMessage) => unknown): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      const body = h(req);
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: { code: 'NOT_FOUND', message: 'not found' } }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => (srv.closeAllConnections(), srv.close(r))));
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, seen };
}

async function run(argv: string[], io: { env?: Record<string, string>; isTTY?: boolean; columns?: number } = {}) {
  let out = '';
  let err = '';
  const stdout = { write: (s: string) => (out += s), isTTY: io.isTTY, columns: io.columns };
  const code = await main(argv, { stdout, stderr: { write: (s: string) => (err += s) }, env: io.env ?? {}, cwd: os.tmpdir() });
  return { code, out, err };
}

describe('formwork down', () => {
  it('where up never ran: says so, starts nothing and creates no data dir', async () => {
    const dataDir = path.join(tmp(), '.formwork');
    const r = await run(['--data-dir', dataDir, 'down', '--listen', '127.0.0.1:0']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(`Nothing to remove in ${dataDir}: \`formwork up\` has not run there.\n`);
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('says that a server it did not start (no up.json) is left running', async () => {
    const dataDir = tmp();
    const srv = await fakeServer((req) => (req.url === '/healthz' || req.method === 'DELETE' ? { ok: true } : undefined));
    const other = spawn('sleep', ['60']);
    cleanup.push(() => other.kill());
    fs.writeFileSync(path.join(dataDir, 'server.json'), JSON.stringify({ url: srv.url, pid: other.pid }));
    const r = await run(['--data-dir', dataDir, 'down']);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`the server serving ${dataDir} (pid ${other.pid}) was not started by \`formwork up\` (no up.json) and is left running`);
    expect(srv.seen).toContain('DELETE /api/v1/deployments/demo');
  });
});

describe('formwork up --wait', () => {
  async function upOptions(argv: string[]) {
    const ctx = new CliContext({ stdout: { write() {} }, stderr: { write() {} }, stdin: (async function* () {})(), env: {}, cwd: os.tmpdir() });
    const program = buildProgram(ctx);
    let got: unknown;
    program.commands.find((c) => c.name() === 'up')!.action((opts: unknown) => void (got = opts));
    await program.parseAsync(argv, { from: 'user' });
    return { up: got as { wait?: number }, globals: ctx.globals };
  }

  it('takes a duration for up; --timeout stays the program-wide request timeout', async () => {
    expect((await upOptions(['up', '--wait', '90s'])).up.wait).toBe(90);
    expect((await upOptions(['up', '--wait', '1h'])).up.wait).toBe(3600);
    expect((await upOptions(['up'])).up.wait).toBeUndefined(); // 20 minutes
    const both = await upOptions(['up', '--timeout', '60', '--wait', '5m']);
    expect(both.up.wait).toBe(300);
    expect(both.globals.timeout).toBe(60_000);
    await expect(upOptions(['up', '--wait', 'soon'])).rejects.toThrow('"soon" is not a duration');
  });
});

describe('formwork up, following the deployment', () => {
  const nr = (node: string, role: string, state: string, extra: object = {}) => ({ name: `demo:${node}:${role}`, role, state, ...extra });
  /** A server whose demo tree is `trees[i]` at the i-th look (the last one from then on). */
  async function treeServer(trees: Array<Array<{ name: string; noderoles: unknown[] }>>) {
    let i = 0;
    return fakeServer((req) => {
      if (req.url === '/healthz') return { ok: true };
      if (req.url === '/api/v1/apply') return { results: [] };
      if (req.url?.endsWith('/log')) return { log: 'E: Unable to locate package etcd-server' };
      if (req.url?.startsWith('/api/v1/deployments/demo/tree')) return { nodes: trees[Math.min(i++, trees.length - 1)], other: [], counts: {} };
      return undefined;
    });
  }

  it('prints why a node-role is blocked, again when the reason changes, and lists blocked ones at the end', { timeout: 20_000 }, async () => {
    const waiting = 'waiting for demo:demo-1:etcd-member (running)';
    const parentFailed = 'parent demo:demo-1:etcd-member failed: role etcd-member on node demo-1 exited with 100';
    const tree = (failed: boolean) => [
      { name: 'demo-0', noderoles: [nr('demo-0', 'etcd-healthy', 'blocked', { blockedReason: failed ? parentFailed : waiting })] },
      { name: 'demo-1', noderoles: [failed ? nr('demo-1', 'etcd-member', 'error', { lastError: { message: 'role etcd-member on node demo-1 exited with 100' } }) : nr('demo-1', 'etcd-member', 'running')] },
    ];
    const srv = await treeServer([tree(false), tree(true)]);
    const r = await run(['--endpoint', srv.url, '--token', 't', 'up']);
    expect(r.code).not.toBe(0);
    const lines = r.out.split('\n').map((l) => l.slice(9)); // without the time
    expect(lines).toContain(`demo:demo-0:etcd-healthy blocked: ${waiting}`);
    expect(lines).toContain(`demo:demo-0:etcd-healthy blocked: ${parentFailed}`);
    expect(r.err).toContain(`blocked:\n  demo:demo-0:etcd-healthy: ${parentFailed}\n`);
    expect(r.err).toContain('1 node-role(s) failed, 1 blocked');
  });

  it('on a terminal: one row per node, whatever the messages hold, within the terminal width', async () => {
    const message = 'node demo-0: post-provisioning steps failed (exit 1): line one\nline two\x1b[2J\nline three';
    const srv = await treeServer([
      [{ name: 'demo-0', noderoles: [nr('demo-0', 'node-ready', 'running'), nr('demo-0', 'etcd-member', 'blocked', { blockedReason: 'waiting for demo:demo-0:node-ready (running)' })] }],
      [{ name: 'demo-0', noderoles: [nr('demo-0', 'node-ready', 'error', { lastError: { message } }), nr('demo-0', 'etcd-member', 'blocked', { blockedReason: 'parent demo:demo-0:node-ready failed: x' })] }],
    ]);
    const r = await run(['--endpoint', srv.url, '--token', 't', 'up'], { isTTY: true, columns: 60 });
    expect(r.code).not.toBe(0);
    const frames = r.out.split(/\x1b\[\d+A/);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const frame of frames) {
      const rows = frame.split('\n').slice(0, -1).map((l) => l.replace(/^\x1b\[2K/, ''));
      expect(rows).toHaveLength(1);
      expect(Array.from(rows[0]).length).toBeLessThanOrEqual(59);
      expect(rows[0]).not.toMatch(/[\x00-\x1f]/);
    }
    expect(frames[0]).toContain('node-ready running');
    expect(frames.at(-1)).toContain('✖ demo-0');
    expect(frames.at(-1)).toMatch(/node-ready failed: node demo-0: post-…\n$/);
  });
});
