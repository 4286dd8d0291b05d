import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeObject, startFakeApi, type FakeApi } from '../client/testing/fake-api.js';
import { DURATION_HINT } from '../core/durations.js';
import { ERROR_CODES, FormworkError, type ErrorCategory, type ErrorCode } from '../core/errors.js';
import { CATEGORY_EXIT, exitCodeOf } from './exit-codes.js';
import { main, type MainIO } from './main.js';

let api: FakeApi;
let dir: string;

beforeAll(async () => {
  api = await startFakeApi({ tokens: { admin: 'admin', view: 'viewer' } });
  dir = mkdtempSync(path.join(tmpdir(), 'fw-cli-'));
});
afterAll(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
  exited?: number;
}

/** Runs `formwork ...args` in-process against the fake API (unless args say otherwise). */
async function run(args: string[], io: MainIO & { stdinText?: string } = {}): Promise<Run> {
  let out = '';
  let err = '';
  let exited: number | undefined;
  const stdinText = io.stdinText ?? '';
  const code = await main(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    stdin: (async function* () {
      yield Buffer.from(stdinText);
    })(),
    env: { FORMWORK_ENDPOINT: api.url, FORMWORK_TOKEN: 'admin' },
    cwd: dir,
    exit: (c) => (exited = c),
    ...io,
  });
  return { code, out, err, ...(exited !== undefined ? { exited } : {}) };
}

beforeEach(() => {
  api.objects = {};
  api.requests.length = 0;
});

