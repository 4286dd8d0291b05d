import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { FormworkError } from '../core/errors.js';
import { parseListen } from '../core/listen.js';

export { parseListen };
import type { Services } from '../context/services.js';
import { observeReentry } from '../store/guard.js';
import { Store } from '../store/store.js';
import { REDACT_PATHS } from '../api/logging.js';
import type { RoutePlugin } from '../api/routes/index.js';
import { applyDocuments } from '../services/apply.js';
import type { ApplyResult } from '../context/services.js';
import { assembleServices, type AssembleOptions } from './assemble.js';

/**
 * The Formwork server process: opens the store, bootstraps the admin token, serves the
 * API (HTTP or HTTPS), and leaves `server.json` in the data dir so a CLI on the same
 * machine finds it.
 *
 * The order of its start is chosen for `formwork up`, whose critical path it is: the
 * listen address is taken first (a port in use fails the start before anything else
 * happens, and it stays held until the moment the API listens on it); then the store, the engine and the
 * documents to apply at start (`apply`), so machines are already being made while the
 * HTTP layer loads; then the API, which answers once all of that is done.
 *
 * Files in the data dir:
 *  - `admin.token` (0600): a token of user `admin`, written on first start and rewritten
 *    only when it no longer authenticates (revoked, expired, new database);
 *  - `server.json`: `{url, pid, startedAt}` while the server runs (removed on close; a
 *    CLI should check that `pid` is alive, since a killed server cannot remove it).
 *
 * Roles (`role`), for API servers and engine workers on one PostgreSQL: `all` (default) is
 * both; `api` serves the API without an engine (it provisions nothing, so it needs no
 * driver credentials nor the platform key); `worker` runs the engine without an HTTP
 * listener (no address, no `server.json`, no admin token; its worker record is written by
 * the annealer, and it stops on SIGTERM/SIGINT like the others).
 *
 * @example
 *   const server = await startServer({ dataDir: '.formwork', listen: '127.0.0.1:7480' });
 *   console.log(server.url); // http://127.0.0.1:7480
 *   await server.close();
 */

export const DEFAULT_LISTEN = '127.0.0.1:7480';
export const ADMIN_TOKEN_FILE = 'admin.token';
export const SERVER_FILE = 'server.json';

/** What a server process runs: the API, the engine, or both. */
export type ServerRole = 'all' | 'api' | 'worker';
export const SERVER_ROLES: readonly ServerRole[] = ['all', 'api', 'worker'];

export interface ServerOptions {
  dataDir: string;
  /** Default `all`; see the module comment. */
  role?: ServerRole;
  /** HOST:PORT (IPv6 as [::1]:7480); default 127.0.0.1:7480; port 0 picks a free one. */
  listen?: string;
  /** PostgreSQL URL; default FORMWORK_DATABASE_URL, else SQLite in dataDir. */
  databaseUrl?: string;
  /** PEM files: serve HTTPS. */
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
  /** Write JSON log lines to this file instead of stdout. */
  logFile?: string;
  bodyLimit?: number;
  /** Close on SIGTERM/SIGINT and exit (default true). */
  handleSignals?: boolean;
  /** Extra route plugins (besides ROUTE_PLUGINS). */
  plugins?: RoutePlugin[];
  /**
   * Wire the engine, appliers and deleters (default true); `{engine: false}` serves the API
   * and marks deletions for workers elsewhere to carry out; `false` serves the store alone.
   */
  assemble?: boolean | AssembleOptions;
  /** Called with the services before the API is built (e.g. to attach the engine and appliers). */
  configure?: (services: Services) => Promise<void> | void;
  /**
   * Documents to apply as the server starts, before the API loads (as `POST /api/v1/apply`
   * would, as the admin): a bad one fails the start with nothing written.
   */
  apply?: Record<string, unknown>[];
}

export interface RunningServer {
  url: string;
  services: Services;
  app: FastifyInstance;
  /** What `apply` did, document by document. */
  applied: ApplyResult[];
  close(): Promise<void>;
}

/** A `worker`: the engine alone, with nothing to reach over HTTP. */
export type RunningWorker = Omit<RunningServer, 'url' | 'app'> & { url?: undefined; app?: undefined };


