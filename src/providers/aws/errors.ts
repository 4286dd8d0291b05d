/**
 * EC2's refusals as Formwork's errors, with their retry semantics (docs/errors.md): the
 * error's `name` (its `<Code>`) decides — throttling is PROVIDER_THROTTLED (waiting the
 * Retry-After when one came), refused credentials PROVIDER_AUTH naming the credentialsSecret,
 * a region the credential cannot be scoped to PROVIDER_INVALID naming settings.region, an
 * unknown image, size, subnet or a malformed request PROVIDER_INVALID, a used-up quota
 * PROVIDER_QUOTA naming the fix, a 5xx or a dropped connection PROVIDER_ERROR (retried).
 * The EC2 code is kept as `details.awsCode`, so a caller can tell `InvalidInstanceID.NotFound`
 * from the rest. Never a credential, token or signature in a message: only the code, EC2's
 * message and the setting to fix.
 *
 * @example
 *   try { await ec2.send(cmd) } catch (e) { throw awsError(e, ctx, 'RunInstances') }
 *   awsCode(err); // 'InvalidInstanceID.NotFound'
 */
import { FormworkError, type ErrorCode } from '../../core/errors.js';
import type { ProviderCheckContext } from '../provider.js';

const THROTTLED = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequestsException', 'RequestThrottledException', 'SlowDown']);
const AUTH = new Set(['AuthFailure', 'UnauthorizedOperation', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'OptInRequired', 'Blocked', 'PendingVerification', 'ExpiredToken', 'ExpiredTokenException', 'UnrecognizedClientException', 'CredentialsProviderError', 'MissingAuthenticationToken', 'InvalidAccessKeyId']);
/** What to do about each used-up quota. @example QUOTA_FIX.AddressLimitExceeded; // 'the account holds as many Elastic IPs…' */
export const QUOTA_FIX: Record<string, string> = {
  AddressLimitExceeded: 'the account holds as many Elastic IPs as its quota allows (5 by default): release unused ones (formwork providers orphans NAME --delete), ask AWS for a higher quota, or boot in a subnet that maps public IPs (settings.subnetId) or choose settings.publicAddress: none',
  InstanceLimitExceeded: 'the account runs as many instances as its quota allows: delete unused instances or ask AWS for a higher On-Demand instance quota',
  VcpuLimitExceeded: 'the account runs as many vCPUs as its quota allows: delete unused instances, choose a smaller size, or ask AWS for a higher vCPU quota',
  MaxSpotInstanceCountExceeded: 'the Spot instance quota is used up',
  SecurityGroupLimitExceeded: 'the VPC holds as many security groups as its quota allows: delete unused ones or name an existing group in settings.securityGroupName',
  KeyPairLimitExceeded: 'the region holds as many key pairs as its quota allows: delete unused ones',
  RulesPerSecurityGroupLimitExceeded: 'the security group holds as many rules as its quota allows',
};
const INVALID_FIX: Record<string, string> = {
  'InvalidAMIID.NotFound': 'name an image of this region (settings.images, or a native AMI id)',
  'InvalidAMIID.Malformed': 'name an image as ami-… (settings.images)',
  'InvalidAMIID.Unavailable': 'name an available image (settings.images)',
  'InvalidSubnetID.NotFound': 'fix settings.subnetId',
  'InvalidSubnetID.Malformed': 'fix settings.subnetId',
  InvalidInstanceType: 'name an instance type of this region (settings.sizes)',
  'InvalidZone.NotFound': 'fix settings.zone (or the node\'s zone)',
  'InvalidGroup.NotFound': 'the security group is gone: applying the provider again (prepare) makes it',
  'InvalidKeyPair.NotFound': 'the key pair is gone: applying the provider again (prepare) imports it',
  IdempotentParameterMismatch: 'another RunInstances used this idempotency token with other parameters (image, size, subnet or key) within the last day: EC2 accepts it with other parameters once that day has passed',
};
const RETRYABLE_4XX = new Set(['IncorrectInstanceState', 'InsufficientInstanceCapacity', 'InsufficientAddressCapacity', 'DependencyViolation', 'Unavailable', 'ServiceUnavailable', 'InternalError', 'InternalFailure']);

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string> };
}

