/**
 * The access token the Compute API wants. With a credentialsSecret, its `serviceAccountJson`
 * (a service-account key file) is exchanged for a token by the JWT-bearer flow, done here by
 * hand (RS256 with node:crypto, POSTed to the key's `token_uri`): google-auth-library 11
 * always posts to oauth2.googleapis.com, ignoring `token_uri`, which an emulator or a private
 * endpoint puts in the key. Without a secret: Application Default Credentials through
 * google-auth-library (loaded only then). Tokens are kept until a minute before they expire.
 *
 * @example
 *   const token = await accessToken(ctx); // 'ya29.…' (never logged)
 */
import { createHash, createSign } from 'node:crypto';
import { FormworkError, toFormworkError } from '../../core/errors.js';
import { callPolicyFor } from '../api-calls.js';
import type { ProviderCheckContext } from '../provider.js';

/** The OAuth scope the driver asks for. */
export const COMPUTE_SCOPE = 'https://www.googleapis.com/auth/compute';

/** The fields of a service-account key the driver reads. */
export interface ServiceAccountKey {
  type?: string;
  project_id?: string;
  private_key_id?: string;
  private_key: string;
  client_email: string;
  token_uri?: string;
}

const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';
const tokens = new Map<string, { token: string; expiresAt: number }>();

/**
 * The service-account key of the provider's secret, or undefined when it has none (ADC).
 *
 * @example
 *   serviceAccountKey({ ...ctx, credentials: { serviceAccountJson } })?.client_email;
 */
export function serviceAccountKey(ctx: Pick<ProviderCheckContext, 'providerName' | 'credentials'>): ServiceAccountKey | undefined {
  const raw = ctx.credentials?.serviceAccountJson;
  if (raw === undefined) return undefined;
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(raw) as Partial<ServiceAccountKey>;
  } catch {
    throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: the credentialsSecret's serviceAccountJson is not JSON: put the service account's key file there as it was downloaded`, { provider: ctx.providerName });
  }
  if (typeof key.private_key !== 'string' || typeof key.client_email !== 'string') {
    throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: the credentialsSecret's serviceAccountJson has no private_key or client_email: it must be a service account key file (type service_account)`, { provider: ctx.providerName });
  }
  return key as ServiceAccountKey;
}

/**
 * A bearer token for the Compute API, cached per provider and key until shortly before it expires.
 *
 * @example
 *   headers.authorization = `Bearer ${await accessToken(ctx)}`;
 */
export async function accessToken(ctx: ProviderCheckContext): Promise<string> {
  const key = serviceAccountKey(ctx);
  const cacheKey = `${ctx.providerName}\0${key ? `${key.client_email}\0${key.token_uri ?? ''}\0${createHash('sha256').update(key.private_key).digest('hex')}` : 'adc'}`;
  const cached = tokens.get(cacheKey);
  if (cached && cached.expiresAt > Date.now()) return cached.token;
  const got = key ? await jwtBearer(key, ctx) : await applicationDefault(ctx);
  tokens.set(cacheKey, { token: got.token, expiresAt: Date.now() + Math.max(0, got.expiresInS - 60) * 1000 });
  return got.token;
}

/** Forgets every cached token (a test's, or after a 401 on a cached one). @example forgetTokens(); */
export function forgetTokens(): void {
  tokens.clear();
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * The signed JWT assertion of the JWT-bearer grant (RFC 7523) for a key.
 *
 * @example
 *   signedAssertion(key, Math.floor(Date.now() / 1000)); // 'eyJhbGciOiJSUzI1NiIs…'
 */
export function signedAssertion(key: ServiceAccountKey, nowS: number, tokenUri = key.token_uri ?? DEFAULT_TOKEN_URI): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) }));
  const claims = b64url(JSON.stringify({ iss: key.client_email, scope: COMPUTE_SCOPE, aud: tokenUri, iat: nowS, exp: nowS + 3600 }));
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key.private_key);
  return `${header}.${claims}.${b64url(signature)}`;
}

async function jwtBearer(key: ServiceAccountKey, ctx: ProviderCheckContext): Promise<{ token: string; expiresInS: number }> {
  const tokenUri = key.token_uri ?? DEFAULT_TOKEN_URI;
  let assertion: string;
  try {
    assertion = signedAssertion(key, Math.floor(Date.now() / 1000), tokenUri);
  } catch (e) {
    throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: the private_key of the credentialsSecret's serviceAccountJson cannot sign (${e instanceof Error ? e.message.split('\n')[0] : 'unreadable key'})`, { provider: ctx.providerName });
  }
  const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString();
  return callPolicyFor(ctx).run('oauth2.token', async () => {
    let res: Response;
    try {
      res = await fetch(tokenUri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, signal: ctx.signal });
    } catch (e) {
      throw new FormworkError('PROVIDER_ERROR', `provider ${ctx.providerName}: the token endpoint ${tokenUri} (token_uri of the service account key) did not answer: ${toFormworkError(e).message}`, { tokenUri }, { retryable: true, cause: e });
    }
    const text = await res.text();
    const json = parseJson(text) as { access_token?: string; expires_in?: number; error?: string; error_description?: string } | undefined;
    if (res.status === 429) throw new FormworkError('PROVIDER_THROTTLED', `the token endpoint ${tokenUri} throttled the login`, { tokenUri }, { nextDelayMs: Number(res.headers.get('retry-after') ?? 1) * 1000 });
    if (res.status >= 500) throw new FormworkError('PROVIDER_ERROR', `the token endpoint ${tokenUri} answered HTTP ${res.status}`, { tokenUri }, { retryable: true });
    if (!res.ok || !json?.access_token) {
      const why = json?.error ? `${json.error}${json.error_description ? `: ${json.error_description}` : ''}` : `HTTP ${res.status}`;
      throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: ${tokenUri} refused service account ${key.client_email} (${why}): fix the credentialsSecret's serviceAccountJson (a current key of an enabled service account)`, { provider: ctx.providerName, tokenUri, clientEmail: key.client_email });
    }
    return { token: json.access_token, expiresInS: typeof json.expires_in === 'number' ? json.expires_in : 3600 };
  });
}

async function applicationDefault(ctx: ProviderCheckContext): Promise<{ token: string; expiresInS: number }> {
  const { GoogleAuth } = await import('google-auth-library');
  return callPolicyFor(ctx).run('oauth2.adc', async () => {
    try {
      const client = await new GoogleAuth({ scopes: [COMPUTE_SCOPE] }).getClient();
      const { token } = await client.getAccessToken();
      if (!token) throw new Error('no token');
      return { token, expiresInS: 300 };
    } catch (e) {
      throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName} has no credentialsSecret and Application Default Credentials gave no token (${toFormworkError(e).message.split('\n')[0]}): name a Secret holding serviceAccountJson in credentialsSecret, or set GOOGLE_APPLICATION_CREDENTIALS for the server`, { provider: ctx.providerName });
    }
  });
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
