import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../../../core/errors.js';
import { startFakeCloud, fixture, type FakeCloud } from '../testing/fake-cloud.js';
import { createOpenStackClient } from './index.js';
import { authRequestBody } from './keystone.js';
import { OpenStackSession } from './session.js';

let cloud: FakeCloud;
beforeEach(async () => {
  cloud = await startFakeCloud();
});
afterEach(async () => {
  await cloud.close();
});

const authCalls = () => cloud.requests.filter((r) => r.path === '/5000/v3/auth/tokens').length;

describe('Keystone v3 authentication', () => {
  it('logs in with a password scoped to a project by name, discovering v3 on an unversioned auth_url', async () => {
    const session = new OpenStackSession({ auth: cloud.passwordAuth() });
    const token = await session.currentToken();
    expect(token.value).toBe('tok-1');
    expect(token.projectId).toBe('9c4693dce56b493b9b83197d900f7fba');
    expect(token.catalog.map((e) => e.type)).toContain('compute');
    const login = cloud.requests.find((r) => r.method === 'POST')!;
    expect(login.body).toEqual({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', domain: { name: 'Default' }, password: 'secret-pw' } } },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    });
  });

  it('builds application-credential and token bodies (by id, by name with its user) and scopes by id', () => {
    expect(authRequestBody({ method: 'application_credential', authUrl: 'x', applicationCredentialId: 'ac1', applicationCredentialSecret: 's' })).toEqual({ auth: { identity: { methods: ['application_credential'], application_credential: { id: 'ac1', secret: 's' } } } });
    expect(authRequestBody({ method: 'application_credential', authUrl: 'x', applicationCredentialName: 'ci', username: 'u', userDomainId: 'default', applicationCredentialSecret: 's' }).auth.identity).toEqual({ methods: ['application_credential'], application_credential: { name: 'ci', secret: 's', user: { name: 'u', domain: { id: 'default' } } } });
    expect(authRequestBody({ method: 'token', authUrl: 'x', token: 't', projectId: 'p1' })).toEqual({ auth: { identity: { methods: ['token'], token: { id: 't' } }, scope: { project: { id: 'p1' } } } });
    expect(() => authRequestBody({ method: 'password', authUrl: 'x', username: 'u', password: 'p' })).toThrow(/user_domain_name/);
    expect(() => authRequestBody({ method: 'password', authUrl: 'x', userId: 'u1', password: 'p', projectName: 'demo' })).toThrow(/project_domain_name/);
  });

  it('logs in with an application credential against a /v3 auth_url without discovery', async () => {
    const session = new OpenStackSession({ auth: { method: 'application_credential', authUrl: `${cloud.url}/5000/v3`, applicationCredentialId: 'ac1', applicationCredentialSecret: 'app-secret' } });
    expect((await session.currentToken()).value).toBe('tok-1');
    expect(cloud.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /5000/v3/auth/tokens']);
  });

  it('refuses a wrong password as PROVIDER_AUTH, naming what to check and never the password', async () => {
    const session = new OpenStackSession({ auth: cloud.passwordAuth({ password: 'wrong-password-123' }) });
    const e = (await session.currentToken().catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('PROVIDER_AUTH');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/check the user name, domain, password and project/);
    expect(JSON.stringify({ m: e.message, d: e.details })).not.toContain('wrong-password-123');
  });

  it('refuses a v2.0 auth_url and one without a scheme with what to write instead', async () => {
    const v2 = await new OpenStackSession({ auth: cloud.passwordAuth({ authUrl: 'https://identity.api.rackspacecloud.com/v2.0/' }) }).currentToken().catch((x: FormworkError) => x);
    expect((v2 as FormworkError).message).toMatch(/Keystone v2.0.*v3 endpoint/);
    const bare = await new OpenStackSession({ auth: cloud.passwordAuth({ authUrl: 'iam-pub.eu-ch2.sc.otc.t-systems.com/v3' }) }).currentToken().catch((x: FormworkError) => x);
    expect((bare as FormworkError).message).toMatch(/https:\/\/iam-pub\.eu-ch2/);
  });

  it('renews the token before it expires, and once when a call gets a 401', async () => {
    let now = Date.now();
    cloud.on('GET', '/9696/v2.0/networks', () => ({ body: { networks: [] } }));
    const client = createOpenStackClient({ auth: cloud.passwordAuth(), now: () => now });
    await client.network.listNetworks();
    expect(authCalls()).toBe(1);
    now += 56 * 60_000; // within the 5-minute margin of the one-hour token
    await client.network.listNetworks();
    expect(authCalls()).toBe(2);
    now = Date.now(); // the fake cloud dates its tokens by the real clock
    cloud.revokeTokens(); // the cloud forgets its tokens (a restart, a revocation)
    await client.network.listNetworks();
    expect(authCalls()).toBe(3);
    const last = cloud.requests.filter((r) => r.path === '/9696/v2.0/networks').map((r) => r.headers['x-auth-token']);
    expect(last).toEqual(['tok-1', 'tok-2', 'tok-2', 'tok-3']);
  });

  it('shares one login between concurrent calls', async () => {
    const session = new OpenStackSession({ auth: cloud.passwordAuth() });
    await Promise.all([session.currentToken(), session.currentToken(), session.currentToken()]);
    expect(authCalls()).toBe(1);
  });
});

describe('the service catalog and discovery', () => {
  it('discovers each service on its unversioned root and negotiates the compute microversion', async () => {
    cloud.on('GET', '/8774/v2.1/servers/s1', () => ({ body: { server: { id: 's1', metadata: {} } } }));
    const client = createOpenStackClient({ auth: cloud.passwordAuth(), region: 'regionOne' });
    expect((await client.compute.getServer('s1'))?.id).toBe('s1');
    const call = cloud.requests.find((r) => r.path === '/8774/v2.1/servers/s1')!;
    // compute-version.json says 2.10–2.53; Formwork asks up to 2.79: 2.53 it is.
    expect(call.headers['openstack-api-version']).toBe('compute 2.53');
    expect(await client.session.baseUrl('network')).toBe(`${cloud.url}/9696/v2.0`);
    expect(await client.session.baseUrl('image')).toBe(`${cloud.url}/9292/v2`);
    const net = cloud.requests.filter((r) => r.path.startsWith('/9696'));
    expect(net.every((r) => r.headers['openstack-api-version'] === undefined)).toBe(true);
  });

  it('refuses a compute API whose microversions do not meet the client range', async () => {
    const client = createOpenStackClient({ auth: cloud.passwordAuth(), computeMicroversions: { min: '2.60', max: '2.79' } });
    await expect(client.compute.getServer('s1')).rejects.toThrow(/accepts microversions 2.10–2.53; Formwork needs 2.60–2.79/);
  });

  it('uses an endpoint override, and names the regions when the one asked for has no endpoint', async () => {
    cloud.on('GET', '/elsewhere/v2.0/networks', () => ({ body: { networks: [{ id: 'n1' }] } }));
    cloud.on('GET', '/elsewhere', () => ({ body: { versions: [{ status: 'CURRENT', id: 'v2.0', links: [] }] } }));
    const overridden = createOpenStackClient({ auth: cloud.passwordAuth(), endpointOverrides: { network: `${cloud.url}/elsewhere` } });
    expect(await overridden.network.listNetworks()).toEqual([{ id: 'n1' }]);
    const wrongRegion = createOpenStackClient({ auth: cloud.passwordAuth(), region: 'RegionTwo' });
    await expect(wrongRegion.network.listNetworks()).rejects.toThrow(/region "RegionTwo" has no network endpoint; the cloud's regions are: regionOne/);
  });

  it('falls back to the catalog URL when a service has no discovery document', async () => {
    cloud.on('GET', '/9292', () => ({ status: 404, body: {} }));
    cloud.on('GET', '/9292/v2/images', () => ({ body: fixture('libcloud/openstack_v1.1/_images_v2_page2.json') }));
    const client = createOpenStackClient({ auth: cloud.passwordAuth() });
    expect((await client.image.listImages()).length).toBeGreaterThan(0);
  });
});
