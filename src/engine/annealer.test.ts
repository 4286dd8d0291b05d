import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer, type AnnealerOptions } from './annealer.js';
import { registerBuiltin } from './executors/index.js';
import { FormworkError } from '../core/errors.js';
import { withTxRetry } from './graph.js';
import { chain, role, seed, settled, states, waitFor } from './testing/fixtures.js';
import { markerScript, overlapsPerNode, peakConcurrency, readIntervals } from './testing/markers.js';

const FAST: AnnealerOptions = { tickMs: 20, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined };

describe.each(STORE_ENGINES)('annealer on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let annealers: Annealer[];
  let dir: string;

  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    annealers = [];
    dir = fs.mkdtempSync(path.join(t.dataDir, 'work-'));
  });
  afterEach(async () => {
    await Promise.all(annealers.map((a) => a.stop()));
    await t.cleanup();
  });

  const start = async (opts: AnnealerOptions = {}): Promise<Annealer> => {
    const a = new Annealer(services, { ...FAST, ...opts });
    annealers.push(a);
    await a.start();
    return a;
  };
  const nr = (name: string): Promise<StoredObject> => t.store.objects('noderoles').get(name);
  const runsOf = async (name: string): Promise<StoredObject[]> => t.store.objects('runs').all({ filters: { noderole: name } });

  it('withTxRetry runs a transaction again when it lost to a concurrent one (deadlock, serialization failure, busy)', async () => {
    for (const code of ['40P01', '40001', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT']) {
      let calls = 0;
      const result = await withTxRetry(t.store, async () => {
        if (++calls === 1) throw Object.assign(new Error('deadlock detected'), { code });
        return 'ok';
      });
      expect({ code, calls, result }).toEqual({ code, calls: 2, result: 'ok' });
    }
    // A real clash is not retried.
    let calls = 0;
    const clash = withTxRetry(t.store, async () => {
      calls++;
      throw new FormworkError('CONFLICT', 'in use');
    });
    await expect(clash).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(calls).toBe(1);
  });

  it('runs a chain: todo → running → active, blocked → todo, outputs, input hash, run record, events', async () => {
    await seed(t.store, {
      roles: [
        role('a', { kind: 'local', file: 'a.sh' }, { inputs: { greeting: { schema: { type: 'string' }, default: 'hello' } }, outputs: { word: { schema: { type: 'string' } } } }),
        role('b', { kind: 'local', file: 'b.sh' }, { inputs: { word: { from: 'outputs(a).word' }, secret: { secret: true, default: 's3cret' } } }),
      ],
      files: {
        'a.sh': 'echo "a says {{ inputs.greeting }} on {{ node.name }} in {{ deployment.name }}"\necho "{\\"word\\": \\"$FW_INPUT_GREETING-$FW_NODE\\"}" > "$FW_OUTPUTS"',
        'b.sh': 'cat > "$FW_OUTPUTS"\necho "b got $FW_INPUT_WORD"',
      },
      nodes: ['n1'],
      bind: chain('n1', ['a', 'b']),
    });
    expect(await states(t.store)).toEqual({ 'demo:n1:a': 'todo', 'demo:n1:b': 'blocked' });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:a': 'active', 'demo:n1:b': 'active' });

    const a = await nr('demo:n1:a');
    expect(a.outputs).toEqual({ word: 'hello-n1' });
    expect(a.inputHash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/); // keyed: viewers see it, and it must not test guesses of a secret
    expect(a.leaseOwner).toBeUndefined();
    const b = await nr('demo:n1:b');
    // b's script copied its stdin (the inputs as JSON) to its outputs: the secret one is stored sealed
    expect(b.outputs).toEqual({ word: 'hello-n1', secret: { $sealed: expect.stringMatching(/^v2:/) } });
    expect(JSON.parse(t.store.secrets.unseal((b.outputs as { secret: { $sealed: string } }).secret.$sealed, 'deployment:demo'))).toBe('s3cret');
    const [runA] = await runsOf('demo:n1:a');
    expect(runA).toMatchObject({ state: 'succeeded', attempt: 1, exitCode: 0, deployment: 'demo', node: 'n1', role: 'a', outputs: { word: 'hello-n1' } });
    expect(runA.log).toContain('a says hello on n1 in demo');
    expect(runA.worker).toBe(annealers[0].workerId);
    const [runB] = await runsOf('demo:n1:b');
    expect(runB.inputs).toEqual({ word: 'hello-n1', secret: '[redacted]' });
    expect(runB.outputs).toEqual({ word: 'hello-n1', secret: '[redacted]' });
    expect(runB.log).toContain('b got hello-n1');

    const ev = await t.store.events.list({ types: ['noderoles'], keys: ['demo:n1:b'] });
    const seen = ev.map((e) => (e.object as { state?: string }).state);
    expect(seen).toEqual(expect.arrayContaining(['todo', 'running', 'active']));
    await waitFor(async () => (await t.store.events.list({ types: ['logs'], keys: ['demo:n1:a'] })).length > 0);
    const logs = await t.store.events.list({ types: ['logs'], keys: ['demo:n1:a'] });
    expect(logs[0]).toMatchObject({ action: 'output', object: { runId: runA.id } });
    expect(logs.map((e) => (e.object as { chunk: string }).chunk).join('')).toContain('a says hello');
  });

  it('a non-retryable failure stops at once and blocks every descendant with the reason; retry resumes', async () => {
    const flag = path.join(dir, 'fixed');
    await seed(t.store, {
      roles: [
        role('a', { kind: 'local', file: 'a.sh' }, { outputs: { n: { schema: { type: 'integer' } } } }),
        role('b', { kind: 'builtin', handler: 'engine.noop' }),
        role('c', { kind: 'builtin', handler: 'engine.noop' }),
      ],
      // Until the flag exists, the output does not match its schema (OUTPUT_INVALID, not retryable).
      files: { 'a.sh': `if [ -f ${flag} ]; then echo '{"n": 1}'; else echo '{"n": "one"}'; fi > "$FW_OUTPUTS"` },
      nodes: ['n1', 'n2'],
      bind: [...chain('n1', ['a', 'b']), { node: 'n2', role: 'c', parents: ['n1:b'] }],
    });
    await start();
    const s = await settled(t.store);
    expect(s).toEqual({ 'demo:n1:a': 'error', 'demo:n1:b': 'blocked', 'demo:n2:c': 'blocked' });
    const a = await nr('demo:n1:a');
    expect(a.attempts).toBe(1);
    expect(a.lastError).toMatchObject({ code: 'OUTPUT_INVALID' });
    expect((a.lastError as { message: string }).message).toMatch(/role a on node n1: output "n" does not match/);
    for (const d of ['demo:n1:b', 'demo:n2:c']) {
      expect((await nr(d)).blockedReason).toMatch(/^parent demo:n1:a failed: role a on node n1: output "n"/);
    }
    const [run] = await runsOf('demo:n1:a');
    expect(run).toMatchObject({ state: 'failed', error: { code: 'OUTPUT_INVALID' } });

    fs.writeFileSync(flag, '');
    const changed = await annealers[0].retry('demo:n1:a');
    expect(changed.map((c) => c.name)).toEqual(['demo:n1:a']);
    expect(await settled(t.store)).toEqual({ 'demo:n1:a': 'active', 'demo:n1:b': 'active', 'demo:n2:c': 'active' });
    expect((await nr('demo:n1:a')).attempts).toBe(1);
  });

  it('retry of a whole deployment puts every failed node-role back to todo', async () => {
    const flag = path.join(dir, 'fixed');
    await seed(t.store, {
      roles: [role('a', { kind: 'local', file: 'a.sh' }, { retries: 0 })],
      files: { 'a.sh': `[ -f ${flag} ]` },
      nodes: ['n1', 'n2'],
      bind: [{ node: 'n1', role: 'a' }, { node: 'n2', role: 'a' }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:a': 'error', 'demo:n2:a': 'error' });
    fs.writeFileSync(flag, '');
    expect((await annealers[0].retry('deployment/demo')).length).toBe(2);
    expect(await settled(t.store)).toEqual({ 'demo:n1:a': 'active', 'demo:n2:a': 'active' });
  });

  it('retries a retryable failure with exponential backoff, then stops with error', async () => {
    await seed(t.store, {
      roles: [role('flaky', { kind: 'local', file: 'f.sh' }, { retries: 4 }), role('after', { kind: 'builtin', handler: 'engine.noop' })],
      files: { 'f.sh': 'echo failing; exit 3' },
      nodes: ['n1'],
      bind: chain('n1', ['flaky', 'after']),
    });
    await start({ retryBaseMs: 60 });
    const s = await settled(t.store, 'demo', 20_000);
    expect(s['demo:n1:flaky']).toBe('error');
    const f = await nr('demo:n1:flaky');
    expect(f.attempts).toBe(5);
    expect(f.lastError).toMatchObject({ code: 'RUN_FAILED', details: { exitCode: 3 } });
    const runs = (await runsOf('demo:n1:flaky')).sort((x, y) => Number(x.attempt) - Number(y.attempt));
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(runs.every((r) => r.state === 'failed' && r.exitCode === 3)).toBe(true);
    const gaps = runs.slice(1).map((r, i) => Date.parse(r.startedAt as string) - Date.parse(runs[i].endedAt as string));
    // base 60 ms · 2^(n-1) · (0.5..1): [30..60], [60..120], [120..240], [240..480] (+ loop latency)
    expect(gaps[0]).toBeGreaterThanOrEqual(25);
    expect(gaps[3]).toBeGreaterThanOrEqual(235);
    expect(gaps[3]).toBeGreaterThan(gaps[0]);
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
    expect(gaps[3]).toBeGreaterThan(gaps[1]);
    expect((await nr('demo:n1:after')).blockedReason).toMatch(/^parent demo:n1:flaky failed: role flaky on node n1 exited with 3/);
  });

  it('uses the error nextDelayMs when the failure gives one', async () => {
    let calls = 0;
    registerBuiltin('test.ratelimited', async () => {
      calls++;
      if (calls === 1) throw new FormworkError('PROVIDER_ERROR', 'slow down', {}, { nextDelayMs: 300 });
      return { exitCode: 0, outputs: {} };
    });
    await seed(t.store, { roles: [role('r', { kind: 'builtin', handler: 'test.ratelimited' })], nodes: ['n1'], bind: [{ node: 'n1', role: 'r' }] });
    await start();
    await waitFor(async () => (await nr('demo:n1:r')).lastError);
    const pending = await nr('demo:n1:r');
    expect(pending.state).toBe('todo');
    expect((pending.lastError as { summary: string }).summary).toMatch(/attempt 1 of 4 failed: slow down; retrying at/);
    expect(await settled(t.store)).toEqual({ 'demo:n1:r': 'active' });
    const runs = (await runsOf('demo:n1:r')).sort((x, y) => Number(x.attempt) - Number(y.attempt));
    expect(Date.parse(runs[1].startedAt as string) - Date.parse(runs[0].endedAt as string)).toBeGreaterThanOrEqual(290);
  });

  it('never runs two node-roles on one node at a time', async () => {
    const file = path.join(dir, 'markers');
    const names = ['r1', 'r2', 'r3', 'r4'];
    await seed(t.store, {
      roles: names.map((n) => role(n, { kind: 'local', file: 's.sh' })),
      files: { 's.sh': markerScript(file, 'sleep 0.05') },
      nodes: ['n1', 'n2', 'n3'],
      bind: ['n1', 'n2', 'n3'].flatMap((node) => names.map((r) => ({ node, role: r }))),
    });
    await start({ concurrency: 8, perProviderConcurrency: 8 });
    const s = await settled(t.store);
    expect(Object.values(s).every((x) => x === 'active')).toBe(true);
    const { intervals } = readIntervals(file);
    expect(intervals).toHaveLength(12);
    expect(overlapsPerNode(intervals)).toEqual([]);
    expect(peakConcurrency(intervals)).toBeGreaterThan(1); // different nodes did run in parallel
  });

  it('honours the global and the per-provider concurrency limits', async () => {
    const file = path.join(dir, 'markers');
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
    await seed(t.store, {
      roles: [role('r', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': markerScript(file, 'sleep 0.1') },
      nodes: nodes.map((n, i) => ({ name: n, provider: i < 3 ? 'p1' : 'p2' })),
      bind: nodes.map((node) => ({ node, role: 'r' })),
    });
    await start({ concurrency: 2, perProviderConcurrency: 10 });
    await settled(t.store);
    const { intervals } = readIntervals(file);
    expect(intervals).toHaveLength(6);
    expect(peakConcurrency(intervals)).toBe(2);

    // per provider: 1 each → at most one p1 and one p2 at once
    fs.rmSync(file);
    await annealers[0].stop();
    await seed(t.store, {
      deployment: 'two',
      roles: [role('r', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': markerScript(file, 'sleep 0.1') },
      nodes: nodes.map((n, i) => ({ name: `${n}b`, provider: i < 3 ? 'p1' : 'p2' })),
      bind: nodes.map((node) => ({ node: `${node}b`, role: 'r' })),
    });
    await start({ concurrency: 8, perProviderConcurrency: 1 });
    await settled(t.store, 'two');
    const second = readIntervals(file).intervals;
    expect(second).toHaveLength(6);
    const p1 = second.filter((i) => ['n1b', 'n2b', 'n3b'].includes(i.node));
    const p2 = second.filter((i) => !['n1b', 'n2b', 'n3b'].includes(i.node));
    expect(peakConcurrency(p1)).toBe(1);
    expect(peakConcurrency(p2)).toBe(1);
    expect(peakConcurrency(second)).toBe(2);
  });

  it('re-runs only the node-role whose inputs changed, and its children when its outputs change; never a destructive one', async () => {
    const counts = path.join(dir, 'counts');
    const script = `echo "$FW_NODEROLE" >> ${counts}\ncat > "$FW_OUTPUTS"`;
    await seed(t.store, {
      roles: [
        role('a', { kind: 'local', file: 's.sh' }),
        role('b', { kind: 'local', file: 's.sh' }, { inputs: { x: { default: 1 } } }),
        role('c', { kind: 'local', file: 's.sh' }, { inputs: { fromb: { from: 'outputs(b).x' } } }),
        role('d', { kind: 'local', file: 's.sh' }, { inputs: { x: { default: 1 } } }),
        role('wipe', { kind: 'local', file: 's.sh' }, { inputs: { x: { default: 1 } }, flags: ['destructive'] }),
      ],
      files: { 's.sh': script },
      nodes: ['n1', 'n2'],
      bind: [...chain('n1', ['a', 'b', 'c']), { node: 'n2', role: 'd' }, { node: 'n2', role: 'wipe' }],
    });
    await start();
    await settled(t.store);
    const count = () => {
      const lines = fs.readFileSync(counts, 'utf8').trim().split('\n');
      return Object.fromEntries(['a', 'b', 'c', 'd', 'wipe'].map((r) => [r, lines.filter((l) => l.endsWith(`:${r}`)).length]));
    };
    expect(count()).toEqual({ a: 1, b: 1, c: 1, d: 1, wipe: 1 });

    // A node-role override changes b's input x: b re-runs, its outputs change, so c re-runs.
    await t.store.objects('noderoles').update('demo:n1:b', { attribs: { x: 2 } });
    await waitFor(async () => count().c === 2);
    await settled(t.store);
    expect(count()).toEqual({ a: 1, b: 2, c: 2, d: 1, wipe: 1 });
    expect((await nr('demo:n1:c')).outputs).toEqual({ fromb: 2 });

    // A deployment attrib changes x for d and wipe (b keeps its node-role override, which wins):
    // d re-runs, the destructive one does not.
    await t.store.objects('deployments').update('demo', { attribs: { x: 5 } });
    await waitFor(async () => count().d === 2);
    await new Promise((r) => setTimeout(r, 400));
    await settled(t.store);
    expect(count()).toEqual({ a: 1, b: 2, c: 2, d: 2, wipe: 1 });
    expect((await nr('demo:n2:wipe')).state).toBe('active');
  });

  it('kills a hung script at its timeout (RUN_TIMEOUT) and the whole process group with it', async () => {
    const pidFile = path.join(dir, 'pid');
    await seed(t.store, {
      roles: [role('hang', { kind: 'local', file: 'h.sh' }, { timeoutSeconds: 0.4, retries: 0 })],
      files: { 'h.sh': `sleep 30 &\necho $! > ${pidFile}\nwait` },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'hang' }],
    });
    const t0 = Date.now();
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:hang': 'error' });
    expect(Date.now() - t0).toBeLessThan(5000);
    const h = await nr('demo:n1:hang');
    expect(h.lastError).toMatchObject({ code: 'RUN_TIMEOUT' });
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await waitFor(async () => !fs.existsSync(`/proc/${pid}`), 3000);
    const [run] = await runsOf('demo:n1:hang');
    expect(run.log).toContain('did not finish within 400 ms');
  });

  it('caps a megabyte-sized log, keeping head and tail, and batches its log events', async () => {
    await seed(t.store, {
      roles: [role('chatty', { kind: 'local', file: 'c.sh' })],
      files: { 'c.sh': 'echo HEAD-MARK\nhead -c 3000000 /dev/zero | tr "\\0" "x"\necho\necho TAIL-MARK' },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'chatty' }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:chatty': 'active' });
    const [run] = await runsOf('demo:n1:chatty');
    const log = run.log as string;
    expect(log.startsWith('HEAD-MARK')).toBe(true);
    expect(log.trimEnd().endsWith('TAIL-MARK')).toBe(true);
    expect(log).toMatch(/\[\.\.\. \d+ characters truncated \.\.\.\]/);
    expect(log.length).toBeLessThanOrEqual(1024 * 1024 + 100);
    const events = await t.store.events.list({ types: ['logs'], keys: ['demo:n1:chatty'] });
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThan(50);
    expect(events.every((e) => (e.object as { chunk: string }).chunk.length <= 64 * 1024 + 100)).toBe(true);
  });

  it('refuses outputs that are not JSON, not an object, or missing a declared field (OUTPUT_INVALID, one attempt)', async () => {
    await seed(t.store, {
      roles: [
        role('notjson', { kind: 'local', file: 'a.sh' }),
        role('array', { kind: 'local', file: 'b.sh' }),
        role('missing', { kind: 'local', file: 'c.sh' }, { outputs: { url: { schema: { type: 'string' } } } }),
      ],
      files: { 'a.sh': `echo '{"token": "S3CRET-XYZ",}' > "$FW_OUTPUTS"`, 'b.sh': 'echo "[1,2]" > "$FW_OUTPUTS"', 'c.sh': 'echo "{}" > "$FW_OUTPUTS"' },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'notjson' }, { node: 'n1', role: 'array' }, { node: 'n1', role: 'missing' }],
    });
    await start();
    await settled(t.store);
    const msgs: Record<string, string> = {};
    for (const r of ['notjson', 'array', 'missing']) {
      const n = await nr(`demo:n1:${r}`);
      expect(n.state).toBe('error');
      expect(n.attempts).toBe(1);
      expect(n.lastError).toMatchObject({ code: 'OUTPUT_INVALID' });
      msgs[r] = (n.lastError as { message: string }).message;
    }
    expect(msgs.notjson).toMatch(/role notjson on node n1 wrote outputs that are not JSON/);
    // Outputs may hold secrets: a bad outputs file is not quoted (nor JSON.parse's message, which quotes it).
    expect(JSON.stringify((await nr('demo:n1:notjson')).lastError)).not.toContain('S3CRET');
    expect(msgs.array).toMatch(/not a JSON object/);
    expect(msgs.missing).toMatch(/role missing on node n1 did not write the output "url"/);
  });

  it('fails a template naming an unknown input and an unknown builtin, without retrying', async () => {
    await seed(t.store, {
      roles: [
        role('tpl', { kind: 'local', file: 't.sh' }),
        role('nob', { kind: 'builtin', handler: 'no.such' }),
        role('sec', { kind: 'local', file: 's.sh' }, { inputs: { 'cluster-token': { schema: { type: 'string' }, secret: true, default: 'S3CRET-XYZ' } } }),
      ],
      files: { 't.sh': 'echo {{ inputs.nope }}', 's.sh': 'etcd --initial-cluster-token {{ inputs.cluster-token }}' },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'tpl' }, { node: 'n1', role: 'nob' }, { node: 'n1', role: 'sec' }],
    });
    await start();
    await settled(t.store);
    const tpl = await nr('demo:n1:tpl');
    expect(tpl).toMatchObject({ state: 'error', attempts: 1, lastError: { code: 'WORKLOAD_INVALID' } });
    expect((tpl.lastError as { message: string }).message).toMatch(/inputs\.nope/);
    const nob = await nr('demo:n1:nob');
    expect(nob).toMatchObject({ state: 'error', attempts: 1, lastError: { code: 'RUN_FAILED' } });
    expect((nob.lastError as { message: string }).message).toMatch(/no builtin handler named "no.such"/);
    // A secret input in a template would ride on the host's command line: refused, with the way to read it.
    const sec = await nr('demo:n1:sec');
    expect(sec).toMatchObject({ state: 'error', attempts: 1, lastError: { code: 'WORKLOAD_INVALID' } });
    expect((sec.lastError as { message: string }).message).toMatch(/\{\{ inputs\.cluster-token \}\} names a secret input.*\$FW_INPUT_CLUSTER_TOKEN/);
  });

  it('gives cluster roles their peers, in node order', async () => {
    await seed(t.store, {
      roles: [role('member', { kind: 'local', file: 'm.sh' }, { flags: ['cluster'] })],
      files: { 'm.sh': `printf '{"peers": %s, "env": %s}' "{{ json inputs.peers }}" "$FW_INPUT_PEERS" > "$FW_OUTPUTS"` },
      nodes: ['m2', 'm10', 'm1'].map((n, i) => ({ name: n, addresses: [{ address: `10.0.0.${i + 1}`, family: 4 as const, role: 'private' as const }, { address: `198.51.100.${i + 1}`, family: 4 as const, role: 'public' as const }] })),
      bind: ['m2', 'm10', 'm1'].map((node) => ({ node, role: 'member' })),
    });
    await start();
    await settled(t.store);
    const out = (await nr('demo:m1:member')).outputs as { peers: unknown[]; env: unknown[] };
    expect(out.peers).toEqual([
      { name: 'demo:m2:member', node: 'm2', addresses: { public: ['198.51.100.1'], private: ['10.0.0.1'] } },
      { name: 'demo:m10:member', node: 'm10', addresses: { public: ['198.51.100.2'], private: ['10.0.0.2'] } },
      { name: 'demo:m1:member', node: 'm1', addresses: { public: ['198.51.100.3'], private: ['10.0.0.3'] } },
    ]);
    expect(out.env).toEqual(out.peers);
  });

  it('records a builtin node update and runs node-less (deployment-level) node-roles', async () => {
    registerBuiltin('test.hostkey', async (job) => ({ exitCode: 0, outputs: { seen: job.node?.name ?? null }, nodeUpdate: { hostKey: 'SHA256:test' } }));
    await seed(t.store, {
      roles: [role('hk', { kind: 'builtin', handler: 'test.hostkey' }), role('global', { kind: 'builtin', handler: 'test.hostkey' })],
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'hk' }, { role: 'global', parents: ['n1:hk'] }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:hk': 'active', 'demo:-:global': 'active' });
    expect((await t.store.objects('nodes').get('n1')).hostKey).toBe('SHA256:test');
    expect((await nr('demo:-:global')).outputs).toEqual({ seen: null });
  });

  it('takes back a node-role whose worker lease expired and marks its run abandoned', async () => {
    await seed(t.store, { roles: [role('r', { kind: 'builtin', handler: 'engine.noop' })], nodes: ['n1'], bind: [{ node: 'n1', role: 'r' }] });
    // A worker that died mid-run: running, an expired lease, a run still "running".
    const past = new Date(Date.now() - 1000).toISOString();
    await t.store.objects('noderoles').update('demo:n1:r', { state: 'running', leaseOwner: 'dead-worker', leaseExpiresAt: past, attempts: 1 });
    await t.store.objects('runs').create({ name: 'demo:n1:r@dead', noderole: 'demo:n1:r', state: 'running', worker: 'dead-worker', attempt: 1, startedAt: past });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:n1:r': 'active' });
    expect(await t.store.objects('runs').get('demo:n1:r@dead')).toMatchObject({ state: 'abandoned', error: { code: 'LEASE_EXPIRED' } });
    const runs = await runsOf('demo:n1:r');
    expect(runs.filter((r) => r.state === 'succeeded')).toHaveLength(1);
  });

  it('stop() releases in-flight node-roles to todo without counting the attempt', async () => {
    await seed(t.store, {
      roles: [role('slow', { kind: 'local', file: 's.sh' })],
      files: { 's.sh': 'sleep 20' },
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'slow' }],
    });
    const a = await start();
    await waitFor(async () => (await nr('demo:n1:slow')).state === 'running');
    await a.stop();
    const n = await nr('demo:n1:slow');
    expect(n).toMatchObject({ state: 'todo', attempts: 0 });
    expect(n.leaseOwner).toBeUndefined();
    const [run] = await runsOf('demo:n1:slow');
    expect(run).toMatchObject({ state: 'abandoned', error: { code: 'WORKER_STOPPED' } });
  });
});
