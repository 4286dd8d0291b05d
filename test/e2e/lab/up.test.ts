/**
 * End-to-end: the main job as a user runs it (root only). `formwork up` is interrupted
 * mid-way and run again (it converges: no duplicate hosts), etcd answers through haproxy,
 * a stopped member does not stop writes, `formwork conformance` is all green, and
 * `formwork down` leaves no namespace, mount, link, process or state file behind.
 *
 * Uses the built CLI (bin/formwork.js → dist; `npm run test:e2e:lab` builds first) and a
 * base image cached in $FORMWORK_LAB_CACHE, hard-linked into the test's data dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBaseImage, labLeftovers, missingTools, processesMatching } from '../../../src/providers/lab/index.js';
import { freePort } from '../../../src/ssh/testing/sshd.js';

const pexec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'bin/formwork.js');
const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : !fs.existsSync(path.join(ROOT, 'dist/cli/main.js')) ? 'not built: run npm run build' : '';
if (skipReason) console.warn(`lab up e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe.skipIf(!!skipReason)('formwork up / conformance / down on real lab hosts', () => {
  let dataDir = '';
  let listen = '';
  const env = () => ({ ...process.env, FORMWORK_DATA_DIR: dataDir, FORMWORK_ENDPOINT: '', FORMWORK_TOKEN: '' });

  function formwork(args: string[], opts: { interruptWhen?: RegExp; timeoutMs?: number } = {}): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let interrupted = false;
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
      const watch = () => {
        if (!interrupted && opts.interruptWhen?.test(stdout)) {
          interrupted = true;
          child.kill('SIGINT');
        }
      };
      child.stdout.on('data', (c: Buffer) => ((stdout += c.toString()), watch()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  const api = async (p: string, init: RequestInit = {}) => {
    const url = JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')).url as string;
    const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(url + p, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    return (await res.json()) as Record<string, unknown>;
  };

  async function allEvents(): Promise<unknown[]> {
    const out: Array<{ seq: number }> = [];
    for (;;) {
      const page = (await api(`/api/v1/events?format=json&limit=1000&after=${out.at(-1)?.seq ?? 0}`)) as { items: Array<{ seq: number }> };
      out.push(...page.items);
      if (page.items.length < 1000) return out;
    }
  }

  async function etcdRoundTrip(frontend: string, key: string): Promise<boolean> {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    try {
      const put = await fetch(`http://${frontend}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(key), value: b64(key + '-v') }), signal: AbortSignal.timeout(5000) });
      if (!put.ok) return false;
      const got = (await (await fetch(`http://${frontend}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(key) }), signal: AbortSignal.timeout(5000) })).json()) as { kvs?: Array<{ value: string }> };
      return Buffer.from(got.kvs?.[0]?.value ?? '', 'base64').toString() === key + '-v';
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    const base = await ensureBaseImage(CACHE, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
    dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-up-e2e-'));
    fs.mkdirSync(path.join(dataDir, 'lab'), { recursive: true });
    // Hard links: instant, and the base is only ever an overlay's read-only lower layer.
    await pexec('cp', ['-al', base, path.join(dataDir, 'lab', 'base')]);
    listen = `127.0.0.1:${await freePort()}`;
  }, 900_000);

  afterAll(async () => {
    if (!dataDir) return;
    const left = await formwork(['down', '--listen', listen], { timeoutMs: 120_000 });
    if (left.code !== 0) console.error('cleanup down failed', left.stderr);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 180_000);

  it('converges after an interrupted up, with no duplicate hosts', async () => {
    // Subnet 11 (198.18.22.0/24): a developer's own `formwork up` on subnet 0 is left alone.
    const first = await formwork(['up', '--listen', listen, '--subnet-index', '11'], { interruptWhen: /provision (running|active)/ });
    expect(first.code).not.toBe(0);
    const second = await formwork(['up', '--listen', listen, '--subnet-index', '11']);
    expect(second.stderr + second.stdout).toContain('Formwork is up');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/proof\s+wrote formwork-up=".*" through haproxy and read it back/);
    const nodes = (await api('/api/v1/nodes')).items as Array<{ name: string; state: string }>;
    expect(nodes.map((n) => n.name).sort()).toEqual(['demo-0', 'demo-1', 'demo-2', 'demo-3']);
    expect(nodes.every((n) => n.state === 'ready')).toBe(true);
    const hostFiles = fs.readdirSync(path.join(dataDir, 'providers', 'lab', 'hosts'));
    expect(hostFiles.filter((f) => f.endsWith('.json'))).toHaveLength(4);
    // The provider was prepared (bridges, package proxy) and says so.
    expect(await api('/api/v1/providers/lab')).toMatchObject({ state: 'ready' });
  }, 900_000);

  it('serves etcd through haproxy, and writes survive a stopped member', async () => {
    const tree = (await api('/api/v1/deployments/demo/tree')) as { counts: Record<string, number> };
    expect(Object.keys(tree.counts)).toEqual(['active']);
    const haproxy = (await api('/api/v1/noderoles/demo:demo-3:haproxy')) as { outputs: { frontend: string } };
    const frontend = haproxy.outputs.frontend;
    expect(await etcdRoundTrip(frontend, 'before')).toBe(true);

    const member = (await api('/api/v1/nodes/demo-1')) as { addresses: Array<{ address: string; role: string }>; loginUser: string };
    const pub = member.addresses.find((a) => a.role === 'public')!.address;
    await pexec('ssh', ['-i', path.join(dataDir, 'ssh', 'id_ed25519'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${member.loginUser}@${pub}`, 'sudo systemctl stop etcd && ! systemctl is-active -q etcd'], { timeout: 30_000 });
    // If the stopped member led the cluster, the other two elect a leader within about a
    // second: a client retries through that, as etcd's own clients do.
    let ok = 0;
    for (let i = 0; i < 10; i++) {
      const deadline = Date.now() + 5000;
      let done = await etcdRoundTrip(frontend, `after-${i}`);
      while (!done && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        done = await etcdRoundTrip(frontend, `after-${i}`);
      }
      if (done) ok++;
    }
    expect(ok).toBe(10);
  }, 120_000);

  it('keeps the generated cluster token secret: on the hosts, never in the API, events, runs, server log or the hosts\' journal', async () => {
    const member = (await api('/api/v1/nodes/demo-0')) as { addresses: Array<{ address: string; role: string }>; loginUser: string };
    const pub = member.addresses.find((a) => a.role === 'public')!.address;
    const onHost = async (command: string) =>
      (await pexec('ssh', ['-i', path.join(dataDir, 'ssh', 'id_ed25519'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${member.loginUser}@${pub}`, command], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 })).stdout;
    // etcd's configuration: a file only etcd (and root) can read.
    const [mode, config] = (await onHost('sudo stat -c "%a %U" /etc/etcd/formwork.yml; sudo cat /etc/etcd/formwork.yml')).split(/\n(.*)/s);
    expect(mode).toBe('600 etcd');
    const token = (JSON.parse(config) as Record<string, string>)['initial-cluster-token'];
    expect(token.length).toBeGreaterThan(20);
    expect(await onHost('cat /etc/default/etcd')).not.toContain(token);
    // Nor in the host's journal: etcd-member runs with sudo, which logs each command line,
    // and etcd logs every ETCD_* variable it reads, with its value.
    const journal = await onHost('sudo journalctl --no-pager -o cat');
    expect(journal).toContain('COMMAND='); // sudo's own lines are there…
    expect(journal).toContain('ETCD_CONFIG_FILE'); // …and etcd's…
    expect(journal).not.toContain(token); // …without the token
    const seen = JSON.stringify([
      await api('/api/v1/noderoles?limit=1000'),
      await api('/api/v1/runs?limit=1000'),
      await allEvents(),
    ]);
    expect(seen).toContain('etcd-member');
    expect(seen).not.toContain(token);
    expect(fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8')).not.toContain(token);
  }, 60_000);

  it('passes conformance on every node and check', async () => {
    const r = await formwork(['conformance', '-o', 'json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { passed: boolean; nodes: Array<{ results: Array<{ ok: boolean }> }> };
    expect(report.passed).toBe(true);
    expect(report.nodes).toHaveLength(4);
    expect(report.nodes.flatMap((n) => n.results).filter((x) => !x.ok)).toEqual([]);
    expect(report.nodes[0].results).toHaveLength(6);
  }, 120_000);

  it('never left a transaction to query the database (no TRANSACTION_REENTRY in the server log)', () => {
    const log = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8');
    expect(log.split('\n').filter((l) => l.includes('TRANSACTION_REENTRY'))).toEqual([]);
  });

  it('down leaves nothing behind', async () => {
    const r = await formwork(['down', '--listen', listen], { timeoutMs: 180_000 });
    expect(r.code).toBe(0);
    const left = await labLeftovers({ dataDir, providerName: 'lab', settings: { subnetIndex: 11 } });
    expect(left).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });
    expect(processesMatching(dataDir)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'server.json'))).toBe(false);
  }, 240_000);
});
