import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { GENERATED_KEY, resolveInputs } from '../core/attribs.js';
import type { RoleSpec } from '../core/roles.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { loadPack, registerPacks } from '../workloads/loader.js';
import { packageRoot } from '../package.js';
import { DeploymentService, parseDeploymentDocument, registerDeploymentServices } from './deployments.js';
import type { Services } from '../context/services.js';
import { ContextLoader, resolveContext } from '../engine/inputs.js';

const testdata = (p: string) => path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workloads', 'testdata', p);

const DOC = {
  kind: 'Deployment',
  name: 'demo',
  provider: 'lab',
  nodes: { count: 4, size: 'small', image: 'debian-12' },
  roles: {
    'etcd-member': { nodes: [0, 1, 2] },
    haproxy: { nodes: [3], inputs: { backends: 'outputs(etcd-member).client-url' } },
  },
  attribs: { 'etcd-version': '3.4' },
};

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('parseDeploymentDocument', () => {
  it('normalizes counts, indexes and names', () => {
    const d = parseDeploymentDocument({ ...DOC, nodes: [{ name: 'a', size: 'small' }, 'b'], roles: { haproxy: ['b'], 'etcd-member': { nodes: [0] } } });
    expect(d.spec).toEqual({ nodes: [{ name: 'a', size: 'small' }, { name: 'b' }], roles: { haproxy: { nodes: ['b'] }, 'etcd-member': { nodes: ['a'] } } });
    expect(d.commit).toBe(true);
    expect(() => parseDeploymentDocument({ ...DOC, roles: { haproxy: { nodes: [9] } } })).toThrow(/out of range/);
    expect(() => parseDeploymentDocument({ ...DOC, node: {} })).toThrow(/no field "node"/);
  });

  it('reads a binding\'s requires: a list of role names', () => {
    const d = parseDeploymentDocument({ ...DOC, roles: { haproxy: { nodes: [3], requires: ['etcd-healthy', 'etcd-healthy'] } } });
    expect(d.spec.roles.haproxy).toEqual({ nodes: ['demo-3'], requires: ['etcd-healthy'] });
    expect(() => parseDeploymentDocument({ ...DOC, roles: { haproxy: { nodes: [3], requires: 'etcd-healthy' } } })).toThrow('"roles.haproxy.requires" must be a list of role names');
  });

  it('the shipped demo releases haproxy only after etcd-healthy, taking backends from the members', () => {
    const docs = parseAllDocuments(readFileSync(path.join(packageRoot(), 'examples', 'lab-demo.yaml'), 'utf8')).map((d) => d.toJSON() as Record<string, unknown>);
    const demo = parseDeploymentDocument(docs.find((d) => d.kind === 'Deployment')!);
    expect(demo.spec.roles.haproxy).toEqual({ nodes: ['demo-3'], requires: ['etcd-healthy'], inputs: { backends: 'outputs(etcd-member).client-url' } });
  });
});

