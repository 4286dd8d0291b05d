import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormworkError } from '../core/errors.js';
import { normalizeEndpoint, type FormworkClient } from '../client/client.js';
import { httpClient } from '../client/node-transport.js';

/**
 * What every command gets: the I/O to use (injected, so `main` runs in tests without a
 * child process), the global flags, and the resolved endpoint, token and data dir.
 *
 * Resolution order (first that is set wins):
 *   data dir  --data-dir > FORMWORK_DATA_DIR > ./.formwork
 *   endpoint  --endpoint > FORMWORK_ENDPOINT > DATA_DIR/server.json `url` > http://127.0.0.1:7480
 *   token     --token > FORMWORK_TOKEN > DATA_DIR/admin.token
 *   CA        --ca > FORMWORK_CA (a PEM file)
 *
 * @example
 *   const client = ctx.client();         // built from the resolved endpoint and token
 *   ctx.out(renderTable(headers, rows));  // stdout: only what was asked for
 */

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:7480';
export const DEFAULT_DATA_DIR = '.formwork';

export interface Writer {
  write(chunk: string): unknown;
}

export interface CliIO {
  stdout: Writer;
  stderr: Writer;
  stdin: AsyncIterable<string | Buffer>;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborting it stops long-running commands (server, watch), as SIGINT does. */
  signal?: AbortSignal;
  /** Listen for SIGINT/SIGTERM in long-running commands (the real process does; tests need not). */
  handleSignals?: boolean;
}

export interface GlobalOptions {
  endpoint?: string;
  token?: string;
  dataDir?: string;
  ca?: string;
  /** Request timeout in ms. */
  timeout?: number;
  debug?: boolean;
}

export type EndpointSource = 'flag' | 'env' | 'server.json' | 'default';
export type TokenSource = 'flag' | 'env' | 'admin.token';

export interface Resolved {
  dataDir: string;
  endpoint: string;
  endpointSource: EndpointSource;
  token?: string;
  tokenSource?: TokenSource;
  caFile?: string;
  /** DATA_DIR/server.json was skipped: the server that wrote it (pid) is gone. */
  staleServerFile?: { file: string; pid: number; url: string };
}

export type FileReader = (file: string) => string | undefined;

/** Reads a file as text, or undefined when it does not exist. Other errors are thrown. */
export const readIfExists: FileReader = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
};

const nonEmpty = (v: string | undefined): string | undefined => (v && v.trim() ? v.trim() : undefined);

export function resolveDataDir(flag: string | undefined, env: Record<string, string | undefined>, cwd: string): string {
  return path.resolve(cwd, nonEmpty(flag) ?? nonEmpty(env.FORMWORK_DATA_DIR) ?? DEFAULT_DATA_DIR);
}

