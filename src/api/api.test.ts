import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { STORE_ENGINES } from '../store/testing/engines.js';
import { CREATED_BY_FORMWORK, KINDS } from '../core/kinds.js';
import { openHarness, type Harness } from './testing/harness.js';

/** A valid create body per writable kind (besides `name`). */
const SAMPLE: Record<string, Record<string, unknown>> = {
  providers: { type: 'lab', settings: { subnetIndex: 3 } },
  nodes: { provider: 'lab', state: 'new', addresses: [{ address: '10.0.0.5', family: 4, role: 'private' }] },
  workloads: { workloadVersion: '1.0.0', defaults: { a: 1 } },
  roles: { workload: 'etcd', spec: { requires: [], implementation: { kind: 'builtin', handler: 'noop' } } },
  deployments: { provider: 'lab', spec: {} },
  users: { role: 'viewer' },
  secrets: { description: 'creds', data: { key: 'v' } },
};
/** A change per kind, for PATCH. */
const CHANGE: Record<string, Record<string, unknown>> = {
  providers: { settings: { subnetIndex: 4 } },
  nodes: { zone: 'z1' },
  workloads: { description: 'changed' },
  roles: { description: 'changed' },
  deployments: { attribs: { x: 1 } },
  users: { role: 'operator' },
  secrets: { description: 'changed' },
};

