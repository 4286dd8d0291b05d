/**
 * The Equinix Metal emulator's HTTP server (node:http): the API's paths under `/metal/v1`,
 * its JSON in the recorded shapes, `X-Auth-Token` checked on every call (401
 * `{"errors":["Invalid authentication token"]}`), paging by `page`/`per_page` with Metal's
 * `meta` (default 10 a page, as Metal), and faults answered as Metal answers them: a 429
 * with `Retry-After`, a 500 or 503, a call done and then answered 500 (lost), a late answer.
 * The state path (EMULATOR_STATE_PATH) is never faulted and needs no token.
 *
 * Paths: GET /projects, /projects/{id}; GET|POST /projects/{id}/ssh-keys; GET|DELETE
 * /ssh-keys/{id}; GET|POST /projects/{id}/devices; GET|DELETE /devices/{id}; GET /plans,
 * /projects/{id}/plans, /operating-systems, /metros, /locations/metros.
 *
 * @example
 *   const server = await serveMetal({ state, faults, token: 'tok' });
 *   await fetch(`${server.endpoint}/projects`, { headers: { 'X-Auth-Token': 'tok' } });
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EMULATOR_STATE_PATH, type EmulatedResource, type Faults } from '../../emulation/faults.js';
import { parseTags } from '../tags.js';
import { EMULATED_METROS, EMULATED_OS, EMULATED_PLANS } from './catalog.js';
import { MetalRefusal, type MetalState } from './state.js';

/** The API's path prefix, as on api.equinix.com. */
export const API_PREFIX = '/metal/v1';

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const errors = (status: number, ...messages: string[]): Answer => ({ status, body: { errors: messages } });
const NOT_FOUND = errors(404, 'Not found');

/** A running server. */
export interface MetalServer {
  /** The base URL (`http://127.0.0.1:PORT/metal/v1`). */
  endpoint: string;
  close(): Promise<void>;
}

/** What the server serves. */
export interface ServeOptions {
  state: MetalState;
  faults: Faults;
  token: string;
  host?: string;
  port?: number;
}

/**
 * What the emulator holds, as a leak check wants it.
 *
 * @example
 *   resourcesOf(state).filter((r) => r.kind === 'instance');
 */
export function resourcesOf(state: MetalState): EmulatedResource[] {
  return [
    ...[...state.devices.values()].map(({ device: d }) => ({ kind: 'instance', id: d.id, tags: parseTags(d.tags), status: d.state })),
    ...[...state.keys.values()].map((k) => ({ kind: 'ssh-key', id: k.id, tags: {}, status: k.label })),
  ];
}

/** One page of a collection with Metal's `meta`. */
function page<T>(items: T[], key: string, path: string, query: URLSearchParams): Answer {
  const perPage = Math.min(1000, Math.max(1, Number(query.get('per_page') ?? 10) || 10));
  const total = items.length;
  const lastPage = Math.max(1, Math.ceil(total / perPage));
  const current = Math.min(Math.max(1, Number(query.get('page') ?? 1) || 1), lastPage);
  const href = (n: number) => ({ href: `${API_PREFIX}${path}?page=${n}&per_page=${perPage}` });
  return {
    status: 200,
    body: {
      [key]: items.slice((current - 1) * perPage, current * perPage),
      meta: { first: href(1), previous: current > 1 ? href(current - 1) : null, self: href(current), next: current < lastPage ? href(current + 1) : null, last: href(lastPage), current_page: current, last_page: lastPage, total },
    },
  };
}

