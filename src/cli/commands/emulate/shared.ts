/**
 * What every `formwork emulate <cloud>` shares: the options that say where its instances
 * come from (`--backend lab|memory`, `--subnet-index`, `--base-dir`), where it listens
 * (`--listen`), which faults it injects (`--faults`), and the foreground life: print the
 * banner and the Provider document, run until Ctrl-C, then close (delete its hosts).
 *
 * @example
 *   const cmd = withEmulatorOptions(emulate.command('aws'), 51);
 *   cmd.action((opts) => runInForeground(ctx, (log) => startAwsForCli(opts, ctx.resolve().dataDir, log)));
 */
import { InvalidArgumentError, type Command } from 'commander';
import { stringify } from 'yaml';
import type { CliContext } from '../../context.js';

/** Where an emulator logs (a provider logger's shape; the CLI may not import providers' modules statically). */
export interface EmulatorLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** The options every emulator command takes. */
export interface EmulatorCliOptions {
  listen: string;
  subnetIndex: number;
  backend: 'lab' | 'memory';
  baseDir?: string;
  faults?: string;
}

/** A started emulator as the command shows it. */
export interface ForegroundEmulator {
  /** Comment lines printed above the Provider document (without `# `). */
  banner: string[];
  /** The Provider document (and any Secret before it) a user applies to use the emulator. */
  documents: Record<string, unknown>[];
  /** Stops it and deletes every host it made. */
  close(): Promise<void>;
}

function subnetIndex(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError('expected an integer from 0 to 255.');
  return n;
}

function backendName(v: string): 'lab' | 'memory' {
  if (v !== 'lab' && v !== 'memory') throw new InvalidArgumentError('expected lab or memory.');
  return v;
}

/**
 * Adds the shared options to an emulator's command, with its default subnet index.
 *
 * @example
 *   withEmulatorOptions(emulate.command('gce').description('…'), 54);
 */
export function withEmulatorOptions(cmd: Command, defaultSubnetIndex: number, opts: { faults?: boolean } = { faults: true }): Command {
  cmd
    .option('--listen <host:port>', 'address to listen on; port 0 picks a free one', '127.0.0.1:0')
    .option('--subnet-index <n>', "the lab subnet index of the emulator's hosts (0–255)", subnetIndex, defaultSubnetIndex)
    .option('--backend <kind>', 'lab (real lab hosts; root) or memory (no machines)', backendName, 'lab' as const)
    .option('--base-dir <dir>', 'a prebuilt lab base image (the lab setting baseDir)');
  if (opts.faults !== false) cmd.option('--faults <spec>', 'faults to inject: throttle=P, error=P, lost=P, slow=P@2s, never-boot=N, retry-after=S, seed=N (P: 0.2 or 20%)');
  return cmd;
}

/**
 * Runs an emulator in the foreground: starts it, prints its banner and documents, waits for
 * Ctrl-C, closes it. Its log goes to stderr, so stdout is only the documents (`| formwork apply -f -`).
 *
 * @example
 *   await runInForeground(ctx, (log) => startMyEmulator(log));
 */
export async function runInForeground(ctx: CliContext, start: (log: EmulatorLog) => Promise<ForegroundEmulator>): Promise<void> {
  const log: EmulatorLog = {
    info: (msg, fields) => ctx.err(`${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
    warn: (msg, fields) => ctx.err(`warning: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
  };
  const { signal, dispose } = ctx.shutdownSignal();
  const running = await start(log);
  try {
    ctx.out([...running.banner.map((l) => `# ${l}`), '# Ctrl-C stops the emulator and deletes its hosts.', running.documents.map((d) => stringify(d).trimEnd()).join('\n---\n')].join('\n'));
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    ctx.err('stopping the emulator: deleting its instances and hosts…');
  } finally {
    dispose();
    await running.close();
  }
  ctx.err('emulator stopped.');
}
