/**
 * A small OpenStack for unit tests: an HTTP server on 127.0.0.1:0 that answers Keystone
 * and the version documents from the recorded fixtures (testing/fixtures: libcloud's
 * `_v3__auth.json` token and catalog, openstacksdk's discovery documents), with the
 * catalog's hosts rewritten to itself (`http://192.168.18.100:8774/v2/…` →
 * `<url>/8774/v2/…`). Tests add the routes they need with `on`, and read what was sent in
 * `requests`. It accepts the password `secret-pw`, the application credential secret
 * `app-secret` and the tokens it issued.
 *
 * @example
 *   const cloud = await startFakeCloud();
 *   cloud.on('GET', '/8774/v2.1/servers/s1', () => ({ body: { server: { id: 's1' } } }));
 *   const client = createOpenStackClient({ auth: cloud.passwordAuth() });
 *   await cloud.close();
 */
import { createServer, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { PasswordAuth } from '../client/keystone.js';

/**
 * The recorded responses the tests serve, copied into the repository (testing/fixtures/README.md).
 *
 * @example
 *   fixture('openstacksdk/unit-fixtures/discovery.json');
 */
export const FIXTURES = join(import.meta.dirname, 'fixtures');

/**
 * A fixture file, parsed.
 *
 * @example
 *   fixture('libcloud/openstack_v1.1/_v2_0__networks.json');
 */
export function fixture<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')) as T;
}

/** A request the fake cloud received. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** What a route answers (status 200 and no headers by default). */
export interface FakeAnswer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A route's handler. */
export type FakeHandler = (req: RecordedRequest) => FakeAnswer;

/** A running fake cloud. */
export interface FakeCloud {
  url: string;
  requests: RecordedRequest[];
  /** Answers `METHOD path` (path without query). Later routes replace earlier ones. */
  on(method: string, path: string, handler: FakeHandler): void;
  /** Answers `METHOD` on paths matching `pattern` that no exact route answers (first match wins); the handler gets the match. */
  onPattern(method: string, pattern: RegExp, handler: (req: RecordedRequest, match: RegExpExecArray) => FakeAnswer): void;
  /** Tokens issued so far stop being accepted (their calls get a 401). */
  revokeTokens(): void;
  /** How long issued tokens live (ms; default one hour). */
  tokenTtlMs: number;
  /** Password auth for this cloud, as a test's session wants it. */
  passwordAuth(overrides?: Partial<PasswordAuth>): PasswordAuth;
  close(): Promise<void>;
}

const HOSTS = /https?:\/\/(?:192\.168\.18\.100|192\.168\.200\.1|controller|[a-z]+\.example\.com|localhost)(?::(\d+))?/g;

function rewrite(doc: unknown, base: string, port: string): unknown {
  return JSON.parse(JSON.stringify(doc).replace(HOSTS, (_m, p: string | undefined) => `${base}/${p ?? port}`));
}

const UNAUTHORIZED = { status: 401, body: { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } } };

/**
 * Starts a fake cloud.
 *
 * @example
 *   const cloud = await startFakeCloud(); // cloud.url === 'http://127.0.0.1:<port>'
 */
export async function startFakeCloud(): Promise<FakeCloud> {
  const routes = new Map<string, FakeHandler>();
  const patterns: Array<{ method: string; pattern: RegExp; handler: (req: RecordedRequest, match: RegExpExecArray) => FakeAnswer }> = [];
  const byPattern = (req: RecordedRequest): FakeHandler | undefined => {
    for (const p of patterns) {
      const m = p.method === req.method ? p.pattern.exec(req.path) : null;
      if (m) return (r) => p.handler(r, m);
    }
    return undefined;
  };
  const valid = new Set<string>();
  let issued = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: u.pathname.replace(/\/+$/, '') || '/', query: u.searchParams, headers: req.headers, body: text ? JSON.parse(text) : undefined };
      cloud.requests.push(recorded);
      const handler = routes.get(`${recorded.method} ${recorded.path}`) ?? byPattern(recorded);
      const isDiscovery = recorded.method === 'GET' && /^\/\d+$/.test(recorded.path);
      const isAuth = recorded.path === '/5000/v3/auth/tokens';
      let answer: FakeAnswer;
      if (!isDiscovery && !isAuth && !valid.has(String(req.headers['x-auth-token']))) answer = UNAUTHORIZED;
      else answer = handler ? handler(recorded) : { status: 404, body: { itemNotFound: { message: 'The resource could not be found.', code: 404 } } };
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cloud: FakeCloud = {
    url,
    requests: [],
    tokenTtlMs: 3600_000,
    on: (method, path, handler) => void routes.set(`${method} ${path}`, handler),
    onPattern: (method, pattern, handler) => void patterns.push({ method, pattern, handler }),
    revokeTokens: () => valid.clear(),
    passwordAuth: (o = {}) => ({ method: 'password', authUrl: `${url}/5000`, username: 'admin', userDomainName: 'Default', password: 'secret-pw', projectName: 'admin', projectDomainName: 'Default', ...o }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const token = fixture<{ token: Record<string, unknown> }>('libcloud/openstack/_v3__auth.json');
  routes.set('GET /5000', () => ({ status: 300, body: rewrite(fixture('openstacksdk/unit-fixtures/discovery.json'), url, '5000') }));
  routes.set('GET /8774', () => ({ body: rewrite(fixture('openstacksdk/unit-fixtures/compute-version.json'), url, '8774') }));
  routes.set('GET /9292', () => ({ body: rewrite(fixture('openstacksdk/unit-fixtures/image-version.json'), url, '9292') }));
  routes.set('GET /9696', () => ({ body: { versions: [{ status: 'CURRENT', id: 'v2.0', links: [{ href: `${url}/9696/v2.0/`, rel: 'self' }] }] } }));
  routes.set('POST /5000/v3/auth/tokens', (req) => {
    const identity = (req.body as { auth: { identity: Record<string, Record<string, unknown>> } }).auth.identity;
    const ok =
      (identity.password && (identity.password.user as { password?: string }).password === 'secret-pw') ||
      (identity.application_credential && identity.application_credential.secret === 'app-secret') ||
      (identity.token && valid.has(String(identity.token.id)));
    if (!ok) return UNAUTHORIZED;
    const value = `tok-${++issued}`;
    valid.add(value);
    const body = rewrite({ token: { ...token.token, expires_at: new Date(Date.now() + cloud.tokenTtlMs).toISOString() } }, url, '5000');
    return { status: 201, body, headers: { 'x-subject-token': value } };
  });
  return cloud;
}
