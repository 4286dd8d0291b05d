import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { main } from '../main.js';
import { newState } from './watch.js';

describe('newState', () => {
  const ev = (action: string, object: unknown) => ({ id: '1', seq: 1, time: '', type: 'nodes', action, key: 'a', object });
  it('shows the new value of each changed field, <none> for a cleared one, a new object\'s state, nothing for a deletion', () => {
    expect(newState(ev('updated', { state: 'ready', zone: 'b c', changed: ['state', 'zone', 'message'] }))).toBe('state=ready zone="b c" message=<none>');
    expect(newState(ev('created', { state: 'pending', zone: 'a' }))).toBe('state=pending');
    expect(newState(ev('deleted', { state: 'ready', changed: ['state'] }))).toBe('');
    expect(newState(ev('updated', { addresses: [{ address: '198.18.0.1'.repeat(20) }], changed: ['addresses'] }))).toMatch(/^addresses=\[\{"address":"198\.18.{60}…$/);
  });
});

describe.each(STORE_ENGINES)('formwork watch against a server on $name', (engine) => {
  let h: Harness;
  let endpoint: string;
  beforeEach(async () => {
    h = await openHarness(engine);
    endpoint = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(() => h.close());

  it('prints the new state of each changed object, secrets without their value', async () => {
    const nodes = h.t.store.objects('nodes');
    await nodes.create({ name: 'web-1', state: 'pending' });
    await nodes.update('web-1', { state: 'ready' });
    await nodes.update('web-1', { zone: 'a', labels: { tier: 'web' } });
    await nodes.delete('web-1');
    await h.t.store.secrets.create({ name: 'creds', data: { password: 'hunter2-secret' } });
    await h.t.store.secrets.update('creds', { data: { password: 'hunter3-secret', user: 'root-secret' } });

    const ac = new AbortController();
    let out = '';
    const running = main(['watch', 'nodes,secrets', '--after', '0'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => true },
      env: { FORMWORK_ENDPOINT: endpoint, FORMWORK_TOKEN: h.tokens.admin },
      cwd: h.t.dataDir,
      signal: ac.signal,
    });
    const deadline = Date.now() + 20_000;
    while (out.split('\n').length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    expect(await running).toBe(0);
    const lines = out.trimEnd().split('\n').map((l) => l.replace(/^\S+ {2}/, '').replace(/ +/g, ' '));
    expect(lines).toEqual([
      'nodes created web-1 state=pending',
      'nodes state web-1 state=ready',
      'nodes updated web-1 zone=a labels={"tier":"web"}',
      'nodes deleted web-1',
      'secrets created creds',
      'secrets updated creds keys=["password","user"]',
    ]);
    expect(out).not.toContain('-secret');
  });
});
