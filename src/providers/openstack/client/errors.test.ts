import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, FormworkError } from '../../../core/errors.js';
import { startFakeCloud, fixture, type FakeCloud } from '../testing/fake-cloud.js';
import { errorFromResponse, parseFault, retryAfterMs } from './errors.js';
import { createOpenStackClient } from './index.js';

const req = { service: 'compute', method: 'POST', path: '/servers' };
const err = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  errorFromResponse({ status, headers: new Headers(headers), text: typeof body === 'string' ? body : JSON.stringify(body) }, req, ['s3cr3t-token']);

describe("OpenStack's error bodies", () => {
  it.each([
    [400, { badRequest: { message: 'Invalid flavorRef provided.', code: 400 } }, 'PROVIDER_INVALID', 'badRequest', 'Invalid flavorRef provided.'],
    [404, fixture('libcloud/openstack_v1.1/_os_keypairs_not_found.json'), 'NOT_FOUND', 'itemNotFound', 'The resource could not be found.'],
    [403, { forbidden: { message: "Policy doesn't allow os_compute_api:servers:create to be performed.", code: 403 } }, 'PROVIDER_AUTH', 'forbidden', "Policy doesn't allow os_compute_api:servers:create to be performed."],
    [403, { forbidden: { message: 'Quota exceeded for cores: Requested 8, but already used 20 of 20 cores', code: 403 } }, 'PROVIDER_QUOTA', 'forbidden', 'Quota exceeded for cores: Requested 8, but already used 20 of 20 cores'],
    [413, { overLimit: { message: 'Maximum number of ports exceeded', code: 413 } }, 'PROVIDER_QUOTA', 'overLimit', 'Maximum number of ports exceeded'],
    [409, { NeutronError: { type: 'OverQuota', message: "Quota exceeded for resources: ['floatingip'].", detail: '' } }, 'PROVIDER_QUOTA', 'OverQuota', "Quota exceeded for resources: ['floatingip']."],
    [404, { NeutronError: { type: 'ExternalGatewayForFloatingIPNotFound', message: 'External network 3c1b is not reachable from subnet 0a2f.', detail: '' } }, 'NOT_FOUND', 'ExternalGatewayForFloatingIPNotFound', 'External network 3c1b is not reachable from subnet 0a2f.'],
    [409, { NeutronError: { type: 'FloatingIPPortAlreadyAssociated', message: 'Cannot associate floating IP 10.0.0.5 with port p1: already associated', detail: '' } }, 'CONFLICT', 'FloatingIPPortAlreadyAssociated', 'Cannot associate floating IP 10.0.0.5 with port p1: already associated'],
    [400, { NeutronError: { type: 'BadRequest', message: 'Bad floatingip request: Network n1 is not a valid external network.', detail: '' } }, 'PROVIDER_INVALID', 'BadRequest', 'Bad floatingip request: Network n1 is not a valid external network.'],
    [401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }, 'PROVIDER_AUTH', 'Unauthorized', 'The request you have made requires authentication.'],
    [503, { computeFault: { message: 'Service Unavailable', code: 503 } }, 'PROVIDER_ERROR', 'computeFault', 'Service Unavailable'],
    [406, { errors: [{ status: 406, code: 'compute.microversion.unsupported', title: 'Not Acceptable', detail: 'Version 2.99 is not supported by the API.' }] }, 'PROVIDER_INVALID', 'compute.microversion.unsupported', 'Version 2.99 is not supported by the API.'],
  ])('%i %j → %s', (status, body, code, type, message) => {
    const e = err(status, body);
    expect(e).toBeInstanceOf(FormworkError);
    expect(e.code).toBe(code);
    expect(e.details).toMatchObject({ status, cloudType: type, cloudMessage: message, service: 'compute', method: 'POST', path: '/servers' });
    expect(e.message).toContain(message);
    expect(ERROR_CODES[e.code]).toBeDefined();
  });

  it('makes 5xx and conflicts retryable, and throttles with the wait asked for', () => {
    expect(err(500, 'oops').retryable).toBe(true);
    expect(err(409, { conflictingRequest: { message: 'Cannot delete while in task_state spawning', code: 409 } }).retryable).toBe(true);
    const throttled = err(429, { overLimit: { message: 'This request was rate-limited.', code: 429 } }, { 'retry-after': '12' });
    expect(throttled.code).toBe('PROVIDER_THROTTLED');
    expect(throttled.nextDelayMs).toBe(12_000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:30 GMT'))).toBe(30_000);
  });

  it('reads text bodies (Glance) and masks secrets the cloud echoes', () => {
    expect(parseFault('<html><body><h1>404 Not Found</h1>The resource could not be found.</body></html>').message).toBe('404 Not Found The resource could not be found.');
    const e = err(400, { badRequest: { message: 'Invalid token s3cr3t-token', code: 400 } });
    expect(e.message).not.toContain('s3cr3t-token');
    expect(JSON.stringify(e.details)).not.toContain('s3cr3t-token');
  });
});

describe('errors through the client', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await startFakeCloud();
  });
  afterEach(async () => {
    await cloud.close();
  });

  it('turns a Neutron refusal into its code with the cloud message, and a 404 delete into false', async () => {
    cloud.on('POST', '/9696/v2.0/floatingips', () => ({ status: 404, body: { NeutronError: { type: 'ExternalGatewayForFloatingIPNotFound', message: 'External network ext is not reachable from subnet sub1.', detail: '' } }, headers: { 'x-openstack-request-id': 'req-1' } }));
    const client = createOpenStackClient({ auth: cloud.passwordAuth() });
    const e = (await client.network.createFloatingIp({ floatingNetworkId: 'ext', portId: 'p1' }).catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('NOT_FOUND');
    expect(e.details).toMatchObject({ cloudType: 'ExternalGatewayForFloatingIPNotFound', requestId: 'req-1', path: '/9696/v2.0/floatingips' });
    expect(await client.network.deleteFloatingIp('gone')).toBe(false);
    expect(await client.compute.getServer('gone')).toBeUndefined();
  });

  it('turns a refused connection into a retryable PROVIDER_ERROR without the password', async () => {
    const url = cloud.url;
    await cloud.close();
    const client = createOpenStackClient({ auth: { method: 'password', authUrl: `${url}/5000/v3`, userId: 'u1', password: 'pw-never-shown', projectId: 'p1' } });
    const e = (await client.network.listNetworks().catch((x: unknown) => x)) as FormworkError;
    expect(e.code).toBe('PROVIDER_ERROR');
    expect(e.retryable).toBe(true);
    expect(e.message).not.toContain('pw-never-shown');
    cloud = await startFakeCloud();
  });
});
