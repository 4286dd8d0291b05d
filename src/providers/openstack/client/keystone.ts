/**
 * Keystone v3 authentication: the request body for each method (password, application
 * credential, token), the scope, and the token it answers with (`X-Subject-Token`, its
 * expiry and the service catalog). Version 2.0 is refused with a clear message: every
 * maintained cloud has v3.
 *
 * @example
 *   const token = await authenticate({ authUrl: 'https://keystone.example.com/v3', method: 'password', username: 'demo', password, userDomainName: 'Default', projectName: 'demo', projectDomainName: 'Default' }, { secrets: [password] });
 *   token.catalog; // CatalogEntry[]
 */
import { FormworkError } from '../../../core/errors.js';
import type { CatalogEntry } from './catalog.js';
import { parseVersions, pickVersion, unversionedRoot, versionedBase } from './discovery.js';
import { sendRequest, type HttpOptions } from './http.js';

/** A project, domain or system scope, by id or by name (a project name needs its domain). */
export interface AuthScope {
  projectId?: string;
  projectName?: string;
  projectDomainId?: string;
  projectDomainName?: string;
  domainId?: string;
  domainName?: string;
  system?: boolean;
}

/** Password authentication: the user by id, or by name with its domain. */
export interface PasswordAuth extends AuthScope {
  method: 'password';
  authUrl: string;
  userId?: string;
  username?: string;
  userDomainId?: string;
  userDomainName?: string;
  password: string;
}

/** Application-credential authentication: by id, or by name with its user. Scoped by the credential itself. */
export interface ApplicationCredentialAuth {
  method: 'application_credential';
  authUrl: string;
  applicationCredentialId?: string;
  applicationCredentialName?: string;
  applicationCredentialSecret: string;
  userId?: string;
  username?: string;
  userDomainId?: string;
  userDomainName?: string;
}

/** Token authentication: an existing token, rescoped. It cannot be renewed once it expires. */
export interface TokenAuth extends AuthScope {
  method: 'token';
  authUrl: string;
  token: string;
}

/** Any of the three ways to authenticate. */
export type AuthOptions = PasswordAuth | ApplicationCredentialAuth | TokenAuth;

/** A Keystone token with what came with it. */
export interface KeystoneToken {
  value: string;
  expiresAt: Date;
  catalog: CatalogEntry[];
  projectId?: string;
  userId?: string;
}

/**
 * The secrets an AuthOptions holds (to mask in every message).
 *
 * @example
 *   authSecrets({ method: 'token', authUrl, token: 'gAAAA…' }); // ['gAAAA…']
 */
export function authSecrets(auth: AuthOptions): string[] {
  if (auth.method === 'password') return [auth.password];
  if (auth.method === 'token') return [auth.token];
  return [auth.applicationCredentialSecret];
}

function invalid(message: string, details: Record<string, unknown> = {}): FormworkError {
  return new FormworkError('PROVIDER_INVALID', message, details);
}

function domainRef(id: string | undefined, name: string | undefined): { id: string } | { name: string } | undefined {
  return id ? { id } : name ? { name } : undefined;
}

function userRef(a: { userId?: string; username?: string; userDomainId?: string; userDomainName?: string }, what: string): Record<string, unknown> {
  if (a.userId) return { id: a.userId };
  if (!a.username) throw invalid(`${what} needs a user: set auth.username (with user_domain_name) or auth.user_id`);
  const domain = domainRef(a.userDomainId, a.userDomainName);
  if (!domain) throw invalid(`user "${a.username}" needs its domain: set auth.user_domain_name (often "Default") or auth.user_domain_id`, { username: a.username });
  return { name: a.username, domain };
}

function scopeOf(s: AuthScope): Record<string, unknown> | undefined {
  if (s.projectId) return { project: { id: s.projectId } };
  if (s.projectName) {
    const domain = domainRef(s.projectDomainId ?? s.domainId, s.projectDomainName ?? s.domainName);
    if (!domain) throw invalid(`project "${s.projectName}" needs its domain: set auth.project_domain_name (often "Default") or auth.project_domain_id`, { projectName: s.projectName });
    return { project: { name: s.projectName, domain } };
  }
  const domain = domainRef(s.domainId, s.domainName);
  if (domain) return { domain };
  if (s.system) return { system: { all: true } };
  return undefined;
}

/**
 * The body of `POST /v3/auth/tokens` for these options.
 *
 * @example
 *   authRequestBody({ method: 'application_credential', authUrl, applicationCredentialId: 'a1', applicationCredentialSecret: 's' });
 *   // { auth: { identity: { methods: ['application_credential'], application_credential: { id: 'a1', secret: 's' } } } }
 */
