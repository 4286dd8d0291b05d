/**
 * The GCE emulator's HTTP server (node:http): the Compute API under `/compute/v1/projects/…`,
 * the OAuth token endpoint at `/token` (token.ts), the state at EMULATOR_STATE_PATH (never
 * faulted). Every Compute call needs a bearer token the emulator issued (401 otherwise), and
 * may draw a fault (../../emulation/faults.ts), answered as Google answers it: a 429
 * `rateLimitExceeded` with Retry-After, a 503 `backendError`, or done and then answered 503
 * (a lost answer), or answered late.
 *
 * @example
 *   const server = await serveGce({ state, oauth, instances, ops, faults, backend, host, port });
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EMULATOR_STATE_PATH, type EmulatedResource, type Faults } from '../../emulation/faults.js';
import type { HostBackend } from '../../emulation/hosts.js';
import type { EmulatedInstances } from './instances.js';
import type { Operations } from './operations.js';
import { IMAGES, MACHINE_TYPES, ZONES, type GceState } from './state.js';
import type { EmulatedOAuth } from './token.js';
import { googleErrorAnswer, notFound, page, UNAUTHENTICATED, type GceAnswer } from './wire.js';

/** The Compute API's path prefix. */
export const API_PREFIX = '/compute/v1';

/** What the server routes to. */
export interface GceServerParts {
  state: () => GceState;
  oauth: () => EmulatedOAuth;
  instances: () => EmulatedInstances;
  ops: () => Operations;
  faults: Faults;
  backend: HostBackend;
  resources: () => EmulatedResource[];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, a: GceAnswer): void {
  const status = a.status ?? 200;
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...a.headers });
  res.end(a.body === undefined ? '' : JSON.stringify(a.body));
}

/**
 * Starts listening; the server and its base URL.
 *
 * @example
 *   const { url, close } = await serveGce(parts, '127.0.0.1', 0);
 */
