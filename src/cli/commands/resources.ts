import { InvalidArgumentError, type Command } from 'commander';
import { resolveKind } from '../../client/client.js';
import type { StoredObject } from '../../core/kinds.js';
import type { CliContext } from '../context.js';
import { documentOf } from '../documents.js';
import {
  allKindsTable,
  describeObject,
  parseOutputFormat,
  renderObjects,
  toJson,
  toYaml,
  type OutputFormat,
} from '../format.js';

/**
 * Generic object commands, for every kind in src/core/kinds.ts:
 * `get`, `describe`, `delete` and `kinds`.
 */

/** Splits `a=b,c=d` into pairs, refusing anything that is not `key=value`. */
export function parseSelector(text: string, what: string): Array<[string, string]> {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new InvalidArgumentError(`${what} "${pair}" is not key=value.`);
      return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()] as [string, string];
    });
}

/**
 * Kinds whose `describe` shows more than the object (e.g. a deployment's node-role tree):
 * plural → renderer. Command modules add theirs in `register`.
 */
export const DESCRIBERS = new Map<string, (ctx: CliContext, name: string) => Promise<string>>();

const collect = (what: string) => (value: string, prev: Array<[string, string]> = []) => [...prev, ...parseSelector(value, what)];

interface GetOptions {
  output: OutputFormat;
  selector?: Array<[string, string]>;
  fieldSelector?: Array<[string, string]>;
  chunkSize?: number;
}

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer.');
  return n;
};

export function register(program: Command, ctx: CliContext): void {
  program
    .command('get')
    .description('list objects of a kind, or show some by name')
    .argument('<kind>', 'object kind: singular, plural or PascalCase (see `formwork kinds`)')
    .argument('[names...]', 'names or ids; all objects when omitted')
    .option('-o, --output <format>', 'table, json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .option('-l, --selector <k=v,...>', 'label selector (repeatable)', collect('label'))
    .option('--field-selector <f=v,...>', 'filter on a field the kind marks filterable (repeatable)', collect('field selector'))
    .option('--chunk-size <n>', 'objects per page fetched', positiveInt)
    .action(async (kindName: string, names: string[], opts: GetOptions) => {
      const kind = resolveKind(kindName);
      const client = ctx.client();
      let objects: StoredObject[];
      if (names.length) {
        objects = [];
        for (const n of names) objects.push(await client.get(kind.plural, n));
      } else {
        objects = await client.listAll(kind.plural, {
          ...(opts.chunkSize ? { limit: opts.chunkSize } : {}),
          labels: (opts.selector ?? []).map(([k, v]) => `${k}=${v}`),
          fields: Object.fromEntries(opts.fieldSelector ?? []),
        });
      }
      const single = names.length === 1;
      // Documents that `apply -f` takes back as they are.
      const docs = () => objects.map((o) => documentOf(kind, o));
      switch (opts.output) {
        case 'json':
          return ctx.out(toJson(single ? docs()[0] : { items: docs() }));
        case 'yaml':
          return ctx.out(docs().map((d) => toYaml(d)).join('---\n') || '');
        default:
          if (!objects.length) return ctx.err(`No ${kind.plural} found.`);
          ctx.out(renderObjects(kind, objects));
      }
    });

  program
    .command('describe')
    .description('show objects in a readable, multi-line form')
    .argument('<kind>', 'object kind')
    .argument('<names...>', 'names or ids')
    .action(async (kindName: string, names: string[]) => {
      const kind = resolveKind(kindName);
      const client = ctx.client();
      const parts: string[] = [];
      const custom = DESCRIBERS.get(kind.plural);
      for (const n of names) parts.push(custom ? await custom(ctx, n) : describeObject(kind, await client.get(kind.plural, n)));
      ctx.out(parts.join('\n'));
    });

  program
    .command('delete')
    .description('delete objects by name or id')
    .argument('<kind>', 'object kind')
    .argument('<names...>', 'names or ids')
    .option('--if-version <n>', 'only if the object is still at this version (If-Match)', positiveInt)
    .action(async (kindName: string, names: string[], opts: { ifVersion?: number }) => {
      const kind = resolveKind(kindName);
      const client = ctx.client();
      for (const n of names) {
        await client.delete(kind.plural, n, opts.ifVersion !== undefined ? { ifMatch: opts.ifVersion } : {});
        ctx.out(`${kind.singular}/${n} deleted`);
      }
    });

  program
    .command('kinds')
    .description('list the object kinds Formwork knows')
    .action(() => ctx.out(allKindsTable()));
}
