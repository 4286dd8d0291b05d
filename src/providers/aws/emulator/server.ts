/**
 * The AWS emulator's HTTP server: the EC2 Query API on one port (POST form-encoded, or GET
 * with the query string), each call made by the caller the emulator knows — the access key id
 * and region of the SigV4 `Authorization` header's credential scope must be its own — and
 * each answered, or faulted, in EC2's own way: a throttle is 503 `RequestLimitExceeded`
 * (with a Retry-After), an error 500 `InternalError` or 503 `Unavailable`, a lost answer is
 * the call done then a 500, a slow one is answered late. `EMULATOR_STATE_PATH` answers the
 * whole state, never faulted.
 *
 * @example
 *   const emu = await startAwsEmulator({ backend: new MemoryBackend(), bootDelayMs: 0 });
 *   new EC2Client({ endpoint: emu.endpoint, region: 'us-east-1', credentials: emu.credentials });
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EMULATOR_STATE_PATH, type Fault, type Faults } from '../../emulation/faults.js';
import { INSTANCE_ACTIONS, type Ec2Action } from './instances.js';
import { RESOURCE_ACTIONS } from './resources.js';
import type { Ec2State } from './state.js';
import { Ec2Error, QueryParams, type Ec2Answer } from './wire.js';

const ACTIONS: Record<string, Ec2Action> = { ...INSTANCE_ACTIONS, ...RESOURCE_ACTIONS };

/** The credentials the emulator accepts. @example const c: EmulatorCredentials = { accessKeyId: 'AKIA…', secretAccessKey: '…' }; */
export interface EmulatorCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What the server serves. @example await serveEc2({ state, faults, credentials, region: 'us-east-1', port: 0 }); */
export interface ServerOptions {
  state: Ec2State;
  faults: Faults;
  credentials: EmulatorCredentials;
  region: string;
  host?: string;
  port?: number;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, a: Ec2Answer): void {
  res.writeHead(a.status, { 'content-type': 'text/xml;charset=UTF-8', ...a.headers });
  res.end(a.body);
}

/** The caller, from the SigV4 credential scope: refused unless it is the emulator's key and region. */
function checkCaller(req: IncomingMessage, o: ServerOptions): void {
  const auth = String(req.headers.authorization ?? '');
  const m = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  if (!m) throw new Ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
  if (m[1] !== o.credentials.accessKeyId) throw new Ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
  if (m[3] !== o.region) throw new Ec2Error(401, 'AuthFailure', `Credential should be scoped to a valid region, not '${m[3]}'. `);
  if (m[4] !== 'ec2') throw new Ec2Error(401, 'AuthFailure', `Credential should be scoped to correct service: 'ec2'.`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Serves the EC2 Query API over `state`; resolves once listening.
 *
 * @example
 *   const { url, close } = await serveEc2({ state, faults, credentials, region: 'us-east-1' });
 */
export async function serveEc2(o: ServerOptions): Promise<{ url: string; close: () => Promise<void>; failNext: (action: string, fault: Fault, times?: number) => void }> {
  let errorTurn = 0;
  const scripted = new Map<string, Fault[]>();
  const server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://emulator');
      if (u.pathname === EMULATOR_STATE_PATH) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ resources: o.state.resources(), faults: o.faults.injected }));
      }
      const body = req.method === 'POST' ? await readBody(req) : u.search.slice(1);
      const q = new QueryParams(body);
      try {
        checkCaller(req, o);
        const action = q.get('Action') ?? '';
        const handler = ACTIONS[action];
        if (!handler) throw new Ec2Error(400, 'InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
        const fault = scripted.get(action)?.shift() ?? o.faults.next();
        if (fault === 'throttle') throw new Ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.', { 'Retry-After': String(o.faults.spec.retryAfterSeconds) });
        if (fault === 'error') throw errorTurn++ % 2 ? new Ec2Error(503, 'Unavailable', 'The service is unavailable. Please try again shortly.') : new Ec2Error(500, 'InternalError', 'An internal error has occurred');
        if (fault === 'slow') await sleep(o.faults.spec.slowMs);
        const answer = await handler(o.state, q);
        if (fault === 'lost') throw new Ec2Error(500, 'InternalError', 'An internal error has occurred');
        send(res, answer);
      } catch (e) {
        if (e instanceof Ec2Error) return send(res, e.answer());
        send(res, new Ec2Error(500, 'InternalError', `An internal error has occurred (${e instanceof Error ? e.message : String(e)})`).answer());
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    url,
    failNext: (action, fault, times = 1) => scripted.set(action, [...(scripted.get(action) ?? []), ...Array.from({ length: times }, () => fault)]),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
