import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { forgetConnections } from './connect.js';
import { startFakeOpenStack, type FakeOpenStack } from './testing/fake-openstack.js';

/**
 * Issue 13: wrong credentials, an unknown cloud or region are refused at apply, naming what
 * to fix, with nothing written; a cloud that cannot be reached right now is not a refusal
 * (the provider is stored, and its prepare records what it finds).
 */
describe.each(STORE_ENGINES)('an openstack provider checked at apply on $name', (engine) => {
  let h: Harness;
  let os: FakeOpenStack;
  const documents = (password: string, auth: Record<string, unknown>) => [
    { kind: 'Secret', name: 'os-creds', data: { password } },
    { kind: 'Provider', name: 'os1', type: 'openstack', credentialsSecret: 'os-creds', settings: { auth, network: 'private' } },
  ];
  const authOf = (url: string) => ({ auth_url: `${url}/5000`, username: 'admin', user_domain_name: 'Default', project_name: 'admin', project_domain_name: 'Default' });

  beforeEach(async () => {
    h = await openHarness(engine);
    os = await startFakeOpenStack();
  });
  afterEach(async () => {
    forgetConnections();
    await os.close();
    await h.close();
  });

  it('refuses a wrong password, naming what to fix and never the password; nothing is written', async () => {
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: documents('not-the-password', authOf(os.cloud.url)) } });
    expect(res.statusCode).toBe(400);
    const body = res.json() as { error: { code: string; details: { errors: Array<{ path: string; message: string }> } } };
    expect(body.error.code).toBe('VALIDATION');
    expect(body.error.details.errors).toEqual([{ path: '/documents/1/settings', message: expect.stringContaining("refused user admin: fix the provider's credentialsSecret (password)") }]);
    expect(res.body).not.toContain('not-the-password');
    expect((await h.call('GET', '/api/v1/providers/os1')).statusCode).toBe(404);
    expect((await h.call('GET', '/api/v1/secrets/os-creds')).statusCode).toBe(404);
  });

  it('refuses an unknown region, naming the ones there are', async () => {
    const docs = documents('secret-pw', authOf(os.cloud.url));
    (docs[1].settings as Record<string, unknown>).region = 'RegionTwo';
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: docs } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('RegionTwo');
  });

  it('takes the right credentials, from the same apply and then from the stored secret', async () => {
    expect((await h.call('POST', '/api/v1/apply', { body: { documents: documents('secret-pw', authOf(os.cloud.url)) } })).statusCode).toBe(200);
    // The provider alone now: its credentials come from the stored (sealed) secret.
    const again = await h.call('POST', '/api/v1/apply', { body: { documents: [{ ...documents('secret-pw', authOf(os.cloud.url))[1], labels: { team: 'a' } }] } });
    expect(again.statusCode).toBe(200);
  });

  it('lets a provider through when its cloud cannot be reached now (not a refusal: prepare tells later)', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: documents('secret-pw', authOf(`http://127.0.0.1:${port}`)) } });
    expect(res.statusCode).toBe(200);
  });
});
