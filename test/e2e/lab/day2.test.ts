/**
 * End-to-end, day two (root only): on a running `formwork up`, the demo's etcd grows from 3
 * members to 5 and shrinks back to 3 by re-applying the deployment. After each step the
 * cluster is one cluster of exactly the bound members, all started, haproxy forwards to
 * them, a key written before every step reads back through haproxy, and the members that
 * stayed were not restarted. Prints how long each step took to converge.
 *
 * Uses the built CLI (bin/formwork.js → dist; run `npm run build` first) and the base
 * image cached in $FORMWORK_LAB_CACHE, hard-linked into the test's data dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBaseImage, missingTools } from '../../../src/providers/lab/index.js';
import { freePort } from '../../../src/ssh/testing/sshd.js';

const pexec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'bin/formwork.js');
const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : !fs.existsSync(path.join(ROOT, 'dist/cli/main.js')) ? 'not built: run npm run build' : '';
if (skipReason) console.warn(`lab day-two e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';

const deployment = (members: number[]) => `kind: Deployment
name: demo
provider: lab
nodes: { count: 6, size: small, image: debian-12 }
roles:
  etcd-member: { nodes: [${members.join(', ')}] }
  etcd-healthy: { nodes: [0] }
  haproxy: { nodes: [3], requires: [etcd-healthy], inputs: { backends: "outputs(etcd-member).client-url" } }
`;

interface Member {
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
}

describe.skipIf(!!skipReason)('day two on real lab hosts: etcd grows 3 → 5 and shrinks 5 → 3', () => {
  let dataDir = '';
  let listen = '';
  let frontend = '';
  const env = () => ({ ...process.env, FORMWORK_DATA_DIR: dataDir, FORMWORK_ENDPOINT: '', FORMWORK_TOKEN: '' });

  function formwork(args: string[], timeoutMs = 900_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  const api = async (p: string) => {
    const url = JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')).url as string;
    const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(url + p, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
    return (await res.json()) as Record<string, unknown>;
  };

  const onHost = async (node: string, command: string): Promise<string> => {
    const n = (await api(`/api/v1/nodes/${node}`)) as { addresses: Array<{ address: string; role: string }>; loginUser: string };
    const pub = n.addresses.find((a) => a.role === 'public')!.address;
    const ssh = ['-i', path.join(dataDir, 'ssh', 'id_ed25519'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
    return (await pexec('ssh', [...ssh, `${n.loginUser}@${pub}`, command], { timeout: 30_000 })).stdout.trim();
  };
  /** When etcd last entered `active` on the node (changes on every restart). */
  const etcdStartedAt = (node: string) => onHost(node, 'systemctl show -p ActiveEnterTimestampMonotonic --value etcd');

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const gateway = async (p: string, body: unknown): Promise<Record<string, unknown> | undefined> => {
    try {
      const res = await fetch(`http://${frontend}${p}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
      return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  /** Retries through a leader change (as etcd's own clients do) for up to 20 s. */
  const retrying = async <T>(fn: () => Promise<T | undefined>): Promise<T | undefined> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const v = await fn();
      if (v !== undefined || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const put = (key: string) => retrying(async () => ((await gateway('/v3/kv/put', { key: b64(key), value: b64(`${key}-v`) })) ? true : undefined));
  const get = (key: string) =>
    retrying(async () => {
      const got = (await gateway('/v3/kv/range', { key: b64(key) })) as { kvs?: Array<{ value: string }> } | undefined;
      return got ? Buffer.from(got.kvs?.[0]?.value ?? '', 'base64').toString() : undefined;
    });
  const members = async (): Promise<Member[] | undefined> => ((await gateway('/v3/cluster/member/list', {})) as { members?: Member[] } | undefined)?.members;

  /**
   * Applies the deployment with these etcd members and waits until it has converged: the
   * member node-roles are exactly these, every node-role active, etcd-healthy ran after the
   * apply, and etcd lists exactly these members, all started. Returns the seconds it took.
   */
  async function grow(to: number[]): Promise<number> {
    const file = path.join(dataDir, `demo-${to.length}.yaml`);
    fs.writeFileSync(file, deployment(to));
    const t0 = Date.now();
    const applied = await formwork(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    const want = to.map((i) => `demo-${i}`).sort();
    const deadline = Date.now() + 600_000;
    let last = '';
    for (;;) {
      const nrs = ((await api('/api/v1/noderoles?deployment=demo&limit=1000')).items ?? []) as Array<{ name: string; role: string; node: string; state: string }>;
      const bound = nrs.filter((n) => n.role === 'etcd-member').map((n) => n.node).sort();
      const notActive = nrs.filter((n) => n.state !== 'active').map((n) => `${n.name} ${n.state}`);
      const runs = ((await api('/api/v1/runs?noderole=demo:demo-0:etcd-healthy&limit=1000')).items ?? []) as Array<{ state: string; startedAt: string }>;
      const healthyAfter = runs.some((r) => r.state === 'succeeded' && Date.parse(r.startedAt) >= t0);
      const list = await members();
      const started = (list ?? []).filter((m) => m.name && m.clientURLs?.length).map((m) => m.name!).sort();
      last = JSON.stringify({ bound, notActive, healthyAfter, members: list?.map((m) => m.name ?? '(unstarted)') });
      if (JSON.stringify(bound) === JSON.stringify(want) && !notActive.length && healthyAfter && list?.length === want.length && JSON.stringify(started) === JSON.stringify(want)) break;
      if (Date.now() > deadline) throw new Error(`not converged on ${want.join(', ')} after 600 s: ${last}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    return (Date.now() - t0) / 1000;
  }

  beforeAll(async () => {
    const base = await ensureBaseImage(CACHE, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
    dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-day2-e2e-'));
    fs.mkdirSync(path.join(dataDir, 'lab'), { recursive: true });
    await pexec('cp', ['-al', base, path.join(dataDir, 'lab', 'base')]);
    listen = `127.0.0.1:${await freePort()}`;
  }, 900_000);

  afterAll(async () => {
    if (!dataDir) return;
    const left = await formwork(['down', '--listen', listen], 180_000);
    if (left.code !== 0) console.error('cleanup down failed', left.stderr);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 240_000);

  it('up: 3 members behind haproxy; a key written', async () => {
    // Subnet 12 (198.18.24.0/24): other lab tests and a developer's own `up` are left alone.
    const up = await formwork(['up', '--listen', listen, '--subnet-index', '12']);
    expect(up.code, up.stderr + up.stdout).toBe(0);
    frontend = ((await api('/api/v1/noderoles/demo:demo-3:haproxy')) as { outputs: { frontend: string } }).outputs.frontend;
    expect(await put('day2-before-grow')).toBe(true);
    expect((await members())?.map((m) => m.name).sort()).toEqual(['demo-0', 'demo-1', 'demo-2']);
  }, 900_000);

  it('grows 3 → 5: the new members join the live cluster, the old ones are not restarted, the key is kept', async () => {
    const before = await Promise.all(['demo-0', 'demo-1', 'demo-2'].map(etcdStartedAt));
    const seconds = await grow([0, 1, 2, 4, 5]);
    console.log(`day two: grow 3 → 5 converged in ${seconds.toFixed(1)} s (apply to every member started and etcd-healthy passed)`);
    expect(await Promise.all(['demo-0', 'demo-1', 'demo-2'].map(etcdStartedAt))).toEqual(before);
    expect(await get('day2-before-grow')).toBe('day2-before-grow-v');
    // haproxy forwards to all five.
    const cfg = await onHost('demo-3', 'cat /etc/haproxy/haproxy.cfg');
    expect(cfg.match(/^ {4}server /gm)).toHaveLength(5);
    expect(await put('day2-before-shrink')).toBe(true);
  }, 900_000);

  it('shrinks 5 → 3: the removed members leave (member remove, data wiped), the key is kept', async () => {
    const seconds = await grow([0, 1, 2]);
    console.log(`day two: shrink 5 → 3 converged in ${seconds.toFixed(1)} s (apply to the removed members gone and etcd-healthy passed)`);
    expect(await get('day2-before-grow')).toBe('day2-before-grow-v');
    expect(await get('day2-before-shrink')).toBe('day2-before-shrink-v');
    for (const node of ['demo-4', 'demo-5']) {
      expect(await onHost(node, 'systemctl is-active etcd || true')).not.toBe('active');
      expect(await onHost(node, 'sudo ls /var/lib/etcd 2>/dev/null | grep -c formwork- || true')).toBe('0');
    }
    const cfg = await onHost('demo-3', 'cat /etc/haproxy/haproxy.cfg');
    expect(cfg.match(/^ {4}server /gm)).toHaveLength(3);
  }, 900_000);
});
