/**
 * What an operator gives a role (a deployment's attribs, a binding's inputs) is data: it
 * never runs as code on the server's host, and a secret stays secret wherever it flows —
 * into another role's input through `from:`, into outputs, logs, run records, events and
 * API responses — on every write path. Through the real API, a real annealer and bash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Annealer } from '../engine/annealer.js';
import { role, settled, waitFor } from '../engine/testing/fixtures.js';
import { registerDeploymentServices } from '../services/deployments.js';
import { STORE_ENGINES } from '../store/testing/engines.js';
import { openHarness, type Harness } from './testing/harness.js';

const FAST = { tickMs: 20, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined };
const PASSWORD = 'hunter2-Zq8vXw31';
const NEW_PASSWORD = 'correct-horse-9Tb2Lm';

describe.each(STORE_ENGINES)('untrusted inputs on $name', (engine) => {
  let h: Harness;
  let annealer: Annealer;
  let dir: string;

  beforeEach(async () => {
    h = await openHarness(engine);
    registerDeploymentServices(h.services);
    annealer = new Annealer(h.services, FAST);
    h.services.engine = annealer;
    dir = fs.mkdtempSync(path.join(h.t.dataDir, 'work-'));
    const store = h.t.store;
    const files = {
      // Writes what it was given to a file: the role must receive the exact string.
      'echo.sh': 'printf "%s" "{{ inputs.message }}" > "$FW_INPUT_TARGET"\n',
      // Holds the secret (declared secret): publishes nothing secret.
      'db.sh': 'echo "db ready"\n',
      // Reads the secret through `from:` into an input it does not declare secret, logs it and publishes it.
      'app.sh': 'echo "connecting with $FW_INPUT_PW"\nprintf "%s" "$FW_INPUT_PW" > "$FW_INPUT_TARGET"\nprintf \'{"dsn":"%s","pw":"%s"}\' "db://$FW_INPUT_PW@db" "$FW_INPUT_PW" > "$FW_OUTPUTS"\n',
      // Reads app's published copy of the secret.
      'reader.sh': 'echo "got {{ inputs.copied }}"\nprintf "%s" "{{ inputs.copied }}" > "$FW_INPUT_TARGET.reader"\n',
    };
    await store.objects('workloads').create({ name: 'test', workloadVersion: '1.0.0', files, defaults: {} });
    const roles = [
      role('echo', { kind: 'local', file: 'echo.sh' }, { inputs: { message: { schema: { type: 'string' } }, target: { schema: { type: 'string' } } } }),
      role('db', { kind: 'local', file: 'db.sh' }, { inputs: { password: { schema: { type: 'string' }, secret: true } } }),
      role('app', { kind: 'local', file: 'app.sh' }, {
        requires: ['db'],
        inputs: { pw: { schema: { type: 'string' }, from: 'deployment.attribs.password' }, target: { schema: { type: 'string' } } },
        outputs: { dsn: { schema: { type: 'string' } }, pw: { schema: { type: 'string' } } },
      }),
      role('reader', { kind: 'local', file: 'reader.sh' }, { requires: ['app'], inputs: { copied: { schema: { type: 'string' }, from: 'outputs(app).pw' }, target: { schema: { type: 'string' } } } }),
    ];
    for (const r of roles) await store.objects('roles').apply({ name: r.name, workload: r.workload, spec: r });
  });
  afterEach(async () => {
    await annealer.stop();
    await h.close();
  });

  /** The SSE stream a viewer follows, from the start up to sequence `last`, as text (over a real socket). */
  const sseText = async (last: number): Promise<string> => {
    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const ac = new AbortController();
    const res = await fetch(`${base}/api/v1/events?after=0`, { headers: { authorization: `Bearer ${h.tokens.viewer}` }, signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes(`id: ${last}\n`) && Date.now() < deadline) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
    ac.abort();
    expect(text).toContain(`id: ${last}\n`);
    return text;
  };

  const apply = async (doc: Record<string, unknown>, token = h.tokens.operator) => {
    const res = await h.call('POST', '/api/v1/apply', { token, body: { documents: [{ kind: 'Deployment', commit: true, ...doc }] } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };

  it('an operator\'s input runs nothing on the server\'s host: the role gets the exact string', async () => {
    const marker = path.join(dir, 'pwned');
    const payloads = [`a"; id > ${marker}; echo "`, `$(touch ${marker})`, `\`touch ${marker}\``, `'; touch ${marker}; '`];
    await apply({ name: 'inj', nodes: [{ name: 'inj-0' }], roles: { echo: { nodes: [0] } }, attribs: { message: payloads.join('\n'), target: path.join(dir, 'received') } });
    await annealer.start();
    expect(await settled(h.t.store, 'inj')).toEqual({ 'inj:inj-0:echo': 'active' });
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'received'), 'utf8')).toBe(payloads.join('\n'));
  });

  it('a secret read through `from:` by another role, and one PATCHed in, reach no viewer: run inputs, outputs, logs, events, GETs', async () => {
    const target = path.join(dir, 'app-got');
    await apply({
      name: 'sec',
      nodes: [{ name: 'sec-0' }],
      roles: { db: { nodes: [0] }, app: { nodes: [0] }, reader: { nodes: [0] } },
      attribs: { password: PASSWORD, target },
    });
    await annealer.start();
    expect(await settled(h.t.store, 'sec')).toEqual({ 'sec:sec-0:db': 'active', 'sec:sec-0:app': 'active', 'sec:sec-0:reader': 'active' });
    // The secret still reaches the role that reads it.
    expect(fs.readFileSync(target, 'utf8')).toBe(PASSWORD);
    // (a) Already, before any PATCH: app's input fed from the secret is redacted for a viewer.
    const runs = await h.call('GET', '/api/v1/runs?limit=1000', { token: h.tokens.viewer });
    expect(runs.json().items.find((r: { noderole: string }) => r.noderole === 'sec:sec-0:app')).toMatchObject({ inputs: { pw: '[redacted]' } });
    expect(runs.body).not.toContain(PASSWORD);

    // (b) An operator changes it through the generic route.
    const patched = await h.call('PATCH', '/api/v1/deployments/sec', { token: h.tokens.operator, body: { attribs: { password: NEW_PASSWORD, target } } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.body).not.toContain(NEW_PASSWORD);
    await waitFor(async () => fs.readFileSync(target, 'utf8') === NEW_PASSWORD, 20_000);
    await settled(h.t.store, 'sec');
    await waitFor(async () => (await h.t.store.objects('runs').all({ filters: { noderole: 'sec:sec-0:reader' } })).filter((r) => r.state === 'succeeded').length >= 2, 20_000);
    // app's output that republishes the secret is stored sealed, and still opens for its child.
    expect((await h.t.store.objects('noderoles').get('sec:sec-0:app')).outputs).toMatchObject({ pw: { $sealed: expect.stringMatching(/^v2:/) }, dsn: { $sealed: expect.any(String) } });
    expect(fs.readFileSync(`${target}.reader`, 'utf8')).toBe(NEW_PASSWORD);

    const seen: string[] = [patched.body];
    for (const url of [
      '/api/v1/deployments/sec',
      '/api/v1/deployments',
      '/api/v1/noderoles?limit=1000',
      '/api/v1/runs?limit=1000',
      '/api/v1/nodes',
      '/api/v1/deployments/sec/tree',
    ]) {
      const res = await h.call('GET', url, { token: h.tokens.viewer });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
      seen.push(res.body);
    }
    for (const r of await h.t.store.objects('runs').all({ filters: { deployment: 'sec' } })) {
      const res = await h.call('GET', `/api/v1/runs/${r.name}`, { token: h.tokens.viewer });
      expect(res.statusCode).toBe(200);
      seen.push(res.body);
    }
    const events = await h.call('GET', '/api/v1/events?after=0&format=json&limit=1000', { token: h.tokens.viewer });
    expect(events.statusCode).toBe(200);
    expect(events.json().items.length).toBeGreaterThan(10);
    seen.push(events.body);
    seen.push(await sseText(events.json().items.at(-1).seq));
    seen.push(h.log());
    const all = seen.join('\n');
    // The runs did log and publish something: what stands in for the secret shows.
    expect(all).toContain('connecting with');
    expect(all).toContain('[redacted]');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(NEW_PASSWORD);
    // And the store holds neither in clear.
    const deployment = await h.t.store.objects('deployments').get('sec');
    expect(JSON.stringify(deployment)).not.toContain(NEW_PASSWORD);
  }, 60_000);

  it('seals secret attribs on the generic writes of nodes and node-roles too, and refuses a sealed value copied from another object', async () => {
    await apply({ name: 'cp', nodes: [{ name: 'cp-0' }], roles: { db: { nodes: [0] } }, attribs: { password: PASSWORD }, commit: false });
    const node = await h.call('PATCH', '/api/v1/nodes/cp-0', { token: h.tokens.operator, body: { attribs: { password: NEW_PASSWORD, plain: 'shown' } } });
    expect(node.statusCode, node.body).toBe(200);
    expect(node.body).not.toContain(NEW_PASSWORD);
    expect(node.json().attribs).toMatchObject({ password: { $sealed: expect.stringMatching(/^v2:/) }, plain: 'shown' });
    const nr = await h.call('PATCH', '/api/v1/noderoles/cp:cp-0:db', { token: h.tokens.operator, body: { attribs: { password: NEW_PASSWORD } } });
    expect(nr.statusCode, nr.body).toBe(200);
    expect(nr.body).not.toContain(NEW_PASSWORD);
    expect(nr.json().attribs.password.$sealed).toMatch(/^v2:/);
    // A node's PUT seals the same way.
    const put = await h.call('PUT', '/api/v1/nodes/cp-1', { token: h.tokens.operator, body: { attribs: { password: PASSWORD } } });
    expect(put.statusCode, put.body).toBe(201);
    expect(put.body).not.toContain(PASSWORD);
    // The deployment's sealed password, copied into the node's attribs under any name, is refused.
    const sealed = ((await h.t.store.objects('deployments').get('cp')).attribs as Record<string, unknown>).password;
    const copied = await h.call('PATCH', '/api/v1/nodes/cp-0', { token: h.tokens.operator, body: { attribs: { plain: sealed } } });
    expect(copied.statusCode).toBe(400);
    expect(copied.json().error.message).toMatch(/node "cp-0": the sealed value of "plain" was not sealed for this object/);
    expect(JSON.stringify(await h.t.store.objects('nodes').get('cp-0'))).not.toContain(NEW_PASSWORD);
  });
});
