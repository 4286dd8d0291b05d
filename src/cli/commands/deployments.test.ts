import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { sqliteEngine } from '../../store/testing/engines.js';
import { loadPack, registerPacks } from '../../workloads/loader.js';
import { packageRoot } from '../../package.js';
import { main } from '../main.js';
import { renderTree } from './deployments.js';

const testdata = (p: string) => path.join(packageRoot(), 'src', 'workloads', 'testdata', p);

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: { FORMWORK_DATA_DIR: path.join(packageRoot(), '.no-such-data-dir'), ...env },
    cwd: packageRoot(),
  });
  return { code, out, err };
}

describe('formwork workloads validate', () => {
  it('accepts a sound pack, with the built-in packs as context', async () => {
    const r = await run(['workloads', 'validate', testdata('etcd')]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain('workload/etcd 1.0.0 is valid (2 roles: etcd-member, etcd-healthy)');
  });

  it('prints every problem and exits 2 (invalid)', async () => {
    const r = await run(['workloads', 'validate', 'src/workloads/testdata/broken']);
    expect(r.code).toBe(2);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines).toContain('src/workloads/testdata/broken/workload.yaml: role wants-ghost: requires: unknown role or alias "ghost": no loaded role has that name or provides it');
    expect(r.err).toContain('6 problems');
  });

  it('reports structural problems and problems across roles of every pack in one pass', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-validate-'));
    try {
      const pack = (name: string, yaml: string) => {
        fs.mkdirSync(path.join(dir, name));
        fs.writeFileSync(path.join(dir, name, 'workload.yaml'), `name: ${name}\nversion: 1.0.0\n${yaml}`);
      };
      // An unknown key (structural) beside an unknown requirement (across roles) in one role.
      pack('one', 'roles:\n  - name: a\n    colour: red\n    requires: [ghost]\n    implementation: { kind: builtin, handler: h }\n');
      pack('two', 'roles:\n  - name: b\n    requires: [b]\n    implementation: { kind: lcoal, file: b.sh }\n');
      const r = await run(['workloads', 'validate', dir]);
      expect(r.code).toBe(2);
      const lines = r.out.trim().split('\n').map((l) => l.slice(l.indexOf('role ')));
      expect(lines).toEqual([
        'role a: colour: unknown key "colour"; known: name, description, requires, provides, conflicts, flags, inputs, outputs, implementation, removal, timeoutSeconds, retries',
        'role a: requires: unknown role or alias "ghost": no loaded role has that name or provides it',
        'role b: implementation.kind: unknown implementation kind "lcoal"; known: script, local, ansible, builtin',
        'role b: requires: role "b" requires itself',
      ]);
      expect(r.err).toContain('4 problems');
      // Each folder may also be given on its own, several at once.
      expect((await run(['workloads', 'validate', path.join(dir, 'one'), path.join(dir, 'two')])).out).toBe(r.out);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('renderTree', () => {
  it('shows node → node-roles with state and blocked reason', () => {
    const text = renderTree({
      deployment: { name: 'demo', state: 'committed', provider: 'lab' },
      nodes: [
        {
          name: 'demo-0',
          state: 'pending',
          noderoles: [
            { id: '1', name: 'demo:demo-0:provision', role: 'provision', state: 'todo', parents: [] },
            { id: '2', name: 'demo:demo-0:node-ready', role: 'node-ready', state: 'blocked', blockedReason: 'waiting for demo:demo-0:provision (todo)', parents: [] },
          ],
        },
      ],
      other: [],
      counts: { todo: 1, blocked: 1 },
    });
    expect(text).toBe(
      [
        'deployment/demo  committed  provider lab  (blocked 1, todo 1)',
        'demo-0  (pending)',
        '  ├─ provision   todo',
        '  └─ node-ready  blocked  waiting for demo:demo-0:provision (todo)',
      ].join('\n'),
    );
  });
});

describe('formwork commit / describe deployment / workloads against a server', () => {
  let h: Harness;
  let env: Record<string, string>;
  beforeAll(async () => {
    h = await openHarness(sqliteEngine);
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    env = { FORMWORK_ENDPOINT: `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`, FORMWORK_TOKEN: h.tokens.admin };
    const core = loadPack(path.join(packageRoot(), 'workloads', 'core'));
    await registerPacks(h.t.store, [core, loadPack(testdata('etcd'), { context: core.roles })]);
    await h.t.store.objects('providers').create({ name: 'lab', type: 'lab' });
    await h.services.appliers.get('Deployment')!({ kind: 'Deployment', name: 'demo', provider: 'lab', nodes: { count: 1 }, roles: { 'etcd-member': { nodes: [0] } }, commit: false }, {});
  });
  afterAll(() => h.close());

  it('commits, then describes the deployment as a tree', async () => {
    expect(await run(['commit', 'demo'], env)).toMatchObject({ code: 0, out: 'deployment/demo committed (3 node-roles queued)\n' });
    const d = await run(['describe', 'deployment', 'demo'], env);
    expect(d.code).toBe(0);
    expect(d.out).toContain('demo-0  (pending)');
    expect(d.out).toContain('└─ etcd-member  blocked  waiting for demo:demo-0:node-ready (blocked)');
    expect((await run(['describe', 'deployment', 'nope'], env)).code).toBe(3);
  });

  it('describe -o json|yaml prints the tree the readable view is drawn from', async () => {
    const j = await run(['describe', 'deployment', 'demo', '-o', 'json'], env);
    expect(j.code, j.err).toBe(0);
    const tree = JSON.parse(j.out) as { deployment: { name: string }; nodes: Array<{ name: string; noderoles: Array<{ role: string; state: string }> }> };
    expect(tree.deployment.name).toBe('demo');
    expect(tree.nodes.map((n) => n.name)).toEqual(['demo-0']);
    expect(tree.nodes[0].noderoles.map((r) => r.role)).toEqual(['provision', 'node-ready', 'etcd-member']);
    expect(parse((await run(['describe', 'deployment', 'demo', '-o', 'yaml'], env)).out)).toEqual(tree);
    expect(renderTree(tree as never) + '\n').toBe((await run(['describe', 'deployment', 'demo'], env)).out);
  });

  it('lists and shows workloads', async () => {
    const list = await run(['workloads', 'list'], env);
    expect(list.out).toMatch(/etcd\s+1\.0\.0\s+2/);
    const show = await run(['workloads', 'show', 'etcd'], env);
    expect(show.out).toContain('workload/etcd  1.0.0');
    expect(show.out).toMatch(/etcd-member\s+cluster\s+node-ready/);
  });
});