/** The URL a local client should use (a wildcard bind is reached on loopback). */
function clientUrl(scheme: string, host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

function writePrivateFile(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** Makes sure user `admin` exists and `admin.token` holds a token that authenticates. */
export async function ensureAdminToken(store: Store, dataDir: string): Promise<string> {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  await store.auth.ensureUser('admin', 'admin');
  if (fs.existsSync(file)) {
    const existing = fs.readFileSync(file, 'utf8').trim();
    try {
      const p = await store.auth.authenticate(existing);
      if (p.role === 'admin') {
        fs.chmodSync(file, 0o600);
        return existing;
      }
    } catch {
      // revoked, expired, or from another database: write a fresh one
    }
  }
  const { token } = await store.auth.createToken('admin', { description: 'bootstrap admin token (admin.token)', actor: 'system' });
  writePrivateFile(file, token + '\n');
  return token;
}

/**
 * When each step of the start ended, in ms since the process started (`performance.now()`):
 * logged with "formwork server listening", so a slow start shows where it went (bench:up
 * reads it to split `formwork up`'s start-up).
 */
export interface StartupTimings {
  /** The process's start, as an ISO time (`performance.timeOrigin`). */
  processStartedAt: string;
  /** startServer called: the runtime started and the server's code loaded. */
  called: number;
  address: number;
  store: number;
  /** Packs stored, the engine wired and started. */
  engine: number;
  /** The documents of `apply` written (the engine has been kicked). */
  applied: number;
  /** The HTTP layer loaded and listening. */
  listening: number;
}

export async function startServer(opts: ServerOptions & { role: 'worker' }): Promise<RunningWorker>;
export async function startServer(opts: ServerOptions & { role?: 'all' | 'api' }): Promise<RunningServer>;
export async function startServer(opts: ServerOptions): Promise<RunningServer | RunningWorker>;
export async function startServer(opts: ServerOptions): Promise<RunningServer | RunningWorker> {
  const called = performance.now();
  const role = opts.role ?? 'all';
  if (!SERVER_ROLES.includes(role)) throw new FormworkError('VALIDATION', `the server role must be one of ${SERVER_ROLES.join(', ')}, got ${JSON.stringify(role)}`);
  const serves = role !== 'worker';
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const { host, port } = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const https = opts.tlsCert || opts.tlsKey ? await readTls(opts.tlsCert, opts.tlsKey) : undefined;

  const destination = pino.destination({ dest: opts.logFile ?? 1, sync: true, mkdir: true, mode: 0o600 });
  const logger: Logger = pino({ level: opts.logLevel ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);

  // A defect, and the code that raised it may have caught it: logged wherever it happened.
  const stopObserving = observeReentry((err) => logger.error({ err }, 'TRANSACTION_REENTRY: a query left its transaction (a defect, please report it)'));
  const address = await (serves ? holdAddress(host, port) : noAddress()).catch((e: unknown) => {
    stopObserving();
    destination.end();
    throw e;
  });
  const addressAt = performance.now();
  const databaseUrl = opts.databaseUrl ?? (process.env.FORMWORK_DATABASE_URL || undefined);
  const store = await Store.open({ dataDir, databaseUrl }).catch(async (e: unknown) => {
    await address.release();
    stopObserving();
    destination.end();
    throw e;
  });
  const storeAt = performance.now();
  const services: Services = { store, dataDir, appliers: new Map() };
  let engineAt = 0;
  let appliedAt = 0;
  const serverFile = path.join(dataDir, SERVER_FILE);
  let app: FastifyInstance | undefined;
  let applied: ApplyResult[] = [];
  let url: string | undefined;
  try {
    if (serves) await ensureAdminToken(store, dataDir);
    if (opts.assemble !== false) {
      const assemble = typeof opts.assemble === 'object' ? opts.assemble : {};
      const engine = assemble.engine === false || role === 'api' ? false : { onError: (err: unknown, where: string) => logger.error({ err }, `engine: ${where}`), ...assemble.engine };
      await assembleServices(services, { log: (m) => logger.warn(m), ...assemble, engine });
    }
    await opts.configure?.(services);
    if (services.engine) await services.engine.start();
    engineAt = performance.now();
    if (opts.apply?.length) {
      applied = await applyDocuments(services, opts.apply, { actor: 'admin' });
      for (const r of applied) logger.info({ kind: r.kind, name: r.name, action: r.action }, 'applied at start');
    }
    appliedAt = performance.now();
    if (serves) {
      // Loaded only now: the HTTP layer is about half of the server's code.
      const { buildApi } = await import('../api/app.js');
      app = buildApi(services, { logger, bodyLimit: opts.bodyLimit, https, plugins: opts.plugins });
      await app.ready();
      await address.release();
      await app.listen({ host, port: address.port }).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'EADDRINUSE' ? addressInUse(host, port) : e;
      });
      url = clientUrl(https ? 'https' : 'http', host, (app.server.address() as AddressInfo).port);
      writePrivateFile(serverFile, JSON.stringify({ url, pid: process.pid, startedAt: new Date().toISOString(), store: store.dialect }, null, 2) + '\n');
    }
  } catch (e) {
    // Documents applied before a later failure stay applied, as through the API; the
    // engine stops (its runs go back to todo) and the next start carries on.
    await address.release();
    await app?.close().catch(() => undefined);
    await services.engine?.stop().catch(() => undefined);
    await store.close();
    logger.error({ err: e }, 'formwork server failed to start');
    stopObserving();
    destination.end();
    throw e;
  }
  const ms = (t: number) => Math.round(t * 10) / 10;
  const startup: StartupTimings = {
    processStartedAt: new Date(performance.timeOrigin).toISOString(),
    called: ms(called),
    address: ms(addressAt),
    store: ms(storeAt),
    engine: ms(engineAt),
    applied: ms(appliedAt),
    listening: ms(performance.now()),
  };
  if (serves) logger.info({ url, role, store: store.dialect, dataDir, startup }, 'formwork server listening');
  else logger.info({ role, store: store.dialect, dataDir, startup }, 'formwork worker running');

  let closing: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void close().then(
      () => process.exit(0),
      (e) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const handleSignals = opts.handleSignals ?? true;
  if (handleSignals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  const running = app;
  function close(): Promise<void> {
    closing ??= (async () => {
      if (handleSignals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      try {
        await running?.close();
        if (services.engine) await services.engine.stop();
      } finally {
        await store.close();
        try {
          const current = JSON.parse(fs.readFileSync(serverFile, 'utf8')) as { pid?: number };
          if (current.pid === process.pid) fs.rmSync(serverFile, { force: true });
        } catch {
          // already gone
        }
        stopObserving();
        logger.info(serves ? 'formwork server stopped' : 'formwork worker stopped');
        try {
          destination.flushSync();
        } catch {
          // nothing buffered
        }
      }
    })();
    return closing;
  }
  if (!running || url === undefined) return { services, applied, close };
  return { url, services, app: running, applied, close };
}

/** A worker's stand-in for `holdAddress`: it listens nowhere. */
async function noAddress(): Promise<{ port: number; release(): Promise<void> }> {
  return { port: 0, release: async () => undefined };
}

/**
 * Binds the listen address at once and holds it until the API takes it over (`release`,
 * then the API listens on the same port a moment later): port 0 becomes a concrete free
 * port here.
 */
function addressInUse(host: string, port: number): FormworkError {
  return new FormworkError('VALIDATION', `cannot listen on ${host}:${port}: the address is in use (EADDRINUSE); stop what holds it or pass another --listen`);
}

async function holdAddress(host: string, port: number): Promise<{ port: number; release(): Promise<void> }> {
  // A client that connects meanwhile is cut off at once (as if refused): a connection kept
  // open here would hold the release until that client gave up.
  const holder = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    holder.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? addressInUse(host, port) : e));
    holder.listen({ host, port, exclusive: true }, () => resolve());
  });
  let released: Promise<void> | undefined;
  return {
    port: (holder.address() as AddressInfo).port,
    release: () => (released ??= new Promise<void>((resolve) => holder.close(() => resolve()))),
  };
}

/** Reads and checks the certificate and key (a pair that does not load fails here, before anything starts). */
async function readTls(cert: string | undefined, key: string | undefined): Promise<{ cert: Buffer; key: Buffer }> {
  if (!cert || !key) throw new FormworkError('VALIDATION', 'TLS needs both a certificate (tlsCert) and a key (tlsKey)');
  let pair: { cert: Buffer; key: Buffer };
  try {
    pair = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  } catch (e) {
    throw new FormworkError('VALIDATION', `cannot read the TLS files: ${(e as Error).message}`);
  }
  const tls = await import('node:tls'); // loaded only with TLS
  try {
    tls.createSecureContext(pair);
  } catch (e) {
    throw new FormworkError('VALIDATION', `the TLS certificate ${cert} and key ${key} do not load as a PEM pair: ${(e as Error).message}`);
  }
  return pair;
}
