import { InvalidArgumentError, type Command } from 'commander';
import { resolveKind } from '../../client/client.js';
import { awaitDeletion } from '../../client/deletion.js';
import type { KindDef, StoredObject } from '../../core/kinds.js';
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
 * What `describe` shows of one object: the data it fetches (printed as is with `-o json|yaml`)
 * and its readable text. Kinds that show more than the object (a deployment's node-role tree)
 * add theirs to DESCRIBERS (plural → describer) in their module's `register`.
 */
export interface Describer {
  fetch(ctx: CliContext, name: string): Promise<unknown>;
  render(data: unknown): string;
}

export const DESCRIBERS = new Map<string, Describer>();

function describerFor(kind: KindDef): Describer {
  return DESCRIBERS.get(kind.plural) ?? { fetch: (ctx, name) => ctx.client().get(kind.plural, name), render: (o) => describeObject(kind, o as StoredObject) };
}

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
    .option('-o, --output <format>', 'json or yaml: what the readable view (the default) shows, as data', parseOutputFormat, 'table' as OutputFormat)
    .action(async (kindName: string, names: string[], opts: { output: OutputFormat }) => {
      const kind = resolveKind(kindName);
      const describer = describerFor(kind);
      const data: unknown[] = [];
      for (const n of names) data.push(await describer.fetch(ctx, n));
      switch (opts.output) {
        case 'json':
          return ctx.out(toJson(data.length === 1 ? data[0] : { items: data }));
        case 'yaml':
          return ctx.out(data.map((d) => toYaml(d)).join('---\n'));
        default:
          ctx.out(data.map((d) => describer.render(d)).join('\n'));
      }
    });

  program
    .command('delete')
    .description('delete objects by name or id; nodes, deployments and providers are deprovisioned by a worker, and this waits for it (with progress) unless --no-wait')
    .argument('<kind>', 'object kind')
    .argument('<names...>', 'names or ids')
    .option('--if-version <n>', 'only if the object is still at this version (If-Match)', positiveInt)
    .option('--no-wait', 'return once the server accepted the deletion (the object is marked deleting), without waiting for it to finish')
    .action(async (kindName: string, names: string[], opts: { ifVersion?: number; wait: boolean }) => {
      const kind = resolveKind(kindName);
      const client = ctx.client();
      const accepted: StoredObject[] = [];
      for (const n of names) {
        const object = await client.delete(kind.plural, n, opts.ifVersion !== undefined ? { ifMatch: opts.ifVersion } : {});
        if (object?.deletion) accepted.push(object);
        else ctx.out(`${kind.singular}/${n} deleted`);
      }
      if (!opts.wait) {
        for (const o of accepted) ctx.out(`${kind.singular}/${o.name} deleting (formwork get ${kind.singular} ${o.name} shows its progress)`);
        return;
      }
      // All at once: the worker deprovisions them in parallel.
      await Promise.all(
        accepted.map(async (o) => {
          await awaitDeletion(client, kind.plural, o, { onProgress: (line) => ctx.err(line) });
          ctx.out(`${kind.singular}/${o.name} deleted`);
        }),
      );
    });

  program
    .command('kinds')
    .description('list the object kinds Formwork knows')
    .action(() => ctx.out(allKindsTable()));
}