const json = (body: string) => JSON.parse(body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe.each(STORE_ENGINES)('API on $name', (engine) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(engine, { bodyLimit: 64 * 1024 });
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('authentication and roles', () => {
    it('401 without a token, with an unknown, a revoked and an expired token', async () => {
      const none = await h.call('GET', '/api/v1/nodes', { token: null });
      expect(none.statusCode).toBe(401);
      expect(json(none.body).error.code).toBe('UNAUTHENTICATED');
      expect((await h.call('GET', '/api/v1/nodes', { token: 'fwt_nope' })).statusCode).toBe(401);
      expect((await h.call('GET', '/api/v1/nodes', { token: null, headers: { authorization: 'Basic abc' } })).statusCode).toBe(401);

      const created = await h.call('POST', '/api/v1/tokens', { body: { user: 'temp', role: 'viewer', description: 'to revoke' } });
      expect(created.statusCode).toBe(201);
      const { token, info } = json(created.body);
      expect((await h.call('GET', '/api/v1/whoami', { token })).statusCode).toBe(200);
      const revoked = await h.call('DELETE', `/api/v1/tokens/${info.id}`);
      expect(revoked.statusCode).toBe(200);
      expect(json(revoked.body).revokedAt).toBeTruthy();
      const after = await h.call('GET', '/api/v1/nodes', { token });
      expect(after.statusCode).toBe(401);
      expect(json(after.body).error.message).toMatch(/revoked/);

      const exp = json((await h.call('POST', '/api/v1/tokens', { body: { user: 'temp', expiresInSeconds: 3600 } })).body);
      await h.t.store.db.updateTable('tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', exp.info.id).execute();
      const expired = await h.call('GET', '/api/v1/nodes', { token: exp.token });
      expect(expired.statusCode).toBe(401);
      expect(json(expired.body).error.message).toMatch(/expired/);
    });

    it('whoami tells the user and role', async () => {
      const res = await h.call('GET', '/api/v1/whoami', { token: h.tokens.operator });
      expect(json(res.body)).toMatchObject({ user: 'operator-user', role: 'operator' });
    });

    it('403 for a viewer write, naming the role needed', async () => {
      const res = await h.call('POST', '/api/v1/nodes', { token: h.tokens.viewer, body: { name: 'v-1' } });
      expect(res.statusCode).toBe(403);
      expect(json(res.body).error).toMatchObject({ code: 'FORBIDDEN' });
      expect(json(res.body).error.message).toMatch(/operator role/);
      expect((await h.call('GET', '/api/v1/nodes', { token: h.tokens.viewer })).statusCode).toBe(200);
      expect((await h.call('POST', '/api/v1/apply', { token: h.tokens.viewer, body: { documents: [{ kind: 'Node', name: 'v-2' }] } })).statusCode).toBe(403);
    });

    it('403 for an operator (and a viewer) on secrets, users and tokens; 200 for admin', async () => {
      for (const token of [h.tokens.operator, h.tokens.viewer]) {
        for (const [method, url, body] of [
          ['GET', '/api/v1/secrets'],
          ['GET', '/api/v1/users'],
          ['GET', '/api/v1/tokens'],
          ['POST', '/api/v1/secrets', { name: 'op-s', data: { a: 'b' } }],
          ['POST', '/api/v1/users', { name: 'op-u', role: 'admin' }],
          ['POST', '/api/v1/tokens', { user: 'operator-user' }],
        ] as const) {
          const res = await h.call(method, url, { token, body });
          expect(res.statusCode, `${method} ${url}`).toBe(403);
          expect(json(res.body).error.message).toMatch(/admin role/);
        }
      }
      const apply = await h.call('POST', '/api/v1/apply', { token: h.tokens.operator, body: { documents: [{ kind: 'Secret', name: 'op-s', data: { a: 'b' } }] } });
      expect(apply.statusCode).toBe(403);
      for (const url of ['/api/v1/secrets', '/api/v1/users', '/api/v1/tokens']) expect((await h.call('GET', url)).statusCode).toBe(200);
      expect((await h.call('POST', '/api/v1/nodes', { token: h.tokens.operator, body: { name: 'op-node' } })).statusCode).toBe(201);
      // Code that runs on the server's host (a local role) could read the data dir: automation and providers are admin's.
      const localRole = { kind: 'Role', name: 'op-local', workload: 'op', spec: { implementation: { kind: 'local', file: 'x.sh' } } };
      for (const doc of [localRole, { kind: 'Workload', name: 'op', files: { 'x.sh': 'cat secret.key' } }, { kind: 'Provider', name: 'op-p', providerKind: 'lab' }]) {
        const res = await h.call('POST', '/api/v1/apply', { token: h.tokens.operator, body: { documents: [doc] } });
        expect(res.statusCode, doc.kind).toBe(403);
        expect(json(res.body).error.message).toMatch(/admin/);
      }
    });

    it('records the principal as the actor of a write', async () => {
      await h.call('POST', '/api/v1/nodes', { token: h.tokens.operator, body: { name: 'actor-node' } });
      const events = json((await h.call('GET', '/api/v1/events?format=json&type=nodes&key=actor-node')).body).items;
      expect(events[0]).toMatchObject({ type: 'nodes', action: 'created', actor: 'operator-user' });
    });

    it('POST /tokens creates the user with the role when missing, refuses a different role', async () => {
      const res = await h.call('POST', '/api/v1/tokens', { body: { user: 'ci-bot', role: 'operator' } });
      expect(res.statusCode).toBe(201);
      expect(json((await h.call('GET', '/api/v1/users/ci-bot')).body).role).toBe('operator');
      expect((await h.call('POST', '/api/v1/tokens', { body: { user: 'ci-bot', role: 'admin' } })).statusCode).toBe(409);
      expect((await h.call('POST', '/api/v1/tokens', { body: { user: 'nobody-here' } })).statusCode).toBe(404);
      const forever = await h.call('POST', '/api/v1/tokens', { body: { user: 'ci-bot', expiresInSeconds: 1e15 } });
      expect(forever.statusCode).toBe(400);
      expect(json(forever.body).error.details.errors).toEqual([{ path: '/expiresInSeconds', message: 'must be <= 315360000' }]);
      await expect(h.t.store.auth.createToken('ci-bot', { expiresInSeconds: 1e15 })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('at most 315360000 (10 years)') });
      expect((await h.call('POST', '/api/v1/tokens', { body: { user: 'ci-bot', expiresInSeconds: 315360000 } })).statusCode).toBe(201);
      // The user made for a token is not left behind when the token cannot be written.
      const events = h.t.store.events;
      const append = events.append.bind(events);
      events.append = (db, e) => (e.type === 'tokens' ? Promise.reject(new Error('event log unavailable')) : append(db, e));
      try {
        expect((await h.call('POST', '/api/v1/tokens', { body: { user: 'ci-half', role: 'viewer' } })).statusCode).toBe(500);
      } finally {
        events.append = append;
      }
      expect(await h.t.store.objects('users').find('ci-half')).toBeUndefined();
      const list = json((await h.call('GET', '/api/v1/tokens')).body).items as Record<string, unknown>[];
      expect(list.some((t) => t.user === 'ci-bot')).toBe(true);
      expect(JSON.stringify(list)).not.toContain(json(res.body).token);
    });
  });

  describe('CRUD', () => {
    const writable = KINDS.filter((k) => k.writableBy !== 'nobody' && !CREATED_BY_FORMWORK.has(k.plural));
    it.each(writable.map((k) => [k.plural]))('create, get, list, patch, put, delete %s', async (plural) => {
      const name = `crud-${plural}`;
      const created = await h.call('POST', `/api/v1/${plural}`, { body: { name, labels: { t: 'crud' }, ...SAMPLE[plural] } });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.headers.etag).toBe('"1"');
      expect(created.headers.location).toBe(`/api/v1/${plural}/${name}`);
      const obj = json(created.body);
      expect(obj).toMatchObject({ name, version: 1, labels: { t: 'crud' } });
      expect(obj.data).toBeUndefined();

      expect((await h.call('POST', `/api/v1/${plural}`, { body: { name, ...SAMPLE[plural] } })).statusCode).toBe(409);

      for (const key of [name, obj.id]) {
        const got = await h.call('GET', `/api/v1/${plural}/${key}`);
        expect(got.statusCode).toBe(200);
        expect(got.headers.etag).toBe('"1"');
        expect(json(got.body).id).toBe(obj.id);
      }
      const list = json((await h.call('GET', `/api/v1/${plural}?label=t=crud`)).body);
      expect(list.items.map((o: { name: string }) => o.name)).toContain(name);

      const patched = await h.call('PATCH', `/api/v1/${plural}/${name}`, { body: CHANGE[plural], headers: { 'if-match': '"1"' } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.headers.etag).toBe('"2"');
      expect(json(patched.body)).toMatchObject({ version: 2, ...CHANGE[plural] });

      const put = await h.call('PUT', `/api/v1/${plural}/${name}`, { body: { labels: { t: 'crud', u: 'put' } } });
      expect(put.statusCode, put.body).toBe(200);
      expect(json(put.body)).toMatchObject({ version: 3, labels: { t: 'crud', u: 'put' }, ...CHANGE[plural] });
      const same = await h.call('PUT', `/api/v1/${plural}/${name}`, { body: { labels: { t: 'crud', u: 'put' } } });
      expect(json(same.body).version).toBe(3);

      const putNew = await h.call('PUT', `/api/v1/${plural}/${name}-2`, { body: SAMPLE[plural] });
      expect(putNew.statusCode, putNew.body).toBe(201);

      const stale = await h.call('DELETE', `/api/v1/${plural}/${name}`, { headers: { 'if-match': '"1"' } });
      expect(stale.statusCode).toBe(412);
      const del = await h.call('DELETE', `/api/v1/${plural}/${name}`, { headers: { 'if-match': '"3"' } });
      expect(del.statusCode).toBe(200);
      expect(json(del.body).name).toBe(name);
      expect((await h.call('GET', `/api/v1/${plural}/${name}`)).statusCode).toBe(404);
      expect((await h.call('DELETE', `/api/v1/${plural}/${name}-2`)).statusCode).toBe(200);
    });

    it('runs are read-only; node-roles can be read and changed but neither created nor deleted on their own', async () => {
      expect((await h.call('GET', '/api/v1/runs')).statusCode).toBe(200);
      const post = await h.call('POST', '/api/v1/runs', { body: { name: 'r', noderole: 'x' } });
      expect(post.statusCode).toBe(404);
      expect((await h.call('POST', '/api/v1/noderoles', { body: { name: 'nr' } })).statusCode).toBe(404);
      await h.t.store.objects('noderoles').create({ name: 'nr-1', deployment: 'd', role: 'r', state: 'proposed' });
      const patched = await h.call('PATCH', '/api/v1/noderoles/nr-1', { body: { attribs: { a: 1 } } });
      expect(patched.statusCode, patched.body).toBe(200);
      const ro = await h.call('PATCH', '/api/v1/noderoles/nr-1', { body: { state: 'active' } });
      expect(ro.statusCode).toBe(400);
      expect(json(ro.body).error.details.errors[0]).toEqual({ path: '/state', message: 'field "state" is read-only: Formwork sets it' });
      // Deleting one would leave its links and its children's parents pointing at it.
      const child = await h.t.store.objects('noderoles').create({ name: 'nr-2', deployment: 'd', role: 'r2', state: 'blocked', parents: [(await h.t.store.objects('noderoles').get('nr-1')).id] });
      const del = await h.call('DELETE', '/api/v1/noderoles/nr-1', { token: h.tokens.operator });
      expect(del.statusCode).toBe(409);
      expect(json(del.body).error).toMatchObject({ code: 'CONFLICT', details: { deployment: 'd' }, message: expect.stringContaining('remove the role binding from the Deployment and apply it') });
      expect(await h.t.store.objects('noderoles').find('nr-1')).toBeDefined();
      expect((await h.t.store.objects('noderoles').get(child.id)).parents).toHaveLength(1);
      expect((await h.call('DELETE', '/api/v1/noderoles/missing')).statusCode).toBe(404);
    });

    it('PATCH merges, null clears, and a rename is refused', async () => {
      await h.call('POST', '/api/v1/nodes', { body: { name: 'merge-1', zone: 'a', loginUser: 'debian' } });
      const res = json((await h.call('PATCH', '/api/v1/nodes/merge-1', { body: { zone: null, imageNormalized: 'debian-12' } })).body);
      expect(res).toMatchObject({ loginUser: 'debian', imageNormalized: 'debian-12' });
      expect(res.zone).toBeUndefined();
      expect((await h.call('PATCH', '/api/v1/nodes/merge-1', { body: { name: 'other' } })).statusCode).toBe(400);
    });
  });

  describe('concurrency', () => {
    it('a stale If-Match (or body version) is 412 VERSION_MISMATCH and changes nothing', async () => {
      await h.call('POST', '/api/v1/nodes', { body: { name: 'cc-1', zone: 'a' } });
      await h.call('PATCH', '/api/v1/nodes/cc-1', { body: { zone: 'b' } });
      for (const req of [
        { headers: { 'if-match': '"1"' }, body: { zone: 'c' } },
        { headers: { 'if-match': 'W/"1"' }, body: { zone: 'c' } },
        { body: { zone: 'c', version: 1 } },
      ]) {
        const res = await h.call('PATCH', '/api/v1/nodes/cc-1', req);
        expect(res.statusCode).toBe(412);
        expect(json(res.body).error).toMatchObject({ code: 'VERSION_MISMATCH', details: { currentVersion: 2, expectedVersion: 1 } });
      }
      const put = await h.call('PUT', '/api/v1/nodes/cc-1', { headers: { 'if-match': '"1"' }, body: { zone: 'c' } });
      expect(put.statusCode).toBe(412);
      const now = json((await h.call('GET', '/api/v1/nodes/cc-1')).body);
      expect(now).toMatchObject({ version: 2, zone: 'b' });
      const ok = await h.call('PATCH', '/api/v1/nodes/cc-1', { headers: { 'if-match': '"2"' }, body: { zone: 'c' } });
      expect(ok.statusCode).toBe(200);
      expect((await h.call('PATCH', '/api/v1/nodes/cc-1', { headers: { 'if-match': 'banana' }, body: { zone: 'd' } })).statusCode).toBe(400);
    });
  });

  describe('lists', () => {
    beforeAll(async () => {
      for (let i = 0; i < 7; i++) {
        const state = i % 2 ? 'active' : 'new';
        const labels = { pool: i < 3 ? 'a' : 'b', tier: i % 3 === 0 ? 'web' : 'db' };
        const res = await h.call('POST', '/api/v1/nodes', { body: { name: `ls-${i}`, state, labels, zone: 'list-zone' } });
        expect(res.statusCode).toBe(201);
      }
    });
    const names = (body: string) => (json(body).items as { name: string }[]).map((o) => o.name);

    it('pages through more than one page', async () => {
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const res = json((await h.call('GET', `/api/v1/nodes?zone=list-zone&limit=3${after ? `&after=${after}` : ''}`)).body);
        seen.push(...res.items.map((o: { name: string }) => o.name));
        after = res.next;
        pages++;
      } while (after);
      expect(pages).toBe(3);
      expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `ls-${i}`));
    });

    it('filters by field, state and label', async () => {
      expect(names((await h.call('GET', '/api/v1/nodes?zone=list-zone&state=active')).body)).toEqual(['ls-1', 'ls-3', 'ls-5']);
      expect(names((await h.call('GET', '/api/v1/nodes?label=pool=a')).body)).toEqual(['ls-0', 'ls-1', 'ls-2']);
      expect(names((await h.call('GET', '/api/v1/nodes?label=pool=b&label=tier=web')).body)).toEqual(['ls-3', 'ls-6']);
      expect(names((await h.call('GET', '/api/v1/nodes?labelSelector=pool=b,tier=web&state=new')).body)).toEqual(['ls-6']);
      expect(names((await h.call('GET', '/api/v1/nodes?name=ls-4')).body)).toEqual(['ls-4']);
    });

    it('refuses a filter on an unfilterable or unknown field, and a bad limit', async () => {
      const res = await h.call('GET', '/api/v1/nodes?loginUser=x');
      expect(res.statusCode).toBe(400);
      expect(json(res.body).error.details.errors[0].message).toMatch(/loginUser/);
      expect((await h.call('GET', '/api/v1/nodes?limit=0')).statusCode).toBe(400);
      expect((await h.call('GET', '/api/v1/nodes?limit=abc')).statusCode).toBe(400);
    });
  });

  describe('input errors', () => {
    it('an unknown field is a 400 naming it', async () => {
      const res = await h.call('POST', '/api/v1/nodes', { body: { name: 'bad-1', colour: 'red' } });
      expect(res.statusCode).toBe(400);
      const e = json(res.body).error;
      expect(e.code).toBe('VALIDATION');
      expect(e.message).toContain('colour');
      expect(e.details.errors).toEqual([{ path: '/colour', message: 'unknown field "colour"' }]);
    });

    it('a wrong type, a bad json field and a missing required field are 400 with paths', async () => {
      const wrong = json((await h.call('POST', '/api/v1/providers', { body: { name: 'bad-2', type: 5 } })).body).error;
      expect(wrong.details.errors).toEqual([{ path: '/type', message: 'must be string' }]);
      const addr = json((await h.call('POST', '/api/v1/nodes', { body: { name: 'bad-3', addresses: [{ address: '1.2.3.4', family: 5, role: 'public' }] } })).body).error;
      expect(addr.code).toBe('VALIDATION');
      expect(addr.details.errors[0].path).toBe('/addresses/0/family');
      const missing = json((await h.call('POST', '/api/v1/providers', { body: { name: 'bad-4' } })).body).error;
      expect(missing.details.errors).toEqual([{ path: '/type', message: 'field "type" is required' }]);
      const role = await h.call('POST', '/api/v1/users', { body: { name: 'bad-5', role: 'god' } });
      expect(role.statusCode).toBe(400);
      expect((await h.call('POST', '/api/v1/nodes', { body: { name: 'bad name!' } })).statusCode).toBe(400);
      expect((await h.call('POST', '/api/v1/nodes', { body: { kind: 'Provider', name: 'bad-6' } })).statusCode).toBe(400);
    });

    it('malformed JSON and malformed YAML are 400 MALFORMED_BODY', async () => {
      for (const [type, payload] of [
        ['application/json', '{"name": '],
        ['application/yaml', 'name: [unclosed'],
        ['application/yaml', 'a: b\n  c: d: e'],
      ]) {
        const res = await h.call('POST', '/api/v1/nodes', { payload, headers: { 'content-type': type } });
        expect(res.statusCode, payload).toBe(400);
        expect(json(res.body).error.code).toBe('MALFORMED_BODY');
      }
      const yaml = await h.call('POST', '/api/v1/nodes', { payload: 'kind: Node\nname: yaml-1\nlabels: {a: b}\n', headers: { 'content-type': 'application/yaml' } });
      expect(yaml.statusCode, yaml.body).toBe(201);
    });

    it('a NUL character in the path, the query, a label or a body string is a 400 saying where, with nothing written', async () => {
      const cases: Array<[string, string, unknown, string]> = [
        ['GET', '/api/v1/nodes/a%00b', undefined, 'the path has a NUL character (\\u0000) at "params/idOrName"'],
        ['GET', '/api/v1/nodes?state=a%00b', undefined, 'the query string has a NUL character (\\u0000) at "querystring/state"'],
        ['GET', '/api/v1/events?format=json&key=a%00b', undefined, 'at "querystring/key"'],
        ['POST', '/api/v1/nodes', { name: 'nul-1', message: 'a\u0000b' }, 'the request body has a NUL character (\\u0000) at "/message"'],
        ['POST', '/api/v1/nodes', { name: 'nul-2', labels: { k: 'a\u0000b' } }, 'at "/labels/k"'],
        ['POST', '/api/v1/apply', { documents: [{ kind: 'Node', name: 'nul-3' }, { kind: 'Node', name: 'nul-4', labels: { ['k\u0000']: 'v' } }] }, 'at "/documents/1/labels/k\\u0000"'],
      ];
      for (const [method, url, body, message] of cases) {
        const res = await h.call(method as 'GET', url, { body });
        expect(res.statusCode, url).toBe(400);
        expect(json(res.body).error.code).toBe('VALIDATION');
        expect(json(res.body).error.message).toContain(message);
      }
      for (const n of ['nul-1', 'nul-2', 'nul-3', 'nul-4']) expect(await h.t.store.objects('nodes').find(n)).toBeUndefined();
    });

    it('a body nested more deeply than the limit is a 400, not a stack overflow', async () => {
      const depth = 5000;
      const payload = `{"name":"deep","inventory":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
      const res = await h.call('POST', '/api/v1/nodes', { payload, headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
      expect(json(res.body).error).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('nested too deeply at "/inventory/a/a') });
      expect(await h.t.store.objects('nodes').find('deep')).toBeUndefined();
      const ok = await h.call('POST', '/api/v1/nodes', { body: { name: 'nested-ok', inventory: JSON.parse(`${'{"a":'.repeat(50)}1${'}'.repeat(50)}`) } });
      expect(ok.statusCode).toBe(201);
    });

    it('an oversize body is 413 BODY_TOO_LARGE', async () => {
      const res = await h.call('POST', '/api/v1/nodes', { body: { name: 'big', message: 'x'.repeat(70 * 1024) } });
      expect(res.statusCode).toBe(413);
      expect(json(res.body).error.code).toBe('BODY_TOO_LARGE');
    });

    it('an unknown kind path is 404 listing the kinds; an unknown route is 404', async () => {
      const res = await h.call('GET', '/api/v1/gadgets');
      expect(res.statusCode).toBe(404);
      expect(json(res.body).error).toMatchObject({ code: 'NOT_FOUND', details: { known: expect.arrayContaining(['nodes']) } });
      expect((await h.call('GET', '/nope')).statusCode).toBe(404);
      expect(json((await h.call('GET', '/api/v1/nodes/missing')).body).error.code).toBe('NOT_FOUND');
    });
  });

  describe('apply', () => {
    const docs = [
      { kind: 'Provider', name: 'ap-lab', type: 'lab', settings: { subnetIndex: 5 } },
      { kind: 'node', name: 'ap-1', provider: 'ap-lab', labels: { role: 'web' } },
      { kind: 'Nodes', name: 'ap-2', provider: 'ap-lab' },
      { kind: 'Secret', name: 'ap-s', data: { token: 'apply-secret-value' } },
    ];

    it('creates, then reports unchanged on a re-apply, then updated', async () => {
      const first = await h.call('POST', '/api/v1/apply', { body: { documents: docs } });
      expect(first.statusCode, first.body).toBe(200);
      expect(json(first.body).results.map((r: { action: string }) => r.action)).toEqual(['created', 'created', 'created', 'created']);
      const again = json((await h.call('POST', '/api/v1/apply', { body: { documents: docs } })).body);
      expect(again.results.map((r: { action: string }) => r.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
      const changed = docs.map((d) => (d.name === 'ap-2' ? { ...d, zone: 'z' } : d));
      const third = json((await h.call('POST', '/api/v1/apply', { body: { documents: changed } })).body);
      expect(third.results.map((r: { action: string }) => r.action)).toEqual(['unchanged', 'unchanged', 'updated', 'unchanged']);
      expect(JSON.stringify(third)).not.toContain('apply-secret-value');
    });

    it('takes a YAML multi-document stream', async () => {
      const yaml = 'kind: Node\nname: ap-y1\n---\nkind: Node\nname: ap-y2\nzone: q\n';
      const res = await h.call('POST', '/api/v1/apply', { payload: yaml, headers: { 'content-type': 'application/yaml' } });
      expect(res.statusCode, res.body).toBe(200);
      expect(json(res.body).results.map((r: { name: string }) => r.name)).toEqual(['ap-y1', 'ap-y2']);
    });

    it('is all-or-nothing: one bad document refuses the request and nothing is written', async () => {
      const before = await h.t.store.events.latestSeq();
      const unknown = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Node', name: 'aon-1' }, { kind: 'Gadget', name: 'g' }] } });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown.body).error).toMatchObject({ code: 'UNKNOWN_KIND', details: { index: 1 } });
      expect(json(unknown.body).error.message).toMatch(/document 1/);
      const bad = await h.call('POST', '/api/v1/apply', {
        body: { documents: [{ kind: 'Node', name: 'aon-1' }, { kind: 'Node', name: 'aon-2', colour: 'red' }, { kind: 'Provider', name: 'aon-p' }, { kind: 'Run', name: 'r' }] },
      });
      expect(bad.statusCode).toBe(400);
      const errors = json(bad.body).error.details.errors as { path: string }[];
      expect(errors.map((e) => e.path)).toEqual(['/documents/1/colour', '/documents/2/type', '/documents/3/kind']);
      expect((await h.call('GET', '/api/v1/nodes/aon-1')).statusCode).toBe(404);
      expect(await h.t.store.events.latestSeq()).toBe(before);
    });

    it("refuses a provider whose settings its driver refuses, on apply, create and update, with nothing written", async () => {
      const before = await h.t.store.events.latestSeq();
      const bad = await h.call('POST', '/api/v1/apply', {
        body: { documents: [{ kind: 'Node', name: 'ps-1' }, { kind: 'Provider', name: 'ps-lab', type: 'lab', settings: { subnetIndex: 300 } }] },
      });
      expect(bad.statusCode).toBe(400);
      expect(json(bad.body).error.details.errors).toEqual([{ path: '/documents/1/settings/subnetIndex', message: 'lab setting subnetIndex must be <= 255' }]);
      const typo = await h.call('POST', '/api/v1/providers', { body: { name: 'ps-lab', type: 'lab', settings: { subnetIdx: 2 } } });
      expect(typo.statusCode).toBe(400);
      expect(json(typo.body).error.message).toContain('unknown lab setting "subnetIdx"; known: subnetIndex, baseDir');
      expect(await h.t.store.events.latestSeq()).toBe(before);
      expect((await h.call('POST', '/api/v1/providers', { body: { name: 'ps-lab', type: 'lab', settings: { subnetIndex: 6 } } })).statusCode).toBe(201);
      const patch = await h.call('PATCH', '/api/v1/providers/ps-lab', { body: { settings: { subnetIndex: -1 } } });
      expect(patch.statusCode).toBe(400);
      expect(json((await h.call('GET', '/api/v1/providers/ps-lab')).body).settings).toEqual({ subnetIndex: 6 });
      // A type Formwork has no driver for is refused, naming the ones it has, on apply and create.
      const unknownType = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Provider', name: 'ps-cloud', type: 'vsphere' }] } });
      expect(unknownType.statusCode).toBe(400);
      expect(json(unknownType.body).error.details.errors).toEqual([{ path: '/documents/0/type', message: 'unknown provider type "vsphere"; known: gce, lab, openstack, static' }]);
      expect((await h.call('POST', '/api/v1/providers', { body: { name: 'ps-cloud', type: 'vsphere' } })).statusCode).toBe(400);
      // static's settings: a machine without its login user is refused at apply, naming the field.
      const noUser = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Provider', name: 'ps-own', type: 'static', settings: { machines: [{ name: 'h1', address: '192.0.2.1' }] } }] } });
      expect(json(noUser.body).error.details.errors).toEqual([{ path: '/documents/0/settings/machines/0/user', message: 'static setting machines/0/user field "user" is required' }]);
      expect(await h.t.store.events.latestSeq()).toBe(before + 1); // only ps-lab's create
    });

    it('a stale version in a document refuses it', async () => {
      const res = await h.call('POST', '/api/v1/apply', { body: { documents: [{ kind: 'Node', name: 'ap-1', version: 99, zone: 'x' }] } });
      expect(res.statusCode).toBe(412);
    });
  });

  describe('secrets never leak', () => {
    const VALUE = 'Pl41nT3xt-secret-VALUE-7480';
    it('the value is not in any response, the log or the events table', async () => {
      const responses: string[] = [];
      const call = async (...args: Parameters<Harness['call']>) => {
        const res = await h.call(...args);
        responses.push(res.body, JSON.stringify(res.headers));
        return res;
      };
      expect((await call('POST', '/api/v1/secrets', { body: { name: 'leak-1', data: { password: VALUE } } })).statusCode).toBe(201);
      expect((await call('PATCH', '/api/v1/secrets/leak-1', { body: { data: { password: VALUE, token: VALUE } } })).statusCode).toBe(200);
      expect((await call('PUT', '/api/v1/secrets/leak-2', { body: { data: { secret: VALUE } } })).statusCode).toBe(201);
      expect((await call('POST', '/api/v1/apply', { payload: `kind: Secret\nname: leak-3\ndata:\n  privateKey: ${VALUE}\n`, headers: { 'content-type': 'application/yaml' } })).statusCode).toBe(200);
      expect((await call('POST', '/api/v1/secrets', { body: { name: 'leak-4', data: { x: 5, y: VALUE } } })).statusCode).toBe(400);
      // Broken YAML: the yaml library quotes the offending line in its message, which is answered and logged.
      const broken = await call('POST', '/api/v1/secrets', { payload: `name: leak-5\ndata: {password: ${VALUE}\n`, headers: { 'content-type': 'application/yaml' } });
      expect(broken.statusCode).toBe(400);
      expect(json(broken.body).error.message).toMatch(/^the body is not valid YAML: .* at line 3, column 1$/);
      const got = await call('GET', '/api/v1/secrets/leak-1');
      expect(json(got.body).keys).toEqual(['password', 'token']);
      await call('GET', '/api/v1/secrets');
      await call('GET', '/api/v1/events?format=json&limit=1000');
      await call('DELETE', '/api/v1/secrets/leak-2');
      expect(await h.t.store.secrets.reveal('leak-1')).toEqual({ password: VALUE, token: VALUE });

      for (const r of responses) expect(r).not.toContain(VALUE);
      expect(h.log().length).toBeGreaterThan(0);
      expect(h.log()).not.toContain(VALUE);
      const rows = await sql<Record<string, unknown>>`select * from events`.execute(h.t.store.db);
      expect(rows.rows.length).toBeGreaterThan(0);
      expect(JSON.stringify(rows.rows)).not.toContain(VALUE);
      const stored = await sql<Record<string, unknown>>`select * from secrets`.execute(h.t.store.db);
      expect(JSON.stringify(stored.rows)).not.toContain(VALUE);
    });

    it('the authorization header is redacted in logs', async () => {
      h.app.log.info({ req: { headers: { authorization: `Bearer ${h.tokens.admin}` } }, token: h.tokens.admin }, 'probe');
      expect(h.log()).not.toContain(h.tokens.admin);
    });
  });

  describe('system routes', () => {
    it('every route schema compiles (validators are compiled on first use, not at start)', () => {
      expect(h.app.compileValidators()).toBeGreaterThan(20);
    });

    it('healthz, metrics and docs need no token', async () => {
      const health = await h.call('GET', '/healthz', { token: null });
      expect(json(health.body)).toEqual({ status: 'ok', store: engine.name });
      const metrics = await h.call('GET', '/metrics', { token: null });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toContain('formwork_http_request_duration_seconds_bucket');
      expect(metrics.body).toContain('process_cpu_user_seconds_total');
      expect(metrics.body).toMatch(/route="\/api\/v1\/nodes",method="GET",status="200"/);
      expect([200, 302]).toContain((await h.call('GET', '/api/docs', { token: null })).statusCode);
    });

    it('the OpenAPI document lists every registered route, with bearer security', async () => {
      const res = await h.call('GET', '/api/v1/openapi.json', { token: null });
      expect(res.statusCode).toBe(200);
      const doc = json(res.body);
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      const documented = new Set<string>();
      for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${p}`);
      }
      const registered = new Set(
        h.app.formworkRoutes
          .filter((r) => !r.url.startsWith('/api/docs'))
          .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`),
      );
      expect([...registered].sort()).toEqual([...documented].sort());
      expect(registered.has('POST /api/v1/apply')).toBe(true);
      expect(registered.has('GET /api/v1/events')).toBe(true);
      expect(registered.has('PATCH /api/v1/nodes/{idOrName}')).toBe(true);
      expect(registered.has('POST /api/v1/runs')).toBe(false);
      const post = doc.paths['/api/v1/nodes'].post;
      expect(post.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    });
  });

  describe('events as JSON', () => {
    it('pages events after a sequence, filtered by type and key', async () => {
      const start = await h.t.store.events.latestSeq();
      for (const n of ['ev-a', 'ev-b', 'ev-c']) await h.call('POST', '/api/v1/nodes', { body: { name: n } });
      await h.call('PATCH', '/api/v1/nodes/ev-b', { body: { zone: 'z' } });
      const page = json((await h.call('GET', `/api/v1/events?format=json&after=${start}&type=node&limit=2`)).body);
      expect(page.items.map((e: { key: string }) => e.key)).toEqual(['ev-a', 'ev-b']);
      const rest = json((await h.call('GET', `/api/v1/events?format=json&after=${page.next}&type=nodes`)).body);
      expect(rest.items.map((e: { key: string; action: string }) => `${e.key}:${e.action}`)).toEqual(['ev-c:created', 'ev-b:updated']);
      const byKey = json((await h.call('GET', `/api/v1/events?format=json&after=${start}&key=ev-b`)).body);
      expect(byKey.items).toHaveLength(2);
      const viewer = json((await h.call('GET', '/api/v1/events?format=json&limit=1000', { token: h.tokens.viewer })).body);
      expect(viewer.items.some((e: { type: string }) => ['users', 'tokens', 'secrets'].includes(e.type))).toBe(false);
    });
  });
});