describe('exit codes', () => {
  it('one per category, as docs/errors.md lists them; what is not a Formwork error is internal', () => {
    const doc = readFileSync(path.join(import.meta.dirname, '../../docs/errors.md'), 'utf8');
    const rows = Object.fromEntries([...doc.matchAll(/^\|\s*([a-z_]+)\s*\|\s*(\d)\s*\|$/gm)].map((m) => [m[1], Number(m[2])]));
    expect(rows).toEqual(CATEGORY_EXIT);
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const category: ErrorCategory = ERROR_CODES[code].category;
      expect(exitCodeOf(new FormworkError(code, 'x'))).toBe(CATEGORY_EXIT[category]);
    }
    // distinct meanings stay apart: a script can tell "fix it" from "not there" from "try later"
    expect(new Set([CATEGORY_EXIT.invalid, CATEGORY_EXIT.not_found, CATEGORY_EXIT.conflict, CATEGORY_EXIT.forbidden, CATEGORY_EXIT.unavailable, CATEGORY_EXIT.failed, CATEGORY_EXIT.internal]).size).toBe(7);
    expect(exitCodeOf(new TypeError('boom'))).toBe(CATEGORY_EXIT.internal);
  });

  it('0 for help and version, and reports it through the injected exit', async () => {
    const h = await run(['--help']);
    expect(h).toMatchObject({ code: 0, exited: 0 });
    expect(h.out).toContain('Usage: formwork');
    expect((await run(['--version'])).out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await run(['version'])).out).toMatch(/^formwork \d+\.\d+\.\d+/);
  });

  it('2 for usage errors: unknown option, unknown command, missing or excess argument, bad option value', async () => {
    const u = await run(['get', 'nodes', '--bogus']);
    expect(u).toMatchObject({ code: 2, out: '' });
    expect(u.err).toContain("unknown option '--bogus'");
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['get'])).err).toContain("missing required argument 'kind'");
    expect((await run(['get'])).code).toBe(2);
    expect((await run(['whoami', 'extra'])).code).toBe(2);
    expect((await run(['get', 'nodes', '-o', 'xml'])).code).toBe(2);
    const d = await run(['token', 'create', '--expires', 'soon']);
    expect(d.code).toBe(2);
    expect(d.err).toContain('not a duration');
    expect((await run([])).code).toBe(2);
  });

  it('every duration option says in its help what its error says a duration is', async () => {
    const flat = (s: string) => s.replace(/\s+/g, ' ');
    for (const [args, option, command] of [
      [['--timeout', 'soon', 'get', 'nodes'], '--timeout', []],
      [['up', '--wait', 'soon'], '--wait', ['up']],
      [['token', 'create', '--expires', 'soon'], '--expires', ['token', 'create']],
    ] as const) {
      const r = await run([...args]);
      expect(r.code).toBe(2);
      expect(flat(r.err)).toContain(`"soon" is not a duration: ${DURATION_HINT}`);
      const help = flat((await run([...command, '--help'])).out);
      expect(help).toMatch(new RegExp(`${option} <duration> [^-]*${DURATION_HINT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
  });

  it('2 (invalid) for an unknown kind, listing the known kinds', async () => {
    const r = await run(['get', 'gizmos']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: unknown kind "gizmos"; known kinds: providers, nodes, workloads, roles, deployments, noderoles, runs, users, secrets\n');
  });

  it('6 (unavailable) for an unreachable endpoint, naming it; the stack only with --debug', async () => {
    const r = await run(['get', 'nodes', '--endpoint', 'http://127.0.0.1:1']);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/^error: cannot reach the Formwork server at http:\/\/127\.0\.0\.1:1: connection refused\. Start it with `formwork server` or set --endpoint\/FORMWORK_ENDPOINT\n$/);
    const d = await run(['--debug', 'get', 'nodes', '--endpoint', 'http://127.0.0.1:1']);
    expect(d.err).toContain('FormworkError: cannot reach');
    expect(d.err).toContain('    at ');
  });

  it('5 (forbidden) for an API error, with its message and status', async () => {
    const r = await run(['apply', '-f', '-'], { stdinText: 'kind: Node\nname: a\n', env: { FORMWORK_ENDPOINT: api.url, FORMWORK_TOKEN: 'view' } });
    expect(r.code).toBe(5);
    expect(r.err).toBe('error: the viewer role may not POST /api/v1/apply (HTTP 403 FORBIDDEN)\n');
  });

  it('5 (unauthenticated) with a hint when no token is found', async () => {
    const r = await run(['get', 'nodes'], { env: { FORMWORK_ENDPOINT: api.url } });
    expect(r.code).toBe(5);
    expect(r.err).toContain('(HTTP 401 UNAUTHENTICATED)\n  no token was sent');
  });
});

describe('get / describe / delete', () => {
  it('tables every page, with kind columns', async () => {
    api.objects.nodes = ['a', 'b', 'c'].map((n) => fakeObject(n, { provider: 'lab', state: 'ready' }));
    const r = await run(['get', 'nodes']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      'NAME   PROVIDER   STATE   ADDRESS   SIZE     IMAGE    DEPLOYMENT   AGE\n' +
        'a      lab        ready   <none>    <none>   <none>   <none>       5m\n' +
        'b      lab        ready   <none>    <none>   <none>   <none>       5m\n' +
        'c      lab        ready   <none>    <none>   <none>   <none>       5m\n',
    );
    expect(api.requests.filter((q) => q.url.startsWith('/api/v1/nodes')).length).toBe(2);
  });

  it('prints JSON and YAML for pipes, and nothing on stdout when empty', async () => {
    api.objects.nodes = [fakeObject('a', { labels: { env: 'prod' } }), fakeObject('b')];
    const j = await run(['get', 'node', '-o', 'json']);
    expect(JSON.parse(j.out).items.map((o: { name: string }) => o.name)).toEqual(['a', 'b']);
    const one = await run(['get', 'Node', 'a', '-o', 'json']);
    expect(JSON.parse(one.out).name).toBe('a');
    const y = await run(['get', 'nodes', '-o', 'yaml']);
    expect(y.out).toMatch(/^kind: Node\nname: a\nversion: 1\n/);
    expect(y.out).toContain('---\nkind: Node\nname: b\n');
    expect(y.out).toMatch(/^status:\n {2}id: id-a$/m);
    const sel = await run(['get', 'nodes', '-l', 'env=prod', '-o', 'json']);
    expect(JSON.parse(sel.out).items).toHaveLength(1);
    api.objects.nodes = [];
    const e = await run(['get', 'nodes']);
    expect(e).toMatchObject({ code: 0, out: '', err: 'No nodes found.\n' });
    expect(JSON.parse((await run(['get', 'nodes', '-o', 'json'])).out)).toEqual({ items: [] });
  });

  it('passes field selectors as filters', async () => {
    api.objects.nodes = [fakeObject('a', { state: 'ready' }), fakeObject('b', { state: 'error' })];
    const r = await run(['get', 'nodes', '--field-selector', 'state=error', '-o', 'json']);
    expect(JSON.parse(r.out).items.map((o: { name: string }) => o.name)).toEqual(['b']);
    expect((await run(['get', 'nodes', '--field-selector', 'state'])).code).toBe(2);
  });

  it('describes and deletes', async () => {
    api.objects.nodes = [fakeObject('a', { provider: 'lab' })];
    const d = await run(['describe', 'node', 'a']);
    expect(d.out).toMatch(/^Kind: +Node\nName: +a\n/);
    expect(d.out).toMatch(/Provider: +lab/);
    const dj = await run(['describe', 'node', 'a', '-o', 'json']);
    expect(JSON.parse(dj.out)).toMatchObject({ id: 'id-a', name: 'a', provider: 'lab' });
    expect((await run(['describe', 'node', 'a', '-o', 'yaml'])).out).toMatch(/^id: id-a\nname: a\n/);
    expect((await run(['describe', 'node', 'a', '-o', 'xml'])).code).toBe(2);
    const x = await run(['delete', 'node', 'a']);
    expect(x).toMatchObject({ code: 0, out: 'node/a deleted\n' });
    const gone = await run(['delete', 'node', 'a']);
    expect(gone.code).toBe(3);
    expect(gone.err).toBe('error: nodes "a" does not exist (HTTP 404 NOT_FOUND)\n');
  });
});

describe('apply', () => {
  it('applies YAML from stdin and from files, printing kind/name action', async () => {
    const yaml = 'kind: Node\nname: a\n---\nkind: Node\nname: b\n';
    const r = await run(['apply', '-f', '-'], { stdinText: yaml });
    expect(r).toMatchObject({ code: 0, out: 'node/a created\nnode/b created\n' });
    writeFileSync(path.join(dir, 'nodes.yaml'), yaml);
    expect((await run(['apply', '-f', 'nodes.yaml'])).out).toBe('node/a unchanged\nnode/b unchanged\n');
    const body = api.requests.filter((q) => q.url === '/api/v1/apply').pop()!.body as { documents: unknown[] };
    expect(body.documents).toEqual([
      { kind: 'Node', name: 'a' },
      { kind: 'Node', name: 'b' },
    ]);
  });

  it('names the file and line of a malformed document, sending nothing', async () => {
    writeFileSync(path.join(dir, 'bad.yaml'), 'kind: Node\nname: a\n---\nkind: [Node\n');
    const before = api.requests.length;
    const r = await run(['apply', '-f', 'bad.yaml']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: bad\.yaml:\d+:\d+: invalid YAML: /);
    expect(api.requests.length).toBe(before);
    const missing = await run(['apply', '-f', 'nope.yaml']);
    expect(missing).toMatchObject({ code: 2, err: 'error: cannot read nope.yaml: no such file\n' });
    expect((await run(['apply'])).code).toBe(2);
  });

  it("points the server's per-document problems at file and line", async () => {
    writeFileSync(path.join(dir, 'two.yaml'), 'kind: Node\nname: a\n---\nkind: Node\nname: b\nbad: true\n');
    const r = await run(['apply', '-f', 'two.yaml']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: the documents are invalid\n  at two.yaml:4 (node/b) bad (HTTP 400 VALIDATION)\n  - two.yaml:4 (node/b) bad: is not allowed\n');
  });
});

describe('tokens and whoami', () => {
  it('creates a token, printing only the token on stdout', async () => {
    const r = await run(['token', 'create', '--role', 'viewer', '--expires', '1h', '--description', 'ci']);
    expect(r).toMatchObject({ code: 0, out: 'fwt_new\n' });
    expect(r.err).toContain('token tk_2 for user viewer');
    expect(api.requests.pop()!.body).toEqual({ user: 'viewer', role: 'viewer', description: 'ci', expiresInSeconds: 3600 });
    await run(['token', 'create']);
    expect(api.requests.pop()!.body).toEqual({ user: 'admin' }); // the caller's own user, from whoami
    expect(JSON.parse((await run(['token', 'create', '--user', 'u', '-o', 'json'])).out).token).toBe('fwt_new');
  });

  it('lists and revokes tokens; whoami', async () => {
    expect((await run(['token', 'list'])).out).toMatch(/^ID +USER +STATUS +EXPIRES +LAST USED +AGE +DESCRIPTION\ntk_1 +admin +active +60m\n$/);
    expect((await run(['token', 'revoke', 'tk_1'])).out).toBe('token tk_1 revoked\n');
    expect(api.requests.pop()).toMatchObject({ method: 'DELETE', url: '/api/v1/tokens/tk_1' });
    expect((await run(['whoami'])).out).toBe(`admin (admin) at ${api.url}, token from FORMWORK_TOKEN\n`);
  });
});

describe('endpoint and token from the data dir', () => {
  it('uses DATA_DIR/server.json and DATA_DIR/admin.token when nothing else is set', async () => {
    const dd = path.join(dir, 'dd');
    rmSync(dd, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dd);
    writeFileSync(path.join(dd, 'server.json'), JSON.stringify({ url: api.url, pid: process.pid }));
    writeFileSync(path.join(dd, 'admin.token'), 'admin\n');
    const r = await run(['whoami', '--data-dir', 'dd'], { env: {} });
    expect(r.out).toBe(`admin (admin) at ${api.url}, token from the data dir\n`);
    const e = await run(['whoami'], { env: { FORMWORK_DATA_DIR: dd, FORMWORK_ENDPOINT: 'http://127.0.0.1:1' } });
    expect(e.code).toBe(6);
    expect(e.err).toContain('at http://127.0.0.1:1:');
  });

  it('names a stale server.json when the default endpoint is unreachable', async () => {
    const dd = path.join(dir, 'stale');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dd, { recursive: true });
    writeFileSync(path.join(dd, 'server.json'), JSON.stringify({ url: api.url, pid: 2 ** 22 + 12345 }));
    const r = await run(['get', 'nodes', '--data-dir', dd, '--timeout', '2s'], { env: {} });
    // 127.0.0.1:7480 may or may not answer here; when it does not, the note explains why it was tried
    if (r.code === 1 && r.err.includes('cannot reach')) {
      expect(r.err).toContain('at http://127.0.0.1:7480:');
      expect(r.err).toContain(`server.json names ${api.url}, but its server, pid ${2 ** 22 + 12345}, is no longer running`);
    }
  });
});

describe('watch', () => {
  it('prints TIME TYPE ACTION KEY per event and stops when aborted', async () => {
    const ac = new AbortController();
    const p = run(['watch', 'node', '--key', 'a'], { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 150));
    api.emit('nodes', 'created', 'a');
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    const r = await p;
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}nodes {7}created {3}a\n$/);
    const q = api.requests.filter((x) => x.url.startsWith('/api/v1/events')).pop()!;
    expect(q.url).toBe('/api/v1/events?type=nodes&key=a');
  });

  it('prints one JSON object per line with -o json', async () => {
    const ac = new AbortController();
    const p = run(['watch', '-o', 'json'], { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 150));
    api.emit('roles', 'updated', 'r1');
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    const r = await p;
    expect(JSON.parse(r.out.trim())).toMatchObject({ type: 'roles', action: 'updated', key: 'r1' });
  });
});

describe('server (in-process)', () => {
  it('runs startServer until aborted, then closes and exits 0', async () => {
    const dd = path.join(dir, 'srv');
    const ac = new AbortController();
    let out = '';
    const running = main(['server', '--data-dir', dd, '--listen', '127.0.0.1:0', '--log-file', path.join(dir, 'srv.log')], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => true },
      env: {},
      cwd: dir,
      signal: ac.signal,
    });
    const deadline = Date.now() + 60_000;
    while (!out.includes('admin token:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/^formwork server listening on http:\/\/127\.0\.0\.1:\d+\nadmin token: .*srv\/admin\.token\n$/);
    const who = await run(['whoami', '--data-dir', dd], { env: {} });
    expect(who.out).toMatch(/^admin \(admin\) at http:\/\/127\.0\.0\.1:\d+, token from the data dir\n$/);
    ac.abort();
    expect(await running).toBe(0);
    const after = await run(['whoami', '--data-dir', dd], { env: {} });
    expect(after.code).toBe(6); // server.json is gone: the default endpoint, which nothing serves here
  });

  it('refuses half a TLS pair and a bad listen address', async () => {
    expect((await run(['server', '--tls-cert', 'c.pem'])).err).toBe('error: --tls-cert and --tls-key go together: give both or neither\n');
    const bad = await run(['server', '--data-dir', path.join(dir, 'srv2'), '--listen', 'nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('HOST:PORT');
  });
});