export async function serveGce(parts: GceServerParts, host: string, port: number): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://emulator');
      const text = await readBody(req);
      if (u.pathname === EMULATOR_STATE_PATH) return send(res, { body: { resources: parts.resources() } });
      const fault = parts.faults.next();
      if (fault === 'throttle') return send(res, googleErrorAnswer(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': String(parts.faults.spec.retryAfterSeconds) }));
      if (fault === 'error') return send(res, googleErrorAnswer(503, 'backendError', 'Backend Error'));
      if (fault === 'slow') await new Promise((r) => setTimeout(r, parts.faults.spec.slowMs));
      const answer = await route(parts, req, u, text);
      send(res, fault === 'lost' ? googleErrorAnswer(503, 'backendError', 'Backend Error') : answer);
    })().catch((e: unknown) => send(res, googleErrorAnswer(500, 'internalError', `Internal error in the emulator: ${e instanceof Error ? e.message : String(e)}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function route(parts: GceServerParts, req: IncomingMessage, u: URL, text: string): Promise<GceAnswer> {
  const method = req.method ?? 'GET';
  if (u.pathname === '/token' && method === 'POST') return parts.oauth().token(new URLSearchParams(text));
  if (!u.pathname.startsWith(`${API_PREFIX}/projects/`)) return notFound(u.pathname);
  if (!parts.oauth().valid(req.headers.authorization)) return UNAUTHENTICATED;
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    return googleErrorAnswer(400, 'parseError', 'Parse Error');
  }
  const [project, ...segs] = u.pathname.slice(`${API_PREFIX}/projects/`.length).split('/').filter(Boolean).map(decodeURIComponent);
  const state = parts.state();
  const q = u.searchParams;
  if (project && IMAGES[project] && project !== state.project) return imageProject(state, project, segs, q);
  if (project !== state.project) return notFound(`projects/${project}`);
  const [a, b, c, d, ...rest] = segs;
  if (!a) return method === 'GET' ? { body: state.projectJson() } : notFound(`projects/${project}`);
  if (a === 'zones') {
    if (!b) return { body: page(Object.keys(ZONES).map((z) => state.zoneJson(z)), q, 'compute#zoneList', `${state.projectLink}/zones`) };
    if (!ZONES[b]) return notFound(`projects/${project}/zones/${b}`);
    if (!c) return { body: state.zoneJson(b) };
    if (c === 'machineTypes') {
      if (!d) return { body: page(Object.keys(MACHINE_TYPES).map((t) => state.machineTypeJson(b, t)), q, 'compute#machineTypeList', `${state.zoneLink(b)}/machineTypes`) };
      return MACHINE_TYPES[d] ? { body: state.machineTypeJson(b, d) } : notFound(`projects/${project}/zones/${b}/machineTypes/${d}`);
    }
    if (c === 'instances') return parts.instances().handle({ method, zone: b, rest: d ? [d, ...rest] : [], query: q, body });
    if (c === 'operations' && d) return operation(parts, `projects/${project}/zones/${b}/operations/${d}`, d, rest[0] === 'wait');
    return notFound(`projects/${project}/zones/${b}/${c}`);
  }
  if (a === 'global') {
    if (b === 'operations' && c) return operation(parts, `projects/${project}/global/operations/${c}`, c, d === 'wait');
    if (b === 'images') return c ? notFound(`projects/${project}/global/images/${[c, d].filter(Boolean).join('/')}`) : { body: page([], q, 'compute#imageList', `${state.projectLink}/global/images`) };
    if (b === 'networks') {
      if (!c) return { body: page([state.networkJson()], q, 'compute#networkList', `${state.projectLink}/global/networks`) };
      return c === 'default' ? { body: state.networkJson() } : notFound(`projects/${project}/global/networks/${c}`);
    }
    if (b === 'firewalls') return firewalls(parts, method, c, body, q);
  }
  if (a === 'regions' && b && c === 'subnetworks') {
    if (!Object.values(ZONES).includes(b)) return notFound(`projects/${project}/regions/${b}`);
    const sub = state.subnetworkJson(b, parts.backend.privatePrefix);
    if (!d) return { body: page([sub], q, 'compute#subnetworkList', `${state.projectLink}/regions/${b}/subnetworks`) };
    return d === 'default' ? { body: sub } : notFound(`projects/${project}/regions/${b}/subnetworks/${d}`);
  }
  return notFound(u.pathname.slice(`${API_PREFIX}/`.length));
}

function imageProject(state: GceState, project: string, segs: string[], q: URLSearchParams): GceAnswer {
  const images = IMAGES[project]!;
  if (segs[0] !== 'global' || segs[1] !== 'images') return googleErrorAnswer(403, 'forbidden', `Required 'compute.projects.get' permission for 'projects/${project}'`);
  const [, , name, family] = segs;
  if (!name) return { body: page(Object.keys(images).map((n) => state.imageJson(project, n)), q, 'compute#imageList', `${state.base}/projects/${project}/global/images`) };
  if (name === 'family' && family) {
    const newest = Object.keys(images).filter((n) => images[n]!.family === family && !images[n]!.deprecated).sort().pop();
    return newest ? { body: state.imageJson(project, newest) } : notFound(`projects/${project}/global/images/family/${family}`);
  }
  return images[name] ? { body: state.imageJson(project, name) } : notFound(`projects/${project}/global/images/${name}`);
}

async function operation(parts: GceServerParts, path: string, name: string, wait: boolean): Promise<GceAnswer> {
  const op = parts.state().operations.get(name);
  if (!op) return notFound(path);
  return { body: { ...(wait ? await parts.ops().wait(op) : op) } };
}

function firewalls(parts: GceServerParts, method: string, name: string | undefined, body: unknown, q: URLSearchParams): GceAnswer {
  const state = parts.state();
  const link = `${state.projectLink}/global/firewalls`;
  if (!name && method === 'GET') return { body: page([...state.firewalls.values()], q, 'compute#firewallList', link) };
  if (!name && method === 'POST') {
    const again = parts.ops().repeated(q.get('requestId'));
    if (again) return { body: { ...again } };
    const b = (body ?? {}) as Record<string, unknown>;
    const fwName = String(b.name ?? '');
    if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(fwName)) return googleErrorAnswer(400, 'invalid', `Invalid value for field 'resource.name': '${fwName}'.`);
    if (state.firewalls.has(fwName)) return googleErrorAnswer(409, 'alreadyExists', `The resource 'projects/${state.project}/global/firewalls/${fwName}' already exists`);
    if (String(b.network ?? 'default').split('/').pop() !== 'default') return notFound(`projects/${state.project}/global/networks/${String(b.network).split('/').pop()}`);
    const rule = { kind: 'compute#firewall', id: String(7000 + state.firewalls.size), creationTimestamp: new Date().toISOString(), priority: 1000, direction: 'INGRESS', disabled: false, logConfig: { enable: false }, ...b, network: `${state.projectLink}/global/networks/default`, selfLink: `${link}/${fwName}` };
    return { body: parts.ops().start('insert', `${link}/${fwName}`, undefined, q.get('requestId'), async () => void state.firewalls.set(fwName, rule)) };
  }
  const rule = name ? state.firewalls.get(name) : undefined;
  if (!rule) return notFound(`projects/${state.project}/global/firewalls/${name ?? ''}`);
  if (method === 'GET') return { body: rule };
  if (method === 'DELETE') return { body: parts.ops().start('delete', `${link}/${name}`, undefined, q.get('requestId'), async () => void state.firewalls.delete(name!)) };
  // firewalls.patch: the fields sent replace the rule's (name and network stay).
  if (method === 'PATCH') {
    const { name: _n, network: _w, ...fields } = (body ?? {}) as Record<string, unknown>;
    return { body: parts.ops().start('patch', `${link}/${name}`, undefined, q.get('requestId'), async () => void Object.assign(rule, fields)) };
  }
  return googleErrorAnswer(405, 'methodNotAllowed', `Method ${method} not allowed`);
}
