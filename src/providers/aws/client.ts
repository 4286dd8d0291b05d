/**
 * The EC2 client of a provider and the one way the driver calls it: `ec2Call` sends a
 * command under the provider's call policy (../api-calls.ts: rate, concurrency, retries with
 * backoff and jitter honouring Retry-After) and maps EC2's refusals (errors.ts). The client
 * is made with `maxAttempts: 1` (the policy retries), `settings.region`, `settings.endpoint`
 * when given, and the credentials of the provider's Secret (`accessKeyId`,
 * `secretAccessKey`, optional `sessionToken`), else the SDK's default chain; it is kept per
 * provider while those stay the same.
 *
 * @example
 *   const out = await ec2Call(ctx, new DescribeAvailabilityZonesCommand({}));
 *   await ec2Call(ctx, new AllocateAddressCommand({ Domain: 'vpc' }), { idempotent: false });
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { createHash } from 'node:crypto';
import { FormworkError } from '../../core/errors.js';
import { callPolicyFor } from '../api-calls.js';
import type { ProviderCheckContext } from '../provider.js';
import { awsError } from './errors.js';

type Ctx = Pick<ProviderCheckContext, 'providerName' | 'settings' | 'credentials' | 'signal'>;

const clients = new Map<string, { key: string; client: EC2Client }>();

/**
 * The settings the client is made from, checked: a region, an endpoint that is a URL.
 *
 * @example
 *   clientSettings({ providerName: 'a', settings: { region: 'us-east-1' } }); // { region: 'us-east-1' }
 */
export function clientSettings(ctx: Ctx): { region: string; endpoint?: string } {
  const region = ctx.settings.region;
  if (typeof region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.region "${String(region ?? '')}" is not an AWS region name (like us-east-1); fix settings.region`, { provider: ctx.providerName, setting: 'region' });
  }
  const endpoint = ctx.settings.endpoint;
  if (endpoint === undefined) return { region };
  let url: URL | undefined;
  try {
    url = new URL(String(endpoint));
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.endpoint "${String(endpoint)}" is not an http(s) URL; fix settings.endpoint (or leave it out for AWS's own endpoint)`, { provider: ctx.providerName, setting: 'endpoint' });
  }
  return { region, endpoint: String(endpoint) };
}

function clientFor(ctx: Ctx): EC2Client {
  const { region, endpoint } = clientSettings(ctx);
  const c = ctx.credentials;
  if (c && Object.keys(c).length && (!c.accessKeyId || !c.secretAccessKey)) {
    throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: its credentialsSecret holds no ${!c.accessKeyId ? 'accessKeyId' : 'secretAccessKey'}; fix the provider's credentialsSecret (accessKeyId, secretAccessKey, optional sessionToken)`, { provider: ctx.providerName });
  }
  const credentials = c?.accessKeyId ? { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } : undefined;
  // The key holds a hash of the credentials, never the credentials themselves.
  const key = createHash('sha256').update(JSON.stringify([region, endpoint, credentials])).digest('hex');
  const known = clients.get(ctx.providerName);
  if (known?.key === key) return known.client;
  known?.client.destroy();
  const client = new EC2Client({ region, maxAttempts: 1, ...(endpoint ? { endpoint } : {}), ...(credentials ? { credentials } : {}) });
  clients.set(ctx.providerName, { key, client });
  return client;
}

/** The command's name as the API calls it (`RunInstancesCommand` → `RunInstances`). */
const actionOf = (command: object) => command.constructor.name.replace(/Command$/, '');

/**
 * Sends one EC2 command under the provider's call policy; EC2's refusals as FormworkErrors.
 *
 * @example
 *   const { Reservations } = await ec2Call(ctx, new DescribeInstancesCommand({ InstanceIds: [id] }));
 */
export async function ec2Call<Out>(ctx: Ctx, command: { constructor: { name: string } }, opts: { idempotent?: boolean } = {}): Promise<Out> {
  const client = clientFor(ctx);
  const what = actionOf(command);
  return callPolicyFor(ctx).run(
    what,
    async () => {
      try {
        return (await client.send(command as never)) as Out;
      } catch (e) {
        throw awsError(e, ctx, what);
      }
    },
    { idempotent: opts.idempotent, signal: ctx.signal },
  );
}

/** @internal: tests start from no clients. @example afterEach(() => forgetClients()); */
export function forgetClients(): void {
  for (const { client } of clients.values()) client.destroy();
  clients.clear();
}
