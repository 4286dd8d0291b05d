import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ApiError } from '../../client/client.js';
import type { ApplyResult } from '../../core/wire.js';
import { FormworkError } from '../../core/errors.js';
import { kindByName } from '../../core/kinds.js';
import type { CliContext } from '../context.js';
import { parseDocuments, type ParsedDocument } from '../documents.js';
import { applyResultLine, parseOutputFormat, toJson, toYaml, type OutputFormat } from '../format.js';

/**
 * `formwork apply -f FILE...`: create-or-update documents by name, all-or-nothing.
 * FILE may be YAML (multi-document), JSON (object, array or `{items}`), a directory
 * (its *.yaml, *.yml and *.json files, sorted), or `-` for stdin.
 */

const collectFiles = (v: string, prev: string[] = []) => [...prev, v];

async function expand(ctx: CliContext, file: string): Promise<string[]> {
  if (file === '-') return [file];
  const abs = path.resolve(ctx.io.cwd, file);
  let isDir = false;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch {
    return [file]; // readInput reports it
  }
  if (!isDir) return [file];
  const names = (await readdir(abs)).filter((n) => /\.(ya?ml|json)$/i.test(n)).sort();
  if (!names.length) throw new FormworkError('VALIDATION', `${file} holds no .yaml, .yml or .json files`);
  return names.map((n) => path.join(file, n));
}

export async function loadDocuments(ctx: CliContext, files: string[]): Promise<ParsedDocument[]> {
  const docs: ParsedDocument[] = [];
  for (const f of files) {
    for (const file of await expand(ctx, f)) {
      const text = await ctx.readInput(file);
      docs.push(...parseDocuments(text, file === '-' ? '<stdin>' : file));
    }
  }
  return docs;
}

function where(d: ParsedDocument): string {
  return `${d.source}${d.line > 0 ? `:${d.line}` : ''} (${kindByName(d.doc.kind)?.singular ?? d.doc.kind}/${d.doc.name})`;
}

/** Points apply's `/documents/<i>/...` problems (from the API, or from `server --apply`) back at files and lines. */
export function annotateApplyError(e: unknown, docs: ParsedDocument[]): unknown {
  if (!(e instanceof ApiError || e instanceof FormworkError) || !e.details) return e;
  const details = { ...e.details };
  let message = e.message;
  if (Array.isArray(details.errors)) {
    details.errors = (details.errors as Array<Record<string, unknown>>).map((p) => {
      const m = typeof p.path === 'string' ? /^\/documents\/(\d+)(\/.*)?$/.exec(p.path) : null;
      const d = m ? docs[Number(m[1])] : undefined;
      return d ? { ...p, where: `${where(d)}${m?.[2] ? ` ${m[2].slice(1)}` : ''}` } : p;
    });
    const first = (details.errors as Array<Record<string, unknown>>)[0];
    if (first?.where) message = `${message}\n  at ${String(first.where)}`;
  } else if (typeof details.index === 'number' && docs[details.index]) {
    message = `${message}\n  at ${where(docs[details.index])}`;
  }
  return e instanceof ApiError ? new ApiError(e.status, e.code, message, details) : new FormworkError(e.code, message, details);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description('create or update objects from YAML/JSON documents (all or nothing)')
    .requiredOption('-f, --filename <file>', 'a file, a directory, or - for stdin (repeatable)', collectFiles)
    .option('-o, --output <format>', 'table (kind/name action), json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .action(async (opts: { filename: string[]; output: OutputFormat }) => {
      const docs = await loadDocuments(ctx, opts.filename);
      if (!docs.length) throw new FormworkError('VALIDATION', `no documents in ${opts.filename.join(', ')}`);
      let results: ApplyResult[];
      try {
        results = await ctx.client().apply(docs.map((d) => d.doc));
      } catch (e) {
        throw annotateApplyError(e, docs);
      }
      if (opts.output === 'json') return ctx.out(toJson({ results }));
      if (opts.output === 'yaml') return ctx.out(toYaml({ results }));
      for (const r of results) ctx.out(applyResultLine(r));
    });
}
