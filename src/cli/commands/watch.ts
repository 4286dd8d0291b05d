import { InvalidArgumentError, type Command } from 'commander';
import type { ClientEvent } from '../../client/client.js';
import { kindByName } from '../../core/kinds.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, toYaml, type OutputFormat } from '../format.js';

/**
 * `formwork watch [KIND[,KIND...]] [--key K]`: tails the event stream, one line per event
 * (`TIME TYPE ACTION KEY`), or one JSON object per line with `-o json`. Reconnects with
 * Last-Event-ID when the stream drops; stops on Ctrl-C.
 */

/** Kind names become their plural (the event type); other names (streams like `logs`) pass as they are. */
export function eventTypes(spec: string | undefined): string[] {
  if (!spec) return [];
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => kindByName(s)?.plural ?? s);
}

export function formatEvent(e: ClientEvent): string {
  return `${e.time ?? ''}  ${(e.type ?? '').padEnd(11)} ${(e.action ?? '').padEnd(9)} ${e.key ?? ''}`.trimEnd();
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('watch')
    .description('tail the event stream: TIME TYPE ACTION KEY')
    .argument('[kind]', 'only events of these kinds (comma-separated), or a stream name')
    .option('--key <key>', 'only events about this key (object name)')
    .option('--after <seq>', 'start after this event sequence number (replays later events)', (v: string) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected an event sequence number.');
      return v;
    })
    .option('-o, --output <format>', 'table or json (one event per line)', parseOutputFormat, 'table' as OutputFormat)
    .action(async (kind: string | undefined, opts: { key?: string; after?: string; output: OutputFormat }) => {
      const client = ctx.client();
      const { signal, dispose } = ctx.shutdownSignal();
      try {
        const stream = client.events({
          types: eventTypes(kind),
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.after ? { lastEventId: opts.after } : {}),
          signal,
          onReconnect: ({ delayMs, error }) =>
            ctx.err(`watch: stream lost${error ? ` (${error.message})` : ''}; reconnecting in ${Math.round(delayMs)} ms`),
        });
        for await (const e of stream) {
          if (opts.output === 'json') ctx.out(JSON.stringify(e));
          else if (opts.output === 'yaml') ctx.out(`---\n${toYaml(e)}`);
          else ctx.out(formatEvent(e));
        }
      } finally {
        dispose();
      }
    });
}
