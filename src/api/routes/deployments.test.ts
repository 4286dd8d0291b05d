import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { loadPack, registerPacks } from '../../workloads/loader.js';
import { packageRoot } from '../../package.js';
import { openHarness, type Harness } from '../testing/harness.js';

const testdata = (p: string) => path.join(packageRoot(), 'src', 'workloads', 'testdata', p);

describe.each(STORE_ENGINES)('deployment routes on $name', (engine) => {
  let h: Harness;
  beforeEach(async () => {
    h = await openHarness(engine);
    const core = loadPack(path.join(packageRoot(), 'workloads', 'core'));
    const etcd = loadPack(testdata('etcd'), { context: core.roles });
    await registerPacks(h.t.store, [core, etcd]);
    await h.t.store.objects('providers').create({ name: 'lab', type: 'lab' });
  });
  afterEach(() => h.close());

  it('applies a Deployment through /apply, commits it, and shows its tree', async () => {
    const doc = { kind: 'Deployment', name: 'demo', provider: 'lab', nodes: { count: 2 }, roles: { 'etcd-member': { nodes: [0, 1] } }, commit: false };
    const applied = await h.call('POST', '/api/v1/apply', { body: { documents: [doc] } });
    expect(applied.statusCode).toBe(200);
    expect(applied.json().results[0]).toMatchObject({ kind: 'Deployment', name: 'demo', action: 'created' });

    const bad = await h.call('POST', '/api/v1/apply', { body: { documents: [{ ...doc, nodes: { count: -1 } }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('nodes.count');

    expect((await h.call('POST', '/api/v1/deployments/demo/commit', { token: h.tokens.viewer })).statusCode).toBe(403);
    const commit = await h.call('POST', '/api/v1/deployments/demo/commit', { token: h.tokens.operator });
    expect(commit.statusCode).toBe(200);
    expect(commit.json()).toMatchObject({ deployment: { name: 'demo', state: 'committed' }, changed: 6 });

    const tree = await h.call('GET', '/api/v1/deployments/demo/tree', { token: h.tokens.viewer });
    expect(tree.statusCode).toBe(200);
    const body = tree.json();
    expect(body.nodes.map((n: { name: string }) => n.name)).toEqual(['demo-0', 'demo-1']);
    expect(body.nodes[1].noderoles[2]).toMatchObject({ role: 'etcd-member', state: 'blocked', blockedReason: 'waiting for demo:demo-0:node-ready (blocked)', parents: ['demo:demo-0:node-ready', 'demo:demo-1:node-ready'] });
    expect((await h.call('GET', '/api/v1/deployments/nope/tree')).statusCode).toBe(404);
  });

  it('refuses a spec of the wrong shape through the generic routes, so the tree never meets one', async () => {
    for (const spec of [{ nodes: 5 }, { nodes: [{ size: 'm' }] }, { roles: { r: { nodes: 'all' } } }, { extra: 1 }]) {
      const res = await h.call('POST', '/api/v1/deployments', { body: { name: 'd1', spec } });
      expect(res.statusCode, JSON.stringify(spec)).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION');
      expect(res.json().error.details.errors[0].path).toMatch(/^\/spec/);
    }
    expect((await h.call('PATCH', '/api/v1/deployments/demo-x', { body: { spec: { nodes: 5 } } })).statusCode).toBe(400);
    // Every field apply stores is accepted (a GET, edit, PUT round trip must work).
    const ok = await h.call('POST', '/api/v1/deployments', { body: { name: 'd1', spec: { nodes: [{ name: 'a' }], roles: { r: { nodes: ['a'], inputs: { x: 1 }, requires: ['q'] } } } } });
    expect(ok.statusCode).toBe(201);
    const tree = await h.call('GET', '/api/v1/deployments/d1/tree');
    expect(tree.statusCode).toBe(200);
    expect(tree.json().nodes.map((n: { name: string }) => n.name)).toEqual(['a']);
  });

  it('writes none of the documents when a Deployment among them cannot be planned', async () => {
    const before = await h.t.store.events.latestSeq();
    const res = await h.call('POST', '/api/v1/apply', {
      body: {
        documents: [
          { kind: 'Provider', name: 'atomic-lab', type: 'lab', settings: { subnetIndex: 9 } },
          { kind: 'Deployment', name: 'atomic', provider: 'atomic-lab', nodes: { count: 1 }, roles: { 'no-such-role': { nodes: [0] } } },
        ],
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'ROLE_UNKNOWN', message: expect.stringContaining('no-such-role') });
    expect((await h.call('GET', '/api/v1/providers/atomic-lab')).statusCode).toBe(404);
    expect(await h.t.store.events.latestSeq()).toBe(before);
  });

  describe('inputs, checked before anything is written', () => {
    beforeEach(async () => {
      const web = { requires: ['node-ready'], inputs: { count: 'integer', site: { type: 'string', required: true }, port: { type: 'integer', default: 80 } }, implementation: { kind: 'builtin', handler: 'noop' } };
      expect((await h.call('POST', '/api/v1/workloads', { body: { name: 'webpack', workloadVersion: '1', defaults: {} } })).statusCode).toBe(201);
      expect((await h.call('POST', '/api/v1/roles', { body: { name: 'web', workload: 'webpack', spec: web } })).statusCode).toBe(201);
    });
    const web = (name: string, binding: Record<string, unknown>, more: Record<string, unknown> = {}) => ({ kind: 'Deployment', name, provider: 'lab', nodes: { count: 2 }, roles: { web: { nodes: [0, 1], ...binding } }, commit: false, ...more });

    it('refuses a missing required input and literals of the wrong type, every one of every document, writing nothing', async () => {
      const before = await h.t.store.events.latestSeq();
      const res = await h.call('POST', '/api/v1/apply', {
        body: { documents: [web('d1', { inputs: { count: 'two' } }), web('d2', { inputs: { count: 2, site: 'x' } }, { attribs: { port: 'eighty' } })] },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION');
      expect(res.json().error.details.errors).toEqual([
        {
          path: '/documents/0/roles/web/inputs/count',
          message: 'deployment "d1", role "web", input "count" (nodes d1-0, d1-1): the value "two" from the binding\'s inputs does not match the input\'s schema ((value) must be integer); give a value of type integer',
        },
        {
          path: '/documents/0/roles/web/inputs/site',
          message: 'deployment "d1", role "web", input "site" (nodes d1-0, d1-1): required, and nothing gives it a value: set roles.web.inputs.site or attribs.site in the deployment (or the node\'s attribs), or give the role a default or a "from"',
        },
        {
          path: '/documents/1/attribs/port',
          message: 'deployment "d2", role "web", input "port" (nodes d2-0, d2-1): the value "eighty" from the deployment\'s attribs does not match the input\'s schema ((value) must be integer); give a value of type integer',
        },
      ]);
      expect(await h.t.store.events.latestSeq()).toBe(before);
      expect((await h.call('GET', '/api/v1/deployments/d1')).statusCode).toBe(404);
      // The applier called on its own (not through apply) refuses the same, all at once.
      await expect(h.services.appliers.get('Deployment')!(web('d1', { inputs: { count: 'two' } }), {})).rejects.toMatchObject({
        code: 'INPUT_INVALID',
        details: { errors: [{ path: '/roles/web/inputs/count' }, { path: '/roles/web/inputs/site' }] },
      });
    });

    it('accepts a required input given by any level, and leaves expressions to run time', async () => {
      const ok = async (...docs: Record<string, unknown>[]) => {
        const res = await h.call('POST', '/api/v1/apply', { body: { documents: docs } });
        expect(res.statusCode, res.body).toBe(200);
      };
      await ok(web('d1', { inputs: { site: 'a', count: 'node.name' } })); // an expression: judged when it runs
      await ok(web('d2', {}, { attribs: { site: 'b', count: 3 } }));
      await ok({ kind: 'Workload', name: 'webpack', workloadVersion: '1', defaults: { site: 'c' } }, web('d3', {}));
    });
  });

  it('validates a pack sent as text, listing every problem', async () => {
    const ok = await h.call('POST', '/api/v1/workloads/validate', {
      token: h.tokens.viewer,
      body: { workloadYaml: 'name: web\nversion: 1.0.0\nroles:\n  - name: web\n    requires: [node-ready]\n    implementation: { kind: script, file: web.sh }\n', files: { 'web.sh': 'echo' } },
    });
    expect(ok.json()).toEqual({ valid: true, errors: [], workload: { name: 'web', version: '1.0.0', roles: ['web'] } });
    const bad = await h.call('POST', '/api/v1/workloads/validate', {
      body: { workloadYaml: 'name: web\nversion: 1.0.0\nroles:\n  - name: web\n    requires: [ghost]\n    inputs: { n: { type: integr } }\n    implementation: { kind: script, file: web.sh }\n' },
    });
    expect(bad.statusCode).toBe(200);
    expect(bad.json().valid).toBe(false);
    expect(bad.json().errors.map((e: { field: string }) => e.field)).toEqual(['requires', 'inputs.n.schema', 'implementation.file']);
  });

  it('lists its routes in the OpenAPI document', async () => {
    const doc = (await h.call('GET', '/api/v1/openapi.json')).json();
    expect(Object.keys(doc.paths ?? {})).toEqual(expect.arrayContaining(['/api/v1/deployments/{name}/commit', '/api/v1/deployments/{name}/tree', '/api/v1/workloads/validate']));
  });
});
