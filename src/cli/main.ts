import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ApiError } from '../client/client.js';
import { isFormworkError } from '../core/errors.js';
import { packageRoot, packageVersion } from '../package.js';
import { COMMAND_MODULES } from './commands/index.js';
import { CliContext, type CliIO, type GlobalOptions } from './context.js';
import { DURATION_HINT } from '../core/durations.js';
import { EXIT_OK, EXIT_USAGE, exitCodeOf } from './exit-codes.js';
import { durationOption } from './format.js';

/**
 * The `formwork` command line. `main(argv, io)` runs one invocation and resolves to its
 * exit code — 0 ok; on an error (`error: <message>` on stderr; the stack with --debug) the
 * code of its category (cli/exit-codes.ts, docs/errors.md), 2 for usage (unknown command or
 * option, missing argument) — so tests call it directly
 * with their own stdout/stderr/env. Run as a program (bin/formwork.js, which runs the
 * bundle built from it, or `node --import tsx src/cli/main.ts`), it uses the process's and
 * sets the exit code.
 *
 * Commands live in src/cli/commands/<area>.ts, listed in src/cli/commands/index.ts.
 *
 * @example
 *   const out: string[] = [];
 *   const code = await main(['get', 'nodes', '-o', 'json'], { stdout: { write: (s) => out.push(s) }, env: {} });
 */

export interface MainIO extends Partial<CliIO> {
  /** Called with the exit code when main finishes (besides resolving to it). */
  exit?: (code: number) => void;
}


const lazyStdin: AsyncIterable<Buffer> = {
  [Symbol.asyncIterator]: () => (process.stdin as AsyncIterable<Buffer>)[Symbol.asyncIterator](),
};

function defaultIO(io: MainIO): CliIO {
  return {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? lazyStdin,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    ...(io.signal ? { signal: io.signal } : {}),
    ...(io.handleSignals !== undefined ? { handleSignals: io.handleSignals } : {}),
  };
}

/** Builds the program with every command module registered. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('formwork');
  program
    .description('Formwork: provision machines on any infrastructure and run composable automation across them')
    .version(packageVersion(), '-V, --version', 'print the CLI version')
    .option('--endpoint <url>', 'server URL (env FORMWORK_ENDPOINT; default: DATA_DIR/server.json, then http://127.0.0.1:7480)')
    .option('--token <token>', 'bearer token (env FORMWORK_TOKEN; default: DATA_DIR/admin.token)')
    .option('--data-dir <dir>', 'data directory (env FORMWORK_DATA_DIR; default ./.formwork)')
    .option('--ca <file>', 'trust this CA (PEM) for https endpoints (env FORMWORK_CA)')
    .option('--timeout <duration>', `how long to wait for each answer of the server (${DURATION_HINT}; default 30s)`, (v: string) => durationOption(v) * 1000)
    .option('--debug', 'print stack traces of errors')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    });
  program.hook('preAction', (_program, action) => {
    const all = action.optsWithGlobals<GlobalOptions>();
    ctx.globals = {
      ...(all.endpoint !== undefined ? { endpoint: all.endpoint } : {}),
      ...(all.token !== undefined ? { token: all.token } : {}),
      ...(all.dataDir !== undefined ? { dataDir: all.dataDir } : {}),
      ...(all.ca !== undefined ? { ca: all.ca } : {}),
      ...(all.timeout !== undefined ? { timeout: all.timeout } : {}),
      ...(all.debug ? { debug: true } : {}),
    };
  });
  for (const m of COMMAND_MODULES) m.register(program, ctx);
  return program;
}

/** The text printed for an error (without the `error: ` prefix). */
export function formatError(e: unknown, ctx?: CliContext): string {
  if (!isFormworkError(e)) return e instanceof Error ? e.message : String(e);
  let text = e.message;
  if (e instanceof ApiError) text += ` (HTTP ${e.status} ${e.code})`;
  // Every problem of a VALIDATION error, whether the server sent it or this process made it (`server --apply`).
  const problems = Array.isArray(e.details?.errors) ? (e.details.errors as Array<Record<string, unknown>>) : [];
  if (problems.length > 1 || (problems.length === 1 && problems[0].where)) {
    for (const p of problems) {
      const at = p.where ?? p.path ?? '';
      text += `\n  - ${at ? `${String(at)}: ` : ''}${String(p.message ?? JSON.stringify(p))}`;
    }
  }
  if (e instanceof ApiError) {
    if (e.code === 'UNAUTHENTICATED' && ctx) {
      let hasToken = false;
      try {
        hasToken = Boolean(ctx.resolve().token);
      } catch {
        /* resolution failed earlier; no hint */
      }
      if (!hasToken) text += '\n  no token was sent: pass --token, set FORMWORK_TOKEN, or use --data-dir with the server\'s admin.token';
    }
  }
  if (e.code === 'ENDPOINT_UNREACHABLE' && ctx) {
    let stale: ReturnType<CliContext['resolve']>['staleServerFile'];
    try {
      stale = ctx.resolve().staleServerFile;
    } catch {
      stale = undefined;
    }
    if (stale) text += `\n  (${stale.file} names ${stale.url}, but its server, pid ${stale.pid}, is no longer running)`;
  }
  return text;
}

export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const ctx = new CliContext(defaultIO(io));
  let code = EXIT_OK;
  try {
    const program = buildProgram(ctx);
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed its message (and help, where asked for).
      code = e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    } else {
      code = exitCodeOf(e);
      ctx.io.stderr.write(`error: ${formatError(e, ctx)}\n`);
      if ((ctx.globals.debug || argv.includes('--debug')) && e instanceof Error && e.stack) ctx.io.stderr.write(`${e.stack}\n`);
    }
  } finally {
    ctx.close();
  }
  io.exit?.(code);
  return code;
}

function isEntry(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  let real: string;
  try {
    real = realpathSync(arg);
  } catch {
    real = path.resolve(arg);
  }
  return real === fileURLToPath(import.meta.url) || real === path.join(packageRoot(), 'bin', 'formwork.js');
}

if (isEntry()) {
  // `formwork get nodes | head`: a closed pipe is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const code = await main(process.argv.slice(2), { handleSignals: true });
  process.exitCode = code;
  // A finished command exits once its output is written: idle keep-alive sockets and
  // closing streams would otherwise hold it for a while (about 0.2 s after \`up\`).
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}