/** Whether a process runs (EPERM: it does, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function resolveEndpoint(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  dataDir: string,
  read: FileReader = readIfExists,
  alive: (pid: number) => boolean = pidAlive,
): { endpoint: string; source: EndpointSource; stale?: { file: string; pid: number; url: string } } {
  const f = nonEmpty(flag);
  if (f) return { endpoint: normalizeEndpoint(f), source: 'flag' };
  const e = nonEmpty(env.FORMWORK_ENDPOINT);
  if (e) return { endpoint: normalizeEndpoint(e), source: 'env' };
  const file = path.join(dataDir, 'server.json');
  let text: string | undefined;
  try {
    text = read(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    // Typically `sudo scripts/up.sh`: the data dir is root's (0700), the CLI runs as a user.
    throw new FormworkError(
      'FORBIDDEN',
      `cannot read ${file} (permission denied): the server for ${dataDir} was started by another user (root, if you ran \`sudo scripts/up.sh\`); run formwork as that user (e.g. with sudo), or name the server with --endpoint and --token`,
    );
  }
  if (text !== undefined) {
    let info: { url?: unknown; pid?: unknown };
    try {
      info = JSON.parse(text) as { url?: unknown; pid?: unknown };
    } catch {
      throw new FormworkError('VALIDATION', `${file} is not valid JSON; remove it or set --endpoint/FORMWORK_ENDPOINT`);
    }
    if (typeof info.url === 'string' && info.url.trim()) {
      // A killed server leaves its server.json behind: a dead pid means nobody serves that URL.
      if (typeof info.pid === 'number' && info.pid > 0 && !alive(info.pid)) {
        return { endpoint: DEFAULT_ENDPOINT, source: 'default', stale: { file, pid: info.pid, url: info.url } };
      }
      return { endpoint: normalizeEndpoint(info.url), source: 'server.json' };
    }
  }
  return { endpoint: DEFAULT_ENDPOINT, source: 'default' };
}

export function resolveToken(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  dataDir: string,
  read: FileReader = readIfExists,
): { token?: string; source?: TokenSource } {
  const f = nonEmpty(flag);
  if (f) return { token: f, source: 'flag' };
  const e = nonEmpty(env.FORMWORK_TOKEN);
  if (e) return { token: e, source: 'env' };
  let text: string | undefined;
  try {
    text = read(path.join(dataDir, 'admin.token'));
  } catch {
    text = undefined; // e.g. EACCES: another user's server; go without
  }
  const t = nonEmpty(text);
  return t ? { token: t, source: 'admin.token' } : {};
}

export function resolveAll(globals: GlobalOptions, io: Pick<CliIO, 'env' | 'cwd'>, read: FileReader = readIfExists): Resolved {
  const dataDir = resolveDataDir(globals.dataDir, io.env, io.cwd);
  const ep = resolveEndpoint(globals.endpoint, io.env, dataDir, read);
  const tk = resolveToken(globals.token, io.env, dataDir, read);
  const ca = nonEmpty(globals.ca) ?? nonEmpty(io.env.FORMWORK_CA);
  return {
    dataDir,
    endpoint: ep.endpoint,
    endpointSource: ep.source,
    ...(ep.stale ? { staleServerFile: ep.stale } : {}),
    ...(tk.token ? { token: tk.token, tokenSource: tk.source } : {}),
    ...(ca ? { caFile: path.resolve(io.cwd, ca) } : {}),
  };
}

export class CliContext {
  globals: GlobalOptions = {};
  private resolved: Resolved | undefined;
  private clientInstance: FormworkClient | undefined;

  constructor(readonly io: CliIO) {}

  /** Writes to stdout, adding a final newline when missing. */
  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Writes a note to stderr (never data). */
  err(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  resolve(): Resolved {
    this.resolved ??= resolveAll(this.globals, this.io);
    return this.resolved;
  }

  /** The API client for the resolved endpoint and token (one per run). */
  client(): FormworkClient {
    if (!this.clientInstance) {
      const r = this.resolve();
      let ca: string | undefined;
      if (r.caFile) {
        try {
          ca = readFileSync(r.caFile, 'utf8');
        } catch (e) {
          throw new FormworkError('VALIDATION', `cannot read the CA file ${r.caFile}: ${(e as Error).message}`);
        }
      }
      this.clientInstance = httpClient({
        endpoint: r.endpoint,
        ...(r.token ? { token: r.token } : {}),
        ...(ca ? { ca } : {}),
        ...(this.globals.timeout ? { timeoutMs: this.globals.timeout } : {}),
        userAgent: 'formwork-cli',
      });
    }
    return this.clientInstance;
  }

  /** Reads a file as text; `-` is stdin. */
  async readInput(file: string): Promise<string> {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const c of this.io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
      return Buffer.concat(chunks).toString('utf8');
    }
    try {
      return await readFile(path.resolve(this.io.cwd, file), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
      throw new FormworkError('VALIDATION', `cannot read ${file}: ${why}`);
    }
  }

  /**
   * A signal that aborts on SIGINT/SIGTERM (when the process handles signals) or when
   * `io.signal` aborts; `dispose()` removes the listeners.
   */
  shutdownSignal(): { signal: AbortSignal; dispose(): void } {
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    const ext = this.io.signal;
    if (ext) {
      if (ext.aborted) ac.abort();
      else ext.addEventListener('abort', onSignal, { once: true });
    }
    if (this.io.handleSignals) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    return {
      signal: ac.signal,
      dispose: () => {
        ext?.removeEventListener('abort', onSignal);
        if (this.io.handleSignals) {
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
        }
      },
    };
  }

  close(): void {
    this.clientInstance?.close();
    this.clientInstance = undefined;
  }
}
