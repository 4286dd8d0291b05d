import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openHarness, type Harness } from '../api/testing/harness.js';
import { KINDS } from '../core/kinds.js';
import { packageRoot } from '../package.js';
import { registerDeploymentServices } from '../services/deployments.js';
import { STORE_ENGINES } from '../store/testing/engines.js';
import { loadPack, registerPacks } from '../workloads/loader.js';
import { main } from './main.js';

/**
 * `formwork get KIND NAME -o yaml|json` prints a document that `formwork apply -f` takes
 * back unchanged, for every kind that can be applied: the real CLI (in-process) against
 * a real API and store on loopback.
 */

/** One object of every kind, made the way a user or Formwork makes it. */
const MADE: Record<string, string> = {
  providers: 'lab',
  nodes: 'web-1',
  workloads: 'core',
  roles: 'node-ready',
  deployments: 'demo',
  users: 'viewer-user',
  secrets: 'creds',
};

describe.each(STORE_ENGINES)('get -o yaml|json, then apply -f, on $name', (engine) => {
  let h: Harness;
  let endpoint: string;

  beforeEach(async () => {
    h = await openHarness(engine);
    registerDeploymentServices(h.services);
    endpoint = await h.app.listen({ host: '127.0.0.1', port: 0 });
    await registerPacks(h.t.store, [loadPack(path.join(packageRoot(), 'workloads', 'core'))]);
    const apply = (documents: unknown[]) => h.call('POST', '/api/v1/apply', { body: { documents } });
    const res = await apply([
      { kind: 'Provider', name: 'lab', type: 'lab', labels: { tier: 'lab' } },
      { kind: 'Secret', name: 'creds', description: 'test', data: { user: 'u', password: 'p' } },
      { kind: 'Node', name: 'web-1', provider: 'lab', zone: 'a', state: 'ready', addresses: [{ address: '198.18.0.5', family: 4, role: 'public' }], attribs: { x: 1 } },
      { kind: 'Deployment', name: 'demo', provider: 'lab', nodes: [{ name: 'demo-0', size: 'small' }], attribs: { a: 'b' }, labels: { app: 'demo' } },
      { kind: 'Deployment', name: 'draft', provider: 'lab', nodes: { count: 1 }, commit: false },
    ]);
    expect(res.statusCode, res.body).toBe(200);
  });
  afterEach(() => h.close());

  async function cli(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(args, {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      stdin: (async function* () {
        yield Buffer.from(stdin);
      })(),
      env: { FORMWORK_ENDPOINT: endpoint, FORMWORK_TOKEN: h.tokens.admin },
      cwd: h.t.dataDir,
      handleSignals: false,
    });
    return { code, out, err };
  }

  const appliable = KINDS.filter((k) => MADE[k.plural]);
  it('covers every kind that apply takes', () => {
    expect(appliable.map((k) => k.plural).sort()).toEqual(KINDS.filter((k) => k.writableBy !== 'nobody' && k.plural !== 'noderoles').map((k) => k.plural).sort());
  });

  for (const format of ['yaml', 'json'] as const) {
    it(`every kind: what get -o ${format} prints, apply -f takes back as it is and changes nothing`, async () => {
      for (const kind of appliable) {
        for (const name of kind.plural === 'deployments' ? ['demo', 'draft'] : [MADE[kind.plural]]) {
          const got = await cli(['get', kind.plural, name, '-o', format]);
          expect(got.code, got.err).toBe(0);
          const applied = await cli(['apply', '-f', '-', '-o', 'json'], got.out);
          expect(applied.code, `${kind.plural}/${name}: ${applied.err}\n${got.out}`).toBe(0);
          const [result] = (JSON.parse(applied.out) as { results: Array<{ action: string; object: { version: number } }> }).results;
          expect(result.action, `${kind.plural}/${name}`).toBe('unchanged');
          expect((await cli(['get', kind.plural, name, '-o', format])).out).toBe(got.out);
        }
      }
    });
  }

  it('read-only fields sit under status; a proposed deployment stays proposed; secrets never show their value', async () => {
    const draft = parse((await cli(['get', 'deployment', 'draft', '-o', 'yaml'])).out) as Record<string, unknown>;
    expect(draft).toMatchObject({ kind: 'Deployment', name: 'draft', version: expect.any(Number), nodes: [{ name: 'draft-0' }], commit: false, status: { state: 'proposed' } });
    expect(draft).not.toHaveProperty('spec');
    expect(draft).not.toHaveProperty('state');
    const secret = (await cli(['get', 'secret', 'creds', '-o', 'yaml'])).out;
    expect(parse(secret)).toMatchObject({ kind: 'Secret', name: 'creds', description: 'test', status: { keys: ['password', 'user'] } });
    expect(secret).not.toMatch(/\bp\b|\bu\b/);
  });

  it('an edited document applies as an update; one read before someone else changed the object is refused (412), nothing written', async () => {
    const text = (await cli(['get', 'node', 'web-1', '-o', 'yaml'])).out;
    const edited = await cli(['apply', '-f', '-'], text.replace('zone: a', 'zone: b'));
    expect(edited).toMatchObject({ code: 0, out: 'node/web-1 updated\n' });
    const stale = await cli(['apply', '-f', '-'], text.replace('zone: a', 'zone: c'));
    expect(stale.code).toBe(4);
    expect(stale.err).toContain('(HTTP 412 VERSION_MISMATCH)');
    expect((await h.t.store.objects('nodes').get('web-1')).zone).toBe('b');
  });

  it('kinds Formwork makes are printed too, and apply refuses them saying why', async () => {
    const nr = await cli(['get', 'noderole', 'demo:demo-0:node-ready', '-o', 'yaml']);
    expect(nr.code, nr.err).toBe(0);
    const applied = await cli(['apply', '-f', '-'], nr.out);
    expect(applied.code).toBe(2);
    expect(applied.err).toContain('noderoles are created by Formwork, not applied');
  });
});
