import { describe, expect, it } from 'vitest';
import { osFromName } from './catalog.js';
import { awsError } from './errors.js';
import { hostKeyFromConsole } from './reachable.js';
import { clientToken } from './tags.js';

const ctx = { providerName: 'aws1', settings: { region: 'us-east-1' }, credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'shh-secret' } };
const sdkError = (name: string, status: number | undefined, message = 'msg', headers: Record<string, string> = {}) => Object.assign(new Error(message), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}), $response: { headers } });

describe('aws: EC2 errors as Formwork errors', () => {
  it('maps throttling (with its Retry-After), credentials, quotas, capacity, invalid requests, 5xx and dropped connections', () => {
    expect(awsError(sdkError('RequestLimitExceeded', 503, 'Request limit exceeded.', { 'retry-after': '3' }), ctx, 'DescribeInstances')).toMatchObject({ code: 'PROVIDER_THROTTLED', retryable: true, nextDelayMs: 3000 });
    expect(awsError(sdkError('RequestLimitExceeded', 503), ctx, 'DescribeInstances').nextDelayMs).toBeUndefined();
    const auth = awsError(sdkError('AuthFailure', 401, 'AWS was not able to validate the provided access credentials'), ctx, 'DescribeAvailabilityZones');
    expect(auth).toMatchObject({ code: 'PROVIDER_AUTH', retryable: false, message: expect.stringContaining("provider's credentialsSecret") });
    expect(JSON.stringify(auth.details) + auth.message).not.toContain('shh-secret');
    expect(awsError(sdkError('UnauthorizedOperation', 403), { ...ctx, credentials: undefined }, 'RunInstances').message).toContain("the SDK's default credentials");
    expect(awsError(sdkError('AuthFailure', 401, "Credential should be scoped to a valid region, not 'xx-1'."), ctx, 'X')).toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('fix settings.region') });
    expect(awsError(sdkError('AddressLimitExceeded', 400), ctx, 'AllocateAddress')).toMatchObject({ code: 'PROVIDER_QUOTA', message: expect.stringContaining('release unused ones') });
    expect(awsError(sdkError('InstanceLimitExceeded', 400), ctx, 'RunInstances').code).toBe('PROVIDER_QUOTA');
    expect(awsError(sdkError('InsufficientInstanceCapacity', 500), ctx, 'RunInstances')).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, message: expect.stringContaining('settings.zone') });
    expect(awsError(sdkError('InvalidAMIID.NotFound', 400), ctx, 'RunInstances')).toMatchObject({ code: 'PROVIDER_INVALID', retryable: false, details: { awsCode: 'InvalidAMIID.NotFound' }, message: expect.stringContaining('settings.images') });
    expect(awsError(sdkError('IncorrectInstanceState', 400), ctx, 'AssociateAddress')).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true });
    expect(awsError(sdkError('InternalError', 500), ctx, 'RunInstances')).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true });
    expect(awsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), { ...ctx, settings: { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' } }, 'X')).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, message: expect.stringContaining('http://127.0.0.1:1 did not answer') });
  });
});

describe('aws: what the driver reads from EC2', () => {
  it('reads the host key cloud-init printed on the console, the ED25519 one first', () => {
    const console = 'noise\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n3072 SHA256:rsaRSArsa root@ip-10-0-0-1 (RSA)\n256 SHA256:edEDed+/0 root@ip-10-0-0-1 (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n';
    expect(hostKeyFromConsole(console)).toBe('SHA256:edEDed+/0');
    expect(hostKeyFromConsole('-----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 SHA256:ecECec root@h (ECDSA)\n-----END SSH HOST KEY FINGERPRINTS-----')).toBe('SHA256:ecECec');
    expect(hostKeyFromConsole('Cloud-init finished')).toBeUndefined();
  });

  it('reads the OS from the official images\' names', () => {
    expect(osFromName('debian-12-amd64-20240717-1811')).toEqual({ osFamily: 'debian', osVersion: '12' });
    expect(osFromName('ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701')).toEqual({ osFamily: 'ubuntu', osVersion: '22.04' });
    expect(osFromName('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-amd64-server-20240701')).toEqual({ osFamily: 'ubuntu', osVersion: '24.04' });
    expect(osFromName('al2023-ami-2023.5.20240701.0-kernel-6.1-x86_64')).toEqual({ osFamily: 'amazon', osVersion: '2023' });
    expect(osFromName('my-golden-image')).toEqual({});
  });

  it('makes a ClientToken EC2 accepts from any idempotency token: 64 characters at most, the same for the same token', () => {
    const long = `formwork-${'n'.repeat(200)}-3`;
    expect(clientToken(long)).toHaveLength(64);
    expect(clientToken(long)).toBe(clientToken(long));
    expect(clientToken('formwork-a-0')).not.toBe(clientToken('formwork-a-1'));
  });
});
