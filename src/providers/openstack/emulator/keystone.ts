/**
 * Keystone v3 as the emulator plays it: the version documents (the root answers
 * `300 Multiple Choices`), `POST /v3/auth/tokens` with the password, application-credential
 * and token methods (the token in `X-Subject-Token`, with its expiry and the catalog of
 * public endpoints pointing at the emulator itself; internal and admin ones point at
 * addresses nothing answers on, as a real cloud's do from outside), `GET /v3/auth/tokens`,
 * and the check every other service makes of `X-Auth-Token`.
 *
 * As the real Keystone: a wrong secret, user, project or domain is a 401 with the same
 * message (it says nothing of which was wrong); a password login without a scope gets an
 * unscoped token, with no catalog; a token login keeps the first token's expiry.
 *
 * @example
 *   const keystone = new Keystone({ identity, credentials, baseUrl: 'http://127.0.0.1:5000', region: 'RegionOne', tokenTtlMs: 3600_000 });
 *   keystone.validToken(req.headers['x-auth-token']); // true once issued
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from './state.js';
import { keystoneError, UNAUTHORIZED, type EmuAnswer, type EmuRequest } from './wire.js';

/** The secrets the emulator accepts. */
export interface Credentials {
  username: string;
  password: string;
  applicationCredentialId: string;
  applicationCredentialName: string;
  applicationCredentialSecret: string;
}

/** How Keystone is set up. */
export interface KeystoneOptions {
  identity: Identity;
  credentials: Credentials;
  /** The emulator's URL (`http://127.0.0.1:PORT`). */
  baseUrl: string;
  region: string;
  tokenTtlMs: number;
  now?: () => number;
}

interface IssuedToken {
  expiresAt: number;
  issuedAt: number;
  methods: string[];
  scoped: boolean;
}

/**
 * The catalog's service paths under the emulator's URL.
 *
 * @example
 *   SERVICE_PATHS.compute; // '/compute/v2.1'
 */
export const SERVICE_PATHS = { identity: '/identity/v3', compute: '/compute/v2.1', network: '/network', image: '/image' } as const;

/**
 * Keystone (see the file's comment).
 *
 * @example
 *   const answer = keystone.handle(req); // for paths under /identity
 */
export class Keystone {
  private readonly tokens = new Map<string, IssuedToken>();