export function authRequestBody(auth: AuthOptions): { auth: Record<string, unknown> } {
  if (auth.method === 'application_credential') {
    const cred: Record<string, unknown> = { secret: auth.applicationCredentialSecret };
    if (auth.applicationCredentialId) cred.id = auth.applicationCredentialId;
    else if (auth.applicationCredentialName) {
      cred.name = auth.applicationCredentialName;
      cred.user = userRef(auth, `application credential "${auth.applicationCredentialName}"`);
    } else throw invalid('an application credential needs auth.application_credential_id, or auth.application_credential_name with its user');
    return { auth: { identity: { methods: ['application_credential'], application_credential: cred } } };
  }
  const identity =
    auth.method === 'token'
      ? { methods: ['token'], token: { id: auth.token } }
      : { methods: ['password'], password: { user: { ...userRef(auth, 'password authentication'), password: auth.password } } };
  const scope = scopeOf(auth);
  return { auth: scope ? { identity, scope } : { identity } };
}

/**
 * The v3 base URL of an `auth_url`: kept when it ends in `/v3`, refused for v2.0, else found
 * by version discovery on it (falling back to `<auth_url>/v3` when it has no document).
 *
 * @example
 *   await identityBase('https://identity.example.com', { secrets: [] }); // 'https://identity.example.com/v3'
 */
export async function identityBase(authUrl: string, http: HttpOptions): Promise<string> {
  let url: URL;
  try {
    url = new URL(authUrl);
  } catch {
    throw invalid(`auth_url "${authUrl}" is not a URL${/^[\w.-]+\.[a-z]{2,}/i.test(authUrl) ? `: write it with its scheme, https://${authUrl}` : ''}`, { authUrl });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`auth_url "${authUrl}" must be an http:// or https:// URL`, { authUrl });
  const trimmed = authUrl.replace(/\/+$/, '');
  if (/\/v3$/.test(trimmed)) return trimmed;
  if (/\/v2(\.0)?$/.test(trimmed)) throw invalid(`auth_url "${authUrl}" is Keystone v2.0, which Formwork does not speak: use the cloud's v3 endpoint (often the same URL ending in /v3)`, { authUrl });
  try {
    // Keystone answers its root with 300 Multiple Choices and the versions document.
    const res = await sendRequest({ service: 'identity', method: 'GET', url: trimmed, alsoOk: [300] }, http);
    const v3 = pickVersion(parseVersions(res.body), 3);
    if (v3) return versionedBase(unversionedRoot(trimmed), v3);
  } catch (e) {
    if (!(e instanceof FormworkError && e.code === 'NOT_FOUND')) throw e;
  }
  return `${trimmed}/v3`;
}

function parseToken(subject: string | null, body: unknown): KeystoneToken {
  const t = (body as { token?: Record<string, unknown> } | undefined)?.token;
  if (!subject || !t || typeof t.expires_at !== 'string') throw new FormworkError('PROVIDER_ERROR', 'Keystone answered the token request without a token (no X-Subject-Token header or no token body)', {}, { retryable: false });
  const catalog = Array.isArray(t.catalog) ? (t.catalog as CatalogEntry[]) : [];
  return {
    value: subject,
    expiresAt: new Date(t.expires_at),
    catalog,
    projectId: (t.project as { id?: string } | undefined)?.id,
    userId: (t.user as { id?: string } | undefined)?.id,
  };
}

/**
 * Gets a token. Keystone's 401 becomes PROVIDER_AUTH naming what to check; a token without
 * a catalog (an unscoped password login) is refused, naming the scope to set.
 *
 * @example
 *   const t = await authenticate(auth, { secrets: authSecrets(auth) }); // t.value, t.expiresAt
 */
export async function authenticate(auth: AuthOptions, http: HttpOptions): Promise<KeystoneToken> {
  const base = await identityBase(auth.authUrl, http);
  let res;
  try {
    res = await sendRequest({ service: 'identity', method: 'POST', url: `${base}/auth/tokens`, body: authRequestBody(auth) }, http);
  } catch (e) {
    if (e instanceof FormworkError && e.code === 'PROVIDER_AUTH') {
      const what = auth.method === 'password' ? 'the user name, domain, password and project' : auth.method === 'token' ? 'the token (it may have expired)' : 'the application credential id and secret (it may have expired)';
      throw new FormworkError('PROVIDER_AUTH', `Keystone at ${base} refused the ${auth.method.replace('_', ' ')} login: check ${what} in clouds.yaml or the provider's Secret (${e.message})`, { ...e.details, authUrl: base, method: auth.method }, { cause: e });
    }
    throw e;
  }
  const token = parseToken(res.headers.get('x-subject-token'), res.body);
  if (token.catalog.length === 0) throw invalid(`Keystone at ${base} gave a token without a service catalog: the login has no project scope. Set auth.project_name (with project_domain_name) or auth.project_id`, { authUrl: base });
  return token;
}
