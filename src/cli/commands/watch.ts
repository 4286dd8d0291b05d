import { InvalidArgumentError, type Command } from 'commander';
import type { ClientEvent } from '../../client/client.js';
import { kindByName } from '../../core/kinds.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, toYaml, type OutputFormat } from '../format.js';

/**
 * `formwork watch [KIND[,KIND...]] [--key K]`: tails the event stream, one line per event
 * (`TIME TYPE ACTION KEY` and the new value of each field that changed, e.g. `state=ready`),
 * or one JSON object per line with `-o json`. Reconnects with
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
  return `${e.time ?? ''}  ${(e.type ?? '').padEnd(11)} ${(e.action ?? '').padEnd(9)} ${e.key ?? ''}  ${newState(e)}`.trimEnd();
}

const MAX_VALUE = 80;

/** One value on one line, cut at MAX_VALUE characters: a bare word as is, anything else as JSON; a cleared field is <none>. */
function compact(v: unknown): string {
  if (v === undefined || v === null) return '<none>';
  const text = typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

/**
 * What an event says the object is now: `field=value` for every field the write changed
 * (events of updates list them in `object.changed`), and a new object's state. Nothing for
 * a deletion. Objects in events never hold secret values (a secret carries only its `keys`).
 */
export function newState(e: ClientEvent): string {
  const o = e.object;
  if (!o || typeof o !== 'object' || Array.isArray(o) || e.action === 'deleted') return '';
  const obj = o as Record<string, unknown>;
  const fields = Array.isArray(obj.changed) ? (obj.changed as string[]) : e.action === 'created' && obj.state !== undefined ? ['state'] : [];
  return fields.map((f) => `${f}=${compact(obj[f])}`).join(' ');
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('watch')
    .description('tail the event stream: TIME TYPE ACTION KEY, then the new value of each changed field (state=ready …)')
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
