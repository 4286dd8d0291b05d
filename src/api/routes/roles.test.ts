import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { loadPack, registerPacks } from '../../workloads/loader.js';
import { packageRoot } from '../../package.js';
import { openHarness, type Harness } from '../testing/harness.js';

/** Role and workload writes pass the checks packs pass; a role in use cannot be deleted. */

const testdata = (p: string) => path.join(packageRoot(), 'src', 'workloads', 'testdata', p);
const builtin = (handler = 'noop') => ({ kind: 'builtin', handler });

describe.each(STORE_ENGINES)('role writes on $name', (engine) => {
  let h: Harness;
  beforeEach(async () => {
    h = await openHarness(engine);
    const core = loadPack(path.join(packageRoot(), 'workloads', 'core'));
    await registerPacks(h.t.store, [core, loadPack(testdata('etcd'), { context: core.roles })]);
    await h.t.store.objects('providers').create({ name: 'lab', type: 'lab' });
  });
  afterEach(() => h.close());

  const paths = (res: { json(): { error: { details: { errors: Array<{ path: string }> } } } }) => res.json().error.details.errors.map((e) => e.path);

  it('refuses, on every write route, a role spec that a pack would be refused for, naming every problem', async () => {
    const spec = { requires: ['loop'], colour: 'red', implementation: { kind: 'lcoal', file: 'x.sh' } };
    const want = ['/spec/colour', '/spec/implementation/kind', '/spec/requires'];
    const post = await h.call('POST', '/api/v1/roles', { body: { name: 'loop', spec } });
    expect(post.statusCode).toBe(400);
    expect(post.json().error.code).toBe('VALIDATION');
    expect(paths(post)).toEqual(want);
    expect(post.json().error.details.errors[2].message).toBe('role "loop": requires: role "loop" requires itself');
    expect((await h.call('PUT', '/api/v1/roles/loop', { body: { spec } })).statusCode).toBe(400);
    expect((await h.call('GET', '/api/v1/roles/loop')).statusCode).toBe(404);

    // PATCH checks the role as it would be stored: a sound role may not be changed into a bad one.
    const patch = await h.call('PATCH', '/api/v1/roles/etcd-healthy', { body: { spec: { requires: ['etcd-healthy', 'nod-ready'], implementation: builtin() } } });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().error.details.errors.map((e: { message: string }) => e.message)).toEqual([
      'role "etcd-healthy": requires: role "etcd-healthy" requires itself',
      'role "etcd-healthy": requires: unknown role or alias "nod-ready": no loaded role has that name or provides it',
    ]);
    const applied = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Role', name: 'loop', spec }] } });
    expect(applied.statusCode).toBe(400);
    expect(paths(applied)).toEqual(want.map((p) => `/documents/0${p}`));
  });

  it('stores a sound role in its parsed form, and checks its implementation file against its workload', async () => {
    const res = await h.call('POST', '/api/v1/roles', { body: { name: 'web', spec: { requires: 'node-ready', inputs: { port: 'integer' }, implementation: builtin('web') } } });
    expect(res.statusCode).toBe(201);
    // The form the engine reads: a list of requirements, the input's type as a schema.
    expect(res.json().spec).toMatchObject({ name: 'web', requires: ['node-ready'], inputs: { port: { schema: { type: 'integer' } } } });

    const missing = await h.call('POST', '/api/v1/roles', { body: { name: 'etcd-extra', workload: 'etcd', spec: { implementation: { kind: 'script', file: 'extra.sh' } } } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.details.errors[0]).toMatchObject({ path: '/spec/implementation/file', message: expect.stringContaining('"extra.sh" does not exist') });
    const runs = await h.call('POST', '/api/v1/roles', { body: { name: 'etcd-extra', workload: 'etcd', spec: { implementation: { kind: 'script', file: 'member.sh' } } } });
    expect(runs.statusCode).toBe(201);

    // The workload may not drop a file a role runs.
    const files = await h.call('PATCH', '/api/v1/workloads/etcd', { body: { files: { 'health.sh': 'true' } } });
    expect(files.statusCode).toBe(400);
    expect(files.json().error.details.errors.map((e: { path: string; message: string }) => [e.path, e.message.split(':')[0]]).sort()).toEqual([
      ['/files', 'role "etcd-extra" of workload "etcd"'],
      ['/files', 'role "etcd-member" of workload "etcd"'],
    ]);
  });

  it('applies roles that require each other within one apply, in any order', async () => {
    const res = await h.call('POST', '/api/v1/apply', {
      body: {
        documents: [
          { kind: 'Role', name: 'app', spec: { requires: ['db'], implementation: builtin() } },
          { kind: 'Role', name: 'db', spec: { requires: ['node-ready'], implementation: builtin() } },
        ],
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().results.map((r: { action: string }) => r.action)).toEqual(['created', 'created']);
    // …but not into a cycle.
    const cycle = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Role', name: 'db', spec: { requires: ['app'], implementation: builtin() } }] } });
    expect(cycle.statusCode).toBe(400);
    expect(cycle.json().error.details.errors[0].message).toContain('roles require each other in a cycle');
  });

  it('refuses to delete a role that node-roles use (409, naming them), and deletes it once unused', async () => {
    const doc = { kind: 'Deployment', name: 'demo', provider: 'lab', nodes: { count: 3 }, roles: { 'etcd-member': { nodes: [0, 2] } }, commit: false };
    expect((await h.call('POST', '/api/v1/apply', { body: { documents: [doc] } })).statusCode).toBe(200);
    const before = await h.t.store.events.latestSeq();

    const res = await h.call('DELETE', '/api/v1/roles/etcd-member');
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('deployment "demo" (nodes demo-0, demo-2)'),
      details: { kind: 'roles', key: 'etcd-member', usedBy: [{ deployment: 'demo', nodes: ['demo-0', 'demo-2'] }] },
    });
    expect((await h.call('GET', '/api/v1/roles/etcd-member')).statusCode).toBe(200);
    expect(await h.t.store.events.latestSeq()).toBe(before);

    // A role nothing uses is deleted as before; so is this one once its binding is gone.
    expect((await h.call('DELETE', '/api/v1/roles/etcd-healthy')).statusCode).toBe(200);
    expect((await h.call('POST', '/api/v1/apply', { body: { documents: [{ ...doc, roles: {} }] } })).statusCode).toBe(200);
    expect((await h.call('DELETE', '/api/v1/roles/etcd-member')).statusCode).toBe(200);
  });
});
