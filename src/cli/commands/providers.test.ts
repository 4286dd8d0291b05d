import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { packageRoot } from '../../package.js';
import { ownershipTags } from '../../providers/provider.js';
import { loadDriver, providerContext } from '../../providers/registry.js';
import { sqliteEngine } from '../../store/testing/engines.js';
import { main } from '../main.js';

async function run(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
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

describe('formwork providers orphans and describe node', () => {
  let h: Harness;
  let env: Record<string, string>;
  beforeAll(async () => {
    h = await openHarness(sqliteEngine);
    const provider = await h.t.store.objects('providers').create({ name: 'own', type: 'static', settings: { machines: [{ name: 'm-1', address: '198.18.200.1', user: 'root' }] } });
    await loadDriver('static').then(async (d) => d.createMachine({ name: 'lost', nodeId: 'lost-node', idempotencyToken: 'l', tags: ownershipTags('own', 'lost-node') }, await providerContext(h.services, provider)));
    await h.t.store.objects('nodes').create({
      name: 'web-1',
      provider: 'own',
      addresses: [{ address: '198.18.200.1', family: 4, role: 'public', reason: 'settings.machines[].address' }],
      decisions: [{ subject: 'login-user', chosen: 'root', reason: 'recorded on the node' }],
    });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    env = { FORMWORK_ENDPOINT: `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`, FORMWORK_TOKEN: h.tokens.admin };
  });
  afterAll(() => h.close());

  it('lists the orphans, then deletes them', async () => {
    const list = await run(['providers', 'orphans', 'own'], env);
    expect(list).toMatchObject({ code: 0 });
    expect(list.out).toMatch(/machine\s+m-1\s+m-1\s+lost-node/);
    expect(list.out).toContain('provider/own: 1 orphan(s) among the 1 resources it owns (its driver lists machines only); --delete deletes them');
    expect((await run(['providers', 'orphans', 'own', '--delete'], env)).out).toContain('provider/own: 1 orphan(s) deleted');
    expect((await run(['providers', 'orphans', 'own', '-o', 'json'], env)).out).toContain('"orphans": []');
  });

  it('describe node shows each address with its reason, and the decisions', async () => {
    const r = await run(['describe', 'node', 'web-1'], env);
    expect(r.out).toContain('Addresses:\n  198.18.200.1  public  (IPv4): settings.machines[].address');
    expect(r.out).toContain('Decisions:\n  login-user: root — recorded on the node');
  });
});
