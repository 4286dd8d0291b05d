/**
 * The emulator's HTTP server (node:http): one port, one path prefix per service
 * (`/identity`, `/compute`, `/network`, `/image`), each answering as the real service does
 * (keystone.ts, nova.ts, neutron.ts, glance.ts) over one in-memory state (state.ts) seeded
 * from a scenario (scenarios.ts), its instances made by a host backend (backend.ts). Every
 * call but the version documents and the login needs a valid `X-Auth-Token`.
 *
 * @example
 *   const emu = await startEmulator({ scenario: scenarioNamed('floating-ip-required'), backend: new MemoryBackend() });
 *   const client = createOpenStackClient({ auth: emu.passwordAuth(), region: emu.region });
 *   await emu.close();
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApplicationCredentialAuth, PasswordAuth } from '../client/keystone.js';
import { Faults, type Fault, type FaultSpec } from '../../emulation/faults.js';
import type { HostBackend } from '../../emulation/hosts.js';
import { handleGlance } from './glance.js';
import { Keystone, SERVICE_PATHS, type Credentials } from './keystone.js';
import { handleNeutron } from './neutron.js';
import { Nova } from './nova.js';
import type { Scenario } from './scenarios.js';
import { EmulatorState, type Identity } from './state.js';
import { novaError, UNAUTHORIZED, type EmuAnswer, type EmuRequest } from './wire.js';

/** How to start an emulator. */
export interface EmulatorOptions {
  scenario: Scenario;
  backend: HostBackend;
  /** Where to listen (default 127.0.0.1, a free port). */
  host?: string;
  port?: number;
  /** Token lifetime (default one hour). */
  tokenTtlMs?: number;
  /** Fixed secrets (default: random ones). */
  credentials?: Partial<Credentials>;
  now?: () => number;
  /** Faults to inject on compute, network and image calls, and on servers (never on Keystone). */
  faults?: FaultSpec;
}

/** A running emulator. */
export interface Emulator {
  url: string;
  region: string;
  scenario: Scenario;
  state: EmulatorState;
  faults: Faults;
  keystone: Keystone;
  nova: Nova;
  credentials: Credentials;
  /** The Keystone v3 URL (`auth_url`). */
  authUrl: string;
  /** Password auth for our client. */
  passwordAuth(): PasswordAuth;
  /** Application-credential auth for our client. */
  applicationCredentialAuth(): ApplicationCredentialAuth;
  /** Resolves when every build and deletion in flight has finished. */
  settled(): Promise<void>;
  /** Stops answering, waits for what is in flight, deletes every server (and so every host), then closes the backend. */
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, answer: EmuAnswer): void {
  const status = answer.status ?? 200;
  const headers: Record<string, string> = { 'x-openstack-request-id': `req-${randomUUID()}`, ...answer.headers };
  if (answer.text !== undefined) {
    res.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8', ...headers });
    res.end(answer.text);
  } else if (answer.body === undefined || status === 204) {
    res.writeHead(status, headers);
    res.end();
  } else {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(answer.body));
  }
}

/**
 * A call with the fault the spec draws for it: refused for the rate limit (429 with
 * Retry-After; Nova's `overLimit` body), failed with a 503 before anything is done, done and
 * then answered with a 500 (a lost answer), or answered late.
 */
async function faulted(faults: Faults, service: string, handle: () => Promise<EmuAnswer>): Promise<EmuAnswer> {
  const fault: Fault | undefined = faults.next();
  const retryAfter = String(faults.spec.retryAfterSeconds);
  if (fault === 'throttle') {
    return service === 'compute'
      ? { status: 429, headers: { 'retry-after': retryAfter }, body: { overLimit: { code: 429, message: 'This request was rate-limited.', retryAfter } } }
      : { status: 429, headers: { 'retry-after': retryAfter }, text: '429 Too Many Requests\n\nToo many requests, please slow down.\n' };
  }
  if (fault === 'error') return { status: 503, text: '503 Service Unavailable\n\nThe server is currently unavailable. Please try again at a later time.\n' };
  if (fault === 'slow') await new Promise((r) => setTimeout(r, faults.spec.slowMs));
  const answer = await handle();
  if (fault === 'lost') return { status: 500, text: '500 Internal Server Error\n\nThe server has either erred or is incapable of performing the requested operation.\n' };
  return answer;
}

/**
 * Starts an emulator (see the file's comment).
 *
 * @example
 *   const emu = await startEmulator({ scenario: scenarioNamed('late-error'), backend, port: 5000 });
 */
export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  const credentials: Credentials = {
    username: 'demo',
    password: randomBytes(12).toString('base64url'),
    applicationCredentialId: randomBytes(16).toString('hex'),
    applicationCredentialName: 'formwork',
    applicationCredentialSecret: randomBytes(24).toString('base64url'),
    ...options.credentials,
  };
  const identity: Identity = { projectId: randomBytes(16).toString('hex'), adminProjectId: randomBytes(16).toString('hex'), projectName: 'demo', userId: randomBytes(16).toString('hex'), username: credentials.username, domainId: 'default' };
  const faults = new Faults(options.faults);
  const state = new EmulatorState(options.scenario, options.backend, identity, faults);
  let keystone: Keystone | undefined;
  let nova: Nova | undefined;
  let url = '';
  const server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://emulator');
      const [service, ...segments] = u.pathname.split('/').filter(Boolean);
      const text = await readBody(req);
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        return send(res, novaError(400, 'badRequest', 'Malformed request body'));
      }
      const request: EmuRequest = { method: req.method ?? 'GET', segments, query: u.searchParams, body, headers: req.headers };
      if (!keystone || !nova) return send(res, { status: 503 });
      if (service === 'identity') return send(res, keystone.handle(request));
      const discovery = request.method === 'GET' && segments.length === 0;
      if (!discovery && !keystone.validToken(req.headers['x-auth-token'])) return send(res, UNAUTHORIZED);
      const n = nova;
      if (service === 'compute') return send(res, await faulted(faults, service, () => n.handle(request)));
      if (service === 'network') return send(res, await faulted(faults, service, () => handleNeutron(state, request, url)));
      if (service === 'image') return send(res, await faulted(faults, service, async () => handleGlance(state, request, url)));
      return send(res, { status: 404, text: '404 Not Found\n\nThe resource could not be found.\n' });
    })().catch((e: unknown) => send(res, novaError(500, 'computeFault', `Unexpected error in the emulator: ${e instanceof Error ? e.message : String(e)}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  keystone = new Keystone({ identity, credentials, baseUrl: url, region: options.scenario.region, tokenTtlMs: options.tokenTtlMs ?? 3600_000, now: options.now });
  nova = new Nova(state, url);
  const authUrl = `${url}${SERVICE_PATHS.identity}`;
  const builds = nova.builds;
  return {
    url,
    region: options.scenario.region,
    scenario: options.scenario,
    state,
    faults,
    keystone,
    nova,
    credentials,
    authUrl,
    passwordAuth: () => ({ method: 'password', authUrl, username: credentials.username, password: credentials.password, userDomainName: 'Default', projectName: identity.projectName, projectDomainName: 'Default' }),
    applicationCredentialAuth: () => ({ method: 'application_credential', authUrl, applicationCredentialId: credentials.applicationCredentialId, applicationCredentialSecret: credentials.applicationCredentialSecret }),
    settled: () => builds.settled(),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await builds.settled();
      for (const rec of [...state.servers.values()]) builds.delete(rec);
      await builds.settled();
      await options.backend.close();
    },
  };
}