async function route(state: MetalState, method: string, segments: string[], query: URLSearchParams, body: unknown): Promise<Answer> {
  const [a, b, c] = segments;
  const path = `/${segments.join('/')}`;
  const project = () => {
    if (b !== state.projectId) throw new MetalRefusal(404, 'Not found');
  };
  const publicKey = (k: { project: string }) => Object.fromEntries(Object.entries(k).filter(([key]) => key !== 'project'));
  if (method === 'GET' && path === '/projects') return page([{ id: state.projectId, name: state.projectName, href: `/projects/${state.projectId}` }], 'projects', path, query);
  if (a === 'projects' && b && !c && method === 'GET') {
    project();
    return { status: 200, body: { id: state.projectId, name: state.projectName, href: `/projects/${state.projectId}`, created_at: '2026-01-01T00:00:00Z', customdata: {}, devices: [], ssh_keys: [] } };
  }
  if (a === 'projects' && c === 'ssh-keys' && segments.length === 3) {
    project();
    if (method === 'GET') return { status: 200, body: { ssh_keys: [...state.keys.values()].map(publicKey) } };
    if (method === 'POST') return { status: 201, body: publicKey(state.addKey((body ?? {}) as Record<string, unknown>)) };
  }
  if (a === 'ssh-keys' && b && segments.length === 2) {
    const k = state.keys.get(b);
    if (!k) return NOT_FOUND;
    if (method === 'GET') return { status: 200, body: publicKey(k) };
    if (method === 'DELETE') {
      state.keys.delete(b);
      return { status: 204 };
    }
  }
  if (a === 'projects' && c === 'devices' && segments.length === 3) {
    project();
    if (method === 'GET') return page([...state.devices.values()].map((r) => r.device), 'devices', path, query);
    if (method === 'POST') return { status: 201, body: await state.createDevice((body ?? {}) as Record<string, unknown>) };
  }
  if (a === 'devices' && b && segments.length === 2) {
    if (state.forbiddenDevices.has(b)) return errors(403, 'You are not authorized to view this device');
    const rec = state.devices.get(b);
    if (!rec) return NOT_FOUND;
    if (method === 'GET') return { status: 200, body: rec.device };
    if (method === 'DELETE') {
      // As Metal (redhat-cop/agnosticd#4307); a never-boot device stands for a build outlasting
      // every wait, and stays deletable so that what made it can clean up.
      if ((rec.device.state === 'queued' || rec.device.state === 'provisioning') && !rec.neverBoot) return errors(422, 'Cannot delete a device while it is provisioning');
      state.deleteDevice(b);
      return { status: 204 };
    }
  }
  if (method === 'GET' && (path === '/plans' || (a === 'projects' && c === 'plans' && segments.length === 3))) {
    if (a === 'projects') project();
    return { status: 200, body: { plans: EMULATED_PLANS } };
  }
  if (method === 'GET' && path === '/operating-systems') return { status: 200, body: { operating_systems: EMULATED_OS.map(({ halfProvisioned: _h, ...os }) => os) } };
  if (method === 'GET' && (path === '/metros' || path === '/locations/metros')) return { status: 200, body: { metros: EMULATED_METROS } };
  return NOT_FOUND;
}

function send(res: ServerResponse, answer: Answer): void {
  const headers: Record<string, string> = { 'x-request-id': Math.random().toString(36).slice(2), ...answer.headers };
  if (answer.body === undefined || answer.status === 204) {
    res.writeHead(answer.status, headers);
    res.end();
    return;
  }
  res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(answer.body));
}

const sameToken = (given: unknown, token: string) => typeof given === 'string' && given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));

/**
 * Serves the API (see the file's comment).
 *
 * @example
 *   const { endpoint, close } = await serveMetal({ state, faults, token });
 */
export async function serveMetal(o: ServeOptions): Promise<MetalServer> {
  const handle = async (req: IncomingMessage): Promise<Answer> => {
    const u = new URL(req.url ?? '/', 'http://emulator');
    if (u.pathname === EMULATOR_STATE_PATH) return { status: 200, body: { resources: resourcesOf(o.state) } };
    if (!u.pathname.startsWith(`${API_PREFIX}/`)) return NOT_FOUND;
    if (!sameToken(req.headers['x-auth-token'], o.token)) return errors(401, 'Invalid authentication token');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return errors(422, 'Request body is not valid JSON');
    }
    const fault = o.faults.next();
    if (fault === 'throttle') return { ...errors(429, 'Rate limit exceeded: too many requests'), headers: { 'retry-after': String(o.faults.spec.retryAfterSeconds) } };
    if (fault === 'error') return errors(Math.random() < 0.5 ? 500 : 503, 'Something went wrong; please try again');
    if (fault === 'slow') await new Promise((r) => setTimeout(r, o.faults.spec.slowMs));
    const segments = u.pathname.slice(API_PREFIX.length).split('/').filter(Boolean).map(decodeURIComponent);
    let answer: Answer;
    try {
      answer = await route(o.state, req.method ?? 'GET', segments, u.searchParams, body);
    } catch (e) {
      if (!(e instanceof MetalRefusal)) throw e;
      answer = errors(e.status, e.message);
    }
    // Lost: done, then answered as if it failed.
    return fault === 'lost' ? errors(500, 'Internal server error') : answer;
  };
  const server = createServer((req, res) => {
    handle(req).then(
      (a) => send(res, a),
      (e: unknown) => send(res, errors(500, `emulator error: ${e instanceof Error ? e.message : String(e)}`)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const endpoint = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}${API_PREFIX}`;
  return {
    endpoint,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
