import type { Command } from 'commander';
import { packageVersion } from '../../package.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, toJson, toYaml, type OutputFormat } from '../format.js';

/** `formwork version`: the CLI's version, and the server's with `--server`. */

export function register(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('print the version of the CLI (and of the server with --server)')
    .option('--server', 'also ask the server (healthz)')
    .option('-o, --output <format>', 'table, json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .action(async (opts: { server?: boolean; output: OutputFormat }) => {
      const info: Record<string, unknown> = { client: packageVersion(), node: process.version };
      if (opts.server) {
        const c = ctx.client();
        info.endpoint = c.endpoint;
        info.server = await c.health();
      }
      if (opts.output === 'json') return ctx.out(toJson(info));
      if (opts.output === 'yaml') return ctx.out(toYaml(info));
      ctx.out(`formwork ${info.client} (node ${process.version})`);
      if (opts.server) {
        const h = info.server as { version?: unknown } | undefined;
        ctx.out(`server ${info.endpoint}: ${h && typeof h === 'object' && h.version ? String(h.version) : JSON.stringify(h)}`);
      }
    });
}
