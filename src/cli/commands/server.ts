import path from 'node:path';
import type { Command } from 'commander';
import { FormworkError } from '../../core/errors.js';
import { resolveDataDir, type CliContext } from '../context.js';
import { applyResultLine } from '../format.js';
import { annotateApplyError, loadDocuments } from './apply.js';

/**
 * `formwork server`: runs the API server (with the engine) in the foreground until
 * SIGINT/SIGTERM. `--role api` serves the API alone, `--role worker` runs the engine alone
 * (no listener): API servers and workers scale apart on one PostgreSQL. It prints the URL and the admin token file; other commands run with the
 * same data dir find both through DATA_DIR/server.json and DATA_DIR/admin.token. Logs
 * (JSON lines) go to stdout unless --log-file is given.
 *
 * @example
 *   formwork server --listen 127.0.0.1:7480 --apply examples/lab-demo.yaml
 *   formwork server --role worker --database-url postgres://…   # FORMWORK_SECRET_KEY shared
 */

export const DEFAULT_LISTEN = '127.0.0.1:7480';

const ROLES = ['all', 'api', 'worker'] as const;
type Role = (typeof ROLES)[number];

interface ServerFlags {
  role: string;
  apply: string[];
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  databaseUrl?: string;
  logLevel?: string;
  logFile?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('server')
    .description('run the Formwork server in the foreground (Ctrl-C stops it)')
    .option('--role <role>', 'all (API and engine), api (the API alone) or worker (the engine alone, no listener); several share one PostgreSQL and FORMWORK_SECRET_KEY', 'all')
    .option('--listen <host:port>', `address to listen on; port 0 picks a free one (env FORMWORK_LISTEN; default ${DEFAULT_LISTEN})`)
    .option('--tls-cert <file>', 'serve https with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--database-url <url>', 'PostgreSQL URL (env FORMWORK_DATABASE_URL; default: SQLite in the data dir)')
    .option('--log-level <level>', 'trace, debug, info, warn or error (env FORMWORK_LOG_LEVEL; default info)')
    .option('--log-file <file>', 'write the JSON log here instead of stdout')
    .option('--apply <file>', 'apply these documents as the server starts, before the API answers, as `formwork apply -f` would (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(async (opts: ServerFlags) => {
      const env = ctx.io.env;
      if (!(ROLES as readonly string[]).includes(opts.role)) {
        throw new FormworkError('VALIDATION', `--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(opts.role)}`);
      }
      const role = opts.role as Role;
      if (role === 'worker' && (opts.listen || opts.tlsCert)) {
        throw new FormworkError('VALIDATION', 'a worker (--role worker) listens nowhere: drop --listen/--tls-cert/--tls-key, or use --role all or api');
      }
      if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
        throw new FormworkError('VALIDATION', '--tls-cert and --tls-key go together: give both or neither');
      }
      const dataDir = resolveDataDir(ctx.globals.dataDir, env, ctx.io.cwd);
      const listen = opts.listen ?? env.FORMWORK_LISTEN ?? DEFAULT_LISTEN;
      const databaseUrl = opts.databaseUrl ?? env.FORMWORK_DATABASE_URL;
      const logLevel = opts.logLevel ?? env.FORMWORK_LOG_LEVEL;
      const abs = (f: string | undefined) => (f ? path.resolve(ctx.io.cwd, f) : undefined);
      const documents = opts.apply.length ? await loadDocuments(ctx, opts.apply) : [];
      if (opts.apply.length && !documents.length) throw new FormworkError('VALIDATION', `no documents in ${opts.apply.join(', ')}`);
      // Loaded here: the other commands need none of the server's dependencies.
      const { startServer } = await import('../../server/server.js');
      const { signal, dispose } = ctx.shutdownSignal();
      try {
        const server = await startServer({
          dataDir,
          role,
          listen,
          handleSignals: false, // ours: close, then return the exit code
          ...(databaseUrl ? { databaseUrl } : {}),
          ...(opts.tlsCert ? { tlsCert: abs(opts.tlsCert), tlsKey: abs(opts.tlsKey) } : {}),
          ...(logLevel ? { logLevel } : {}),
          ...(opts.logFile ? { logFile: abs(opts.logFile) } : {}),
          ...(documents.length ? { apply: documents.map((d) => d.doc) } : {}),
        }).catch((e: unknown) => {
          throw annotateApplyError(e, documents);
        });
        for (const r of server.applied) ctx.out(applyResultLine(r));
        if (server.url === undefined) {
          ctx.out(`formwork worker running (data dir ${dataDir})`);
        } else {
          ctx.out(`formwork server listening on ${server.url}${role === 'api' ? ' (API only, no engine)' : ''}`);
          ctx.out(`admin token: ${path.join(dataDir, 'admin.token')}`);
        }
        if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        ctx.err('formwork server: shutting down');
        await server.close();
      } finally {
        dispose();
      }
    });
}