/**
 * The EC2 code of an error `awsError` made (`details.awsCode`), if any.
 *
 * @example
 *   if (awsCode(e) === 'InvalidInstanceID.NotFound') return undefined;
 */
export function awsCode(e: unknown): string | undefined {
  return e instanceof FormworkError && typeof e.details?.awsCode === 'string' ? e.details.awsCode : undefined;
}

/**
 * An SDK error (or a network failure) as a FormworkError (see the file's comment).
 *
 * @example
 *   awsError(Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } }), ctx, 'DescribeInstances').code; // 'PROVIDER_THROTTLED'
 */
export function awsError(e: unknown, ctx: Pick<ProviderCheckContext, 'providerName' | 'settings' | 'credentials'>, what: string): FormworkError {
  if (e instanceof FormworkError) return e;
  const err = (e ?? {}) as SdkError;
  const status = err.$metadata?.httpStatusCode;
  const code = err.name && err.name !== 'Error' ? err.name : (err.Code ?? err.code ?? 'Error');
  const message = (err.message ?? String(e)).trim().replace(/\s+/g, ' ');
  const where = `provider ${ctx.providerName}: EC2 ${what}`;
  const details = { provider: ctx.providerName, call: what, awsCode: code, ...(status ? { status } : {}) };
  const make = (c: ErrorCode, msg: string, hint: { retryable?: boolean; nextDelayMs?: number } = {}) => new FormworkError(c, msg, details, { ...hint, cause: e });

  if (THROTTLED.has(code) || status === 429) {
    const after = Number(err.$response?.headers?.['retry-after']);
    return make('PROVIDER_THROTTLED', `${where} was throttled (${code}): ${message}`, Number.isFinite(after) && after >= 0 ? { nextDelayMs: after * 1000 } : {});
  }
  if (code === 'AuthFailure' && /scoped to a valid region/i.test(message)) {
    return make('PROVIDER_INVALID', `${where}: the region "${String(ctx.settings.region)}" is not one the endpoint knows (${message}); fix settings.region`);
  }
  if (AUTH.has(code) || status === 401) {
    const source = ctx.credentials?.accessKeyId ? "the access key in the provider's credentialsSecret (accessKeyId, secretAccessKey, sessionToken)" : "the SDK's default credentials (environment, shared config and credentials files); or name a Secret holding accessKeyId and secretAccessKey in the provider's credentialsSecret";
    return make('PROVIDER_AUTH', `${where} refused the credentials (${code}: ${message}); fix ${source}`);
  }
  if (QUOTA_FIX[code] || /LimitExceeded$/.test(code)) return make('PROVIDER_QUOTA', `${where}: ${code}: ${message}; ${QUOTA_FIX[code] ?? 'raise the quota or free resources'}`);
  if (code === 'InsufficientInstanceCapacity') return make('PROVIDER_ERROR', `${where}: ${code}: ${message}; AWS has no capacity for this size in this zone now: retried, or choose another zone (settings.zone) or size`, { retryable: true, nextDelayMs: 30_000 });
  // Not retried by the call policy: a gone instance would cost every try; describeInstance waits out EC2's lag after a launch itself.
  if (code === 'InvalidInstanceID.NotFound') return make('PROVIDER_ERROR', `${where}: ${code}: ${message}; the instance is gone, or not yet known to EC2 just after its launch`, { retryable: false });
  if (RETRYABLE_4XX.has(code)) return make('PROVIDER_ERROR', `${where}: ${code}: ${message}`, { retryable: true, ...(code === 'IncorrectInstanceState' ? { nextDelayMs: 2000 } : {}) });
  if (status !== undefined && status >= 500) return make('PROVIDER_ERROR', `${where} failed (${status} ${code}): ${message}`, { retryable: true });
  if (status !== undefined && status >= 400) {
    const fix = INVALID_FIX[code];
    return make('PROVIDER_INVALID', `${where} was refused: ${code}: ${message}${fix ? `; ${fix}` : ''}`);
  }
  // No answer at all: a dropped connection, a refused one, a name that does not resolve.
  const endpoint = typeof ctx.settings.endpoint === 'string' ? ctx.settings.endpoint : `the EC2 endpoint of region ${String(ctx.settings.region)}`;
  return make('PROVIDER_ERROR', `${where}: ${endpoint} did not answer (${code}: ${message})`, { retryable: true });
}