describe.each(STORE_ENGINES)('deployments on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let svc: DeploymentService;
  let kicks: number;

  beforeEach(async () => {
    t = await engine.open();
    kicks = 0;
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map(), engine: { start: async () => {}, stop: async () => {}, kick: () => void kicks++ } };
    svc = registerDeploymentServices(services);
    const core = loadPack(path.join(packageRoot(), 'workloads', 'core'));
    const etcd = loadPack(testdata('etcd'), { context: core.roles });
    const haproxy = loadPack(testdata('haproxy'), { context: [...core.roles, ...etcd.roles] });
    await registerPacks(t.store, [core, etcd, haproxy]);
    await t.store.objects('providers').create({ name: 'lab', type: 'lab' });
  });
  afterEach(() => t.cleanup());

  const apply = (doc: Record<string, unknown>) => services.appliers.get('Deployment')!(doc, { actor: 'tester' });
  const noderoles = async () => Object.fromEntries((await t.store.objects('noderoles').all({ filters: { deployment: 'demo' } })).map((o) => [o.name, o]));
  const links = async () => (await t.store.db.selectFrom('noderole_links').selectAll().execute()).length;

  it('applies: deployment, nodes, planned node-roles with states, reasons and links; then a tree', async () => {
    const res = await apply(DOC);
    expect(res).toMatchObject({ kind: 'Deployment', name: 'demo', action: 'created' });
    expect(res.object.state).toBe('committed');
    expect(kicks).toBe(1);
    const nodes = await t.store.objects('nodes').all({ filters: { deployment: 'demo' } });
    expect(nodes.map((n) => [n.name, n.provider, n.sizeNormalized, n.imageNormalized, n.state])).toEqual(
      [0, 1, 2, 3].map((i) => [`demo-${i}`, 'lab', 'small', 'debian-12', 'pending']),
    );
    const nrs = await noderoles();
    expect(Object.keys(nrs)).toHaveLength(4 * 2 + 3 + 1);
    expect(nrs['demo:demo-0:provision']).toMatchObject({ state: 'todo', parents: [] });
    expect(nrs['demo:demo-0:node-ready']).toMatchObject({ state: 'blocked', blockedReason: 'waiting for demo:demo-0:provision (todo)' });
    expect(nrs['demo:demo-3:haproxy'].parents).toEqual(
      ['demo:demo-0:etcd-member', 'demo:demo-1:etcd-member', 'demo:demo-2:etcd-member', 'demo:demo-3:node-ready'].map((n) => nrs[n].id),
    );
    expect(nrs['demo:demo-3:haproxy'].attribs).toMatchObject({ backends: { $from: 'outputs(etcd-member).client-url' } });
    // provision → node-ready ×4; each etcd member waits for node-ready on all 3 members' nodes; haproxy → 3 members + its node-ready
    expect(await links()).toBe(4 + 3 * 3 + 4);
    expect(nrs['demo:demo-1:etcd-member'].parents).toEqual(['demo:demo-0:node-ready', 'demo:demo-1:node-ready', 'demo:demo-2:node-ready'].map((n) => nrs[n].id));

    const tree = await svc.describeTree('demo');
    expect(tree.deployment).toEqual({ name: 'demo', state: 'committed', provider: 'lab' });
    expect(tree.nodes.map((n) => [n.name, n.state, n.noderoles.map((r) => r.role)])).toEqual([
      ['demo-0', 'pending', ['provision', 'node-ready', 'etcd-member']],
      ['demo-1', 'pending', ['provision', 'node-ready', 'etcd-member']],
      ['demo-2', 'pending', ['provision', 'node-ready', 'etcd-member']],
      ['demo-3', 'pending', ['provision', 'node-ready', 'haproxy']],
    ]);
    expect(tree.nodes[3].noderoles[2]).toMatchObject({ state: 'blocked', blockedReason: 'waiting for demo:demo-0:etcd-member (blocked)' });
    expect(tree.counts).toEqual({ todo: 4, blocked: 8 });
  });

  it('a binding\'s requires makes every node-role of that role a parent, beside those whose outputs it reads', async () => {
    const doc = clone(DOC) as Omit<typeof DOC, 'roles'> & { roles: Record<string, unknown> };
    doc.roles['etcd-healthy'] = { nodes: [0] };
    doc.roles.haproxy = { nodes: [3], requires: ['etcd-healthy'], inputs: { backends: 'outputs(etcd-member).client-url' } };
    await apply(doc);
    const nrs = await noderoles();
    const nameOf = new Map(Object.values(nrs).map((o) => [o.id, o.name]));
    expect((nrs['demo:demo-3:haproxy'].parents as string[]).map((id) => nameOf.get(id)).sort()).toEqual(
      ['demo:demo-0:etcd-healthy', 'demo:demo-0:etcd-member', 'demo:demo-1:etcd-member', 'demo:demo-2:etcd-member', 'demo:demo-3:node-ready'],
    );
    doc.roles.haproxy = { nodes: [3], requires: ['nothing-bound'] };
    await expect(apply(doc)).rejects.toThrow('role "haproxy" reads outputs(nothing-bound) or requires it');
  });

  it('re-applying the same document writes nothing', async () => {
    await apply(DOC);
    const seq = await t.store.events.latestSeq();
    const before = await noderoles();
    const res = await apply(clone(DOC));
    expect(res.action).toBe('unchanged');
    expect(await t.store.events.latestSeq()).toBe(seq);
    expect(await noderoles()).toEqual(before);
  });

  it('proposes without commit, then commit moves node-roles to todo/blocked and kicks the engine', async () => {
    await apply({ ...DOC, commit: false });
    expect(kicks).toBe(0);
    expect(Object.values(await noderoles()).every((o) => o.state === 'proposed')).toBe(true);
    expect((await t.store.objects('deployments').get('demo')).state).toBe('proposed');
    const { changed } = await svc.commit('demo');
    expect(changed).toBe(12);
    expect(kicks).toBe(1);
    const nrs = await noderoles();
    expect(nrs['demo:demo-1:provision'].state).toBe('todo');
    expect(nrs['demo:demo-1:etcd-member']).toMatchObject({ state: 'blocked', blockedReason: 'waiting for demo:demo-0:node-ready (blocked)' });
  });

  it('a re-apply keeps a failure named on every blocked descendant (not "waiting for X (blocked)")', async () => {
    await apply(DOC);
    const repo = t.store.objects('noderoles');
    await repo.update('demo:demo-0:provision', { state: 'error', lastError: { code: 'RUN_FAILED', message: 'boom' } });
    const below = ['demo:demo-0:node-ready', 'demo:demo-0:etcd-member', 'demo:demo-1:etcd-member', 'demo:demo-2:etcd-member', 'demo:demo-3:haproxy'];
    const reason = 'parent demo:demo-0:provision failed: boom';
    // As the annealer leaves them when provision fails.
    for (const n of below) await repo.update(n, { state: 'blocked', blockedReason: reason });
    const res = await apply(clone(DOC));
    expect(res.action).toBe('unchanged');
    const nrs = await noderoles();
    for (const n of below) expect({ n, reason: nrs[n].blockedReason }).toEqual({ n, reason });
    // A branch with no failure above it still says what it waits for.
    expect(nrs['demo:demo-1:node-ready'].blockedReason).toBe('waiting for demo:demo-1:provision (todo)');
  });

  it('keeps generated values across re-plans; cluster members share them', async () => {
    await apply(DOC);
    const gen = (nrs: Record<string, Record<string, unknown>>, n: string) => (nrs[n].attribs as Record<string, Record<string, string>>)[GENERATED_KEY];
    const first = await noderoles();
    const token = gen(first, 'demo:demo-0:etcd-member')['cluster-token'];
    // Stored sealed (a secret), opened only to run.
    expect(token).toMatch(/^v2:/); // bound to its deployment: it opens nowhere else
    expect(t.store.secrets.unseal(token, 'deployment:demo')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(() => t.store.secrets.unseal(token, 'deployment:other')).toThrow(/sealed for another object/);
    expect(gen(first, 'demo:demo-2:etcd-member')['cluster-token']).toBe(token);
    expect(t.store.secrets.unseal(gen(first, 'demo:demo-3:haproxy')['stats-password'], 'deployment:demo')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // a fourth member joins: same token; everything else kept
    const grown = clone(DOC) as typeof DOC & { nodes: { count: number } };
    grown.nodes.count = 5;
    grown.roles['etcd-member'].nodes.push(4);
    await apply(grown);
    const second = await noderoles();
    expect(gen(second, 'demo:demo-4:etcd-member')['cluster-token']).toBe(token);
    expect(gen(second, 'demo:demo-3:haproxy')).toEqual(gen(first, 'demo:demo-3:haproxy'));
    expect(second['demo:demo-3:haproxy'].parents).toHaveLength(5);
  });

  it('values given for secret inputs are stored sealed, kept across re-applies, and opened only to run', async () => {
    const VALUE = 'Us3r-Given-S3CRET';
    const doc = clone(DOC) as Omit<typeof DOC, 'attribs' | 'roles'> & { attribs: Record<string, unknown>; roles: Record<string, { nodes: number[]; inputs?: Record<string, unknown> }> };
    doc.attribs['cluster-token'] = VALUE; // etcd-member's secret input, for the whole deployment
    doc.roles.haproxy.inputs = { ...doc.roles.haproxy.inputs, 'stats-password': `${VALUE}-2` }; // haproxy's, on its binding
    await apply(doc);
    const stored = JSON.stringify([await t.store.db.selectFrom('deployments').selectAll().execute(), await t.store.db.selectFrom('noderoles').selectAll().execute(), await t.store.db.selectFrom('events').selectAll().execute()]);
    expect(stored).not.toContain(VALUE);
    expect(stored).toMatch(/\$sealed[\\"]+:[\\"]+v2:/);
    expect(doc.attribs['cluster-token']).toBe(VALUE); // the caller's document is not rewritten
    // Re-applying the same values in clear is a no-op: the sealed forms are kept, not re-encrypted.
    expect((await apply(clone(doc))).action).toBe('unchanged');
    // So is applying what the API shows (the sealed form); one sealed elsewhere is refused.
    const shown = (await t.store.objects('deployments').get('demo')).attribs as Record<string, unknown>;
    expect((await apply({ ...clone(doc), attribs: { ...doc.attribs, 'cluster-token': shown['cluster-token'] } })).action).toBe('unchanged');
    await expect(apply({ ...clone(doc), attribs: { ...doc.attribs, 'cluster-token': { $sealed: 'v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } } })).rejects.toThrow(/was not sealed for this object/);
    // Nor does a value sealed for another deployment open here (a copy of its sealed form).
    await apply({ ...clone(doc), name: 'other', nodes: { count: 1 }, roles: { 'etcd-member': { nodes: [0] } } });
    const foreign = ((await t.store.objects('deployments').get('other')).attribs as Record<string, unknown>)['cluster-token'];
    expect(foreign).toMatchObject({ $sealed: expect.stringMatching(/^v2:/) });
    await expect(apply({ ...clone(doc), attribs: { ...doc.attribs, 'cluster-token': foreign } })).rejects.toThrow(/was not sealed for this object/);

    const nrs = await noderoles();
    const loader = new ContextLoader(t.store.secrets);
    const member = resolveContext(await loader.load(nrs['demo:demo-0:etcd-member'], t.store));
    expect(member.inputs['cluster-token']).toBe(VALUE);
    expect(resolveContext(await loader.load(nrs['demo:demo-3:haproxy'], t.store)).inputs['stats-password']).toBe(`${VALUE}-2`);
    // A changed value is sealed anew, and the input hash follows it.
    doc.attribs['cluster-token'] = `${VALUE}-changed`;
    expect((await apply(doc)).action).toBe('updated');
    const changed = resolveContext(await loader.load((await noderoles())['demo:demo-0:etcd-member'], t.store));
    expect(changed.inputs['cluster-token']).toBe(`${VALUE}-changed`);
    expect(changed.hash).not.toBe(member.hash);
  });

  it('an attrib change updates only the objects that hold it', async () => {
    await apply(DOC);
    const before = await noderoles();
    const depVersion = (await t.store.objects('deployments').get('demo')).version;

    await apply({ ...clone(DOC), attribs: { 'etcd-version': '3.5' } });
    const dep = await t.store.objects('deployments').get('demo');
    expect(dep.attribs).toEqual({ 'etcd-version': '3.5' });
    expect(dep.version).toBe(depVersion + 1);
    expect(await noderoles()).toEqual(before);

    const changed = clone(DOC);
    changed.roles.haproxy.inputs = { backends: 'outputs(etcd-member).client-url', port: 8080 } as typeof changed.roles.haproxy.inputs;
    const res = await apply({ ...changed, attribs: { 'etcd-version': '3.5' } });
    expect(res.action).toBe('updated');
    const after = await noderoles();
    for (const [name, o] of Object.entries(after)) {
      if (name === 'demo:demo-3:haproxy') {
        expect(o.version).toBe(before[name].version + 1);
        expect(o.attribs).toMatchObject({ port: 8080 });
      } else expect(o.version).toBe(before[name].version);
    }
  });

  it('removing a binding deletes its node-roles and links', async () => {
    await apply(DOC);
    const { haproxy: _h, ...roles } = DOC.roles;
    await apply({ ...DOC, roles });
    const nrs = await noderoles();
    expect(nrs['demo:demo-3:haproxy']).toBeUndefined();
    // node-ready stays on every node
    expect(nrs['demo:demo-3:node-ready']).toBeDefined();
    expect(await links()).toBe(4 + 3 * 3);
  });

  it('refuses a bad document whole: the store is unchanged', async () => {
    await apply(DOC);
    const seq = await t.store.events.latestSeq();
    const before = await noderoles();
    const bad = clone(DOC) as Record<string, unknown> & typeof DOC;
    (bad.roles as Record<string, unknown>).nginx = { nodes: [3] }; // conflicts with haproxy on demo-3
    bad.attribs = { 'etcd-version': '9' };
    await expect(apply(bad)).rejects.toMatchObject({ code: 'ROLE_CONFLICT' });
    await expect(apply({ ...DOC, roles: { ghost: { nodes: [0] } } })).rejects.toMatchObject({ code: 'ROLE_UNKNOWN' });
    await expect(apply({ ...DOC, roles: { haproxy: { nodes: [3], inputs: { nope: 1 } } } })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    await expect(apply({ ...DOC, provider: 'nowhere' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await t.store.events.latestSeq()).toBe(seq);
    expect(await noderoles()).toEqual(before);
    expect((await t.store.objects('deployments').get('demo')).attribs).toEqual({ 'etcd-version': '3.4' });

    // a failure after writes began (a node owned by another deployment) rolls everything back
    await t.store.objects('nodes').create({ name: 'other-1', deployment: 'other' });
    await expect(apply({ ...DOC, name: 'fresh', nodes: [{ name: 'fresh-0' }, { name: 'other-1' }], roles: {} })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await t.store.objects('deployments').find('fresh')).toBeUndefined();
    expect(await t.store.objects('nodes').find('fresh-0')).toBeUndefined();
  });

  it('stores what the annealer needs to resolve inputs (binding expressions, generated values, defaults)', async () => {
    await apply(DOC);
    const nrs = await noderoles();
    for (const [i, n] of ['demo:demo-0:etcd-member', 'demo:demo-1:etcd-member', 'demo:demo-2:etcd-member'].entries()) {
      await t.store.objects('noderoles').update(nrs[n].id, { outputs: { 'client-url': `http://10.0.0.${i}:2379` } });
    }
    const haproxy = nrs['demo:demo-3:haproxy'];
    const role = (await t.store.objects('roles').get('haproxy')).spec as RoleSpec;
    const parents = await Promise.all((haproxy.parents as string[]).map((id) => t.store.objects('noderoles').get(id)));
    const { inputs, sources } = resolveInputs(role, {
      noderole: { name: haproxy.name, attribs: haproxy.attribs as Record<string, unknown> },
      node: { name: 'demo-3' },
      deployment: { name: 'demo', attribs: { 'etcd-version': '3.4' } },
      parents: parents.map((p) => ({ name: p.name, role: p.role as string, outputs: p.outputs as Record<string, unknown> })),
    });
    expect(inputs.backends).toEqual(['http://10.0.0.0:2379', 'http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
    expect(sources).toMatchObject({ backends: 'noderole', port: 'default', 'stats-password': 'generated' });
  });
});