  constructor(private readonly options: KeystoneOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /**
   * Whether `token` was issued here, is scoped and has not expired.
   *
   * @example
   *   keystone.validToken('gAAAA…'); // false for an unknown token
   */
  validToken(token: unknown): boolean {
    const t = typeof token === 'string' ? this.tokens.get(token) : undefined;
    return !!t && t.scoped && t.expiresAt > this.now();
  }

  /**
   * Stops accepting every issued token (as a revocation or a Keystone restart with new keys does).
   *
   * @example
   *   keystone.revokeAll();
   */
  revokeAll(): void {
    this.tokens.clear();
  }

  private versionDoc(): Record<string, unknown> {
    return {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${this.options.baseUrl}${SERVICE_PATHS.identity}/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    };
  }

  /** The catalog: public endpoints on the emulator, internal and admin ones on unroutable addresses. */
  catalog(): Record<string, unknown>[] {
    const { baseUrl, region } = this.options;
    const entry = (type: string, name: string, path: string, port: number) => ({
      type,
      name,
      id: randomBytes(16).toString('hex'),
      endpoints: [
        { id: randomBytes(16).toString('hex'), interface: 'public', region, region_id: region, url: `${baseUrl}${path}` },
        { id: randomBytes(16).toString('hex'), interface: 'internal', region, region_id: region, url: `http://192.0.2.10:${port}${path}` },
        { id: randomBytes(16).toString('hex'), interface: 'admin', region, region_id: region, url: `http://192.0.2.10:${port}${path}` },
      ],
    });
    return [
      entry('identity', 'keystone', SERVICE_PATHS.identity, 5000),
      entry('compute', 'nova', SERVICE_PATHS.compute, 8774),
      entry('network', 'neutron', SERVICE_PATHS.network, 9696),
      entry('image', 'glance', SERVICE_PATHS.image, 9292),
    ];
  }

  private tokenBody(t: IssuedToken): Record<string, unknown> {
    const { identity } = this.options;
    const domain = { id: identity.domainId, name: 'Default' };
    const body: Record<string, unknown> = {
      methods: t.methods,
      user: { id: identity.userId, name: identity.username, domain, password_expires_at: null },
      audit_ids: [randomBytes(8).toString('base64url')],
      expires_at: new Date(t.expiresAt).toISOString().replace('Z', '000Z'),
      issued_at: new Date(t.issuedAt).toISOString().replace('Z', '000Z'),
    };
    if (t.scoped) {
      body.project = { id: identity.projectId, name: identity.projectName, domain };
      body.is_domain = false;
      body.roles = [{ id: 'r1', name: 'member' }, { id: 'r2', name: 'reader' }];
      body.catalog = this.catalog();
    }
    return body;
  }

  private issue(methods: string[], scoped: boolean, expiresAt?: number): EmuAnswer {
    const now = this.now();
    const t: IssuedToken = { issuedAt: now, expiresAt: expiresAt ?? now + this.options.tokenTtlMs, methods, scoped };
    const value = `gAAAAA${randomBytes(48).toString('base64url')}`;
    this.tokens.set(value, t);
    return { status: 201, body: { token: this.tokenBody(t) }, headers: { 'x-subject-token': value } };
  }

  private domainMatches(d: unknown): boolean {
    const dom = d as { id?: string; name?: string } | undefined;
    return !!dom && (dom.id === this.options.identity.domainId || dom.name === 'Default');
  }

  /** Whether the scope names the emulator's project (or is absent: undefined). */
  private scopeOk(scope: unknown): boolean | undefined {
    if (!scope || typeof scope !== 'object') return undefined;
    const project = (scope as { project?: { id?: string; name?: string; domain?: unknown } }).project;
    if (!project) return false; // domain and system scopes: this user has no role there
    if (project.id) return project.id === this.options.identity.projectId;
    return project.name === this.options.identity.projectName && this.domainMatches(project.domain);
  }

  private login(body: unknown): EmuAnswer {
    const auth = (body as { auth?: { identity?: Record<string, unknown>; scope?: unknown } } | undefined)?.auth;
    const identity = auth?.identity;
    const methods = Array.isArray(identity?.methods) ? (identity.methods as string[]) : [];
    if (!identity || methods.length === 0) return keystoneError(400, 'Bad Request', "Invalid input for field 'identity': 'methods' is a required property");
    const { credentials: c, identity: id } = this.options;
    const scope = this.scopeOk(auth?.scope);
    if (scope === false) return UNAUTHORIZED;
    if (methods[0] === 'password') {
      const user = (identity.password as { user?: { id?: string; name?: string; domain?: unknown; password?: string } } | undefined)?.user;
      const who = user && (user.id ? user.id === id.userId : user.name === c.username && this.domainMatches(user.domain));
      if (!who || user.password !== c.password) return UNAUTHORIZED;
      return this.issue(['password'], scope === true);
    }
    if (methods[0] === 'application_credential') {
      const cred = identity.application_credential as { id?: string; name?: string; secret?: string; user?: { id?: string; name?: string; domain?: unknown } } | undefined;
      const which = cred && (cred.id ? cred.id === c.applicationCredentialId : cred.name === c.applicationCredentialName && (cred.user?.id === id.userId || (cred.user?.name === c.username && this.domainMatches(cred.user?.domain))));
      if (!which || cred.secret !== c.applicationCredentialSecret) return UNAUTHORIZED;
      if (auth?.scope) return keystoneError(401, 'Unauthorized', 'Application credentials cannot request a scope.');
      return this.issue(['application_credential'], true);
    }
    if (methods[0] === 'token') {
      const given = (identity.token as { id?: string } | undefined)?.id;
      const t = given ? this.tokens.get(given) : undefined;
      if (!t || t.expiresAt <= this.now()) return keystoneError(404, 'Not Found', `Could not find token: ${given ?? ''}.`);
      return this.issue([...new Set([...t.methods, 'token'])], scope ?? t.scoped, t.expiresAt);
    }
    return keystoneError(401, 'Unauthorized', `Attempted to authenticate with an unsupported method.`);
  }

  /**
   * Answers a call under `/identity` (segments after it: `[]`, `['v3']`, `['v3', 'auth', 'tokens']`).
   *
   * @example
   *   keystone.handle({ method: 'GET', segments: [], query, body: undefined, headers: {} }).status; // 300
   */
  handle(req: EmuRequest): EmuAnswer {
    const path = req.segments.join('/');
    if (req.method === 'GET' && path === '') return { status: 300, body: { versions: { values: [this.versionDoc()] } } };
    if (req.method === 'GET' && path === 'v3') return { body: { version: this.versionDoc() } };
    if (path === 'v3/auth/tokens' && req.method === 'POST') return this.login(req.body);
    if (path === 'v3/auth/tokens' && req.method === 'GET') {
      if (!this.validToken(req.headers['x-auth-token'])) return UNAUTHORIZED;
      const subject = String(req.headers['x-subject-token'] ?? '');
      const t = this.tokens.get(subject);
      if (!t || t.expiresAt <= this.now()) return keystoneError(404, 'Not Found', `Could not find token: ${subject}.`);
      return { body: { token: this.tokenBody(t) }, headers: { 'x-subject-token': subject } };
    }
    if (path === 'v3/auth/catalog' && req.method === 'GET') {
      if (!this.validToken(req.headers['x-auth-token'])) return UNAUTHORIZED;
      return { body: { catalog: this.catalog(), links: { self: `${this.options.baseUrl}${SERVICE_PATHS.identity}/auth/catalog` } } };
    }
    return keystoneError(404, 'Not Found', 'The resource could not be found.');
  }
}

