import { LineCounter, parseAllDocuments } from 'yaml';
import { FormworkError } from '../core/errors.js';
import { kindByName, type KindDef, type StoredObject } from '../core/kinds.js';

/**
 * Turns the text of an `apply -f` file into documents `{kind, name, ...}`, each with the
 * file and line it came from. Accepts YAML (one or many `---` documents; a document may
 * also be a list of objects) and JSON (an object, an array of objects, or `{items: [...]}`).
 * Errors name the file and the line.
 *
 * @example
 *   parseDocuments('kind: Node\nname: a\n---\nkind: Node\nname: b\n', 'nodes.yaml');
 *   // [{ doc: { kind: 'Node', name: 'a' }, source: 'nodes.yaml', line: 1, index: 0 }, { ..., line: 4, index: 1 }]
 */

export interface ParsedDocument {
  doc: { kind: string; name: string; [field: string]: unknown };
  source: string;
  /** 1-based line where the document starts (0 when unknown). */
  line: number;
  /** 0-based position among the documents of the source. */
  index: number;
}

function malformed(source: string, line: number, column: number | undefined, message: string, context?: string): FormworkError {
  const where = line > 0 ? `${source}:${line}${column ? `:${column}` : ''}` : source;
  return new FormworkError('MALFORMED_BODY', `${where}: ${message}${context ? `\n${context}` : ''}`, {
    file: source,
    ...(line > 0 ? { line } : {}),
    ...(column ? { column } : {}),
  });
}

function lineAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const lines = before.split(/\r\n|\r|\n/);
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** The offending line with a caret under the column. */
function excerpt(text: string, line: number, column: number): string {
  const l = text.split(/\r\n|\r|\n/)[line - 1];
  if (l === undefined) return '';
  return `  ${l}\n  ${' '.repeat(Math.max(0, column - 1))}^`;
}

function looksLikeJson(text: string): boolean {
  const t = text.replace(/^\uFEFF/, '').trimStart();
  return t.startsWith('{') || t.startsWith('[');
}

interface Raw {
  value: unknown;
  line: number;
}

function parseJson(text: string, source: string): Raw[] {
  try {
    return [{ value: JSON.parse(text.replace(/^\uFEFF/, '')), line: 1 }];
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /at position (\d+)/.exec(msg);
    if (pos) {
      const { line, column } = lineAt(text, Number(pos[1]));
      const clean = msg.replace(/ in JSON at position \d+.*$/, '').replace(/ at position \d+.*$/, '');
      throw malformed(source, line, column, `invalid JSON: ${clean}`, excerpt(text, line, column));
    }
    if (/Unexpected end of JSON input/.test(msg)) {
      const { line, column } = lineAt(text, text.length);
      throw malformed(source, line, column, 'invalid JSON: unexpected end of input');
    }
    throw malformed(source, 0, undefined, `invalid JSON: ${msg}`);
  }
}

function parseYaml(text: string, source: string): Raw[] {
  const lc = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false });
  const docs = Array.isArray(parsed) ? parsed : [];
  const out: Raw[] = [];
  for (const d of docs) {
    const err = d.errors[0];
    if (err) {
      const { line, col } = lc.linePos(err.pos[0]);
      throw malformed(source, line, col, `invalid YAML: ${err.message}`, excerpt(text, line, col));
    }
    if (d.contents === null) continue; // an empty document (e.g. a trailing ---)
    const start = d.contents.range?.[0] ?? d.range[0];
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw malformed(source, lc.linePos(start).line, undefined, `invalid YAML: ${(e as Error).message}`);
    }
    // A YAML list of objects: each item is a document, with its own line.
    if (Array.isArray(value) && d.contents && 'items' in d.contents && Array.isArray(d.contents.items)) {
      const items = d.contents.items as Array<{ range?: [number, number, number] } | null>;
      value.forEach((v, i) => out.push({ value: v, line: lc.linePos(items[i]?.range?.[0] ?? start).line }));
      continue;
    }
    if (value === null || value === undefined) continue; // a document holding only comments or `~`
    out.push({ value, line: lc.linePos(start).line });
  }
  return out;
}

/** Parses one source (a file's text). `source` names it in errors. */
export function parseDocuments(text: string, source: string): ParsedDocument[] {
  const json = looksLikeJson(text);
  let raws = json ? parseJson(text, source) : parseYaml(text, source);
  // JSON: an array of documents, or a list object {items: [...]} (what `get -o json` prints).
  if (json) {
    const v = raws[0]?.value;
    if (Array.isArray(v)) raws = v.map((value) => ({ value, line: 0 }));
    else if (isListObject(v)) raws = v.items.map((value) => ({ value, line: 0 }));
  } else {
    raws = raws.flatMap((r) => (isListObject(r.value) ? r.value.items.map((value) => ({ value, line: r.line })) : [r]));
  }
  return raws.map((r, index) => {
    const where = json && raws.length > 1 ? `item ${index}` : `document ${index + 1}`;
    const v = r.value;
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      throw malformed(source, r.line, undefined, `${where} is not an object (expected kind, name and fields)`);
    }
    const doc = v as Record<string, unknown>;
    if (typeof doc.kind !== 'string' || !doc.kind.trim()) throw malformed(source, r.line, undefined, `${where} has no "kind"`);
    if (typeof doc.name !== 'string' || !doc.name.trim()) {
      throw malformed(source, r.line, undefined, `${where} (${doc.kind}) has no "name"`);
    }
    const kind = kindByName(doc.kind)?.kind ?? doc.kind;
    return { doc: { ...doc, kind, name: doc.name }, source, line: r.line, index };
  });
}

function isListObject(v: unknown): v is { items: unknown[] } {
  return (
    !!v &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Array.isArray((v as { items?: unknown }).items) &&
    ((v as { kind?: unknown }).kind === undefined || (v as { kind?: unknown }).kind === 'List')
  );
}

/**
 * An object as a document `apply -f` takes back unchanged (what `get -o yaml|json` prints):
 * `kind`, `name`, `version` (so a re-apply is refused if the object changed meanwhile),
 * `labels` and the fields a client may write; everything Formwork sets — id, times,
 * read-only fields such as `state` — goes under `status:`, which apply ignores. A Deployment
 * comes back in its document's shape: its spec's `nodes` and `roles` at the top, and
 * `commit: false` while it is only proposed (so applying it does not commit it).
 */
export function documentOf(kind: KindDef, object: StoredObject): Record<string, unknown> {
  const writable = new Set(kind.fields.filter((f) => !f.readOnly).map((f) => f.name));
  const doc: Record<string, unknown> = { kind: kind.kind, name: object.name, version: object.version };
  if (object.labels && Object.keys(object.labels).length) doc.labels = object.labels;
  const status: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object)) {
    if (k === 'name' || k === 'version' || k === 'labels' || v === null || v === undefined) continue;
    if (writable.has(k)) doc[k] = v;
    else status[k] = v;
  }
  if (kind.kind === 'Deployment') {
    const { spec, attribs, ...rest } = doc;
    const { nodes, roles } = (spec ?? {}) as { nodes?: unknown; roles?: unknown };
    return {
      ...rest,
      ...(nodes ? { nodes } : {}),
      ...(roles ? { roles } : {}),
      ...(attribs ? { attribs } : {}),
      ...(object.state === 'proposed' ? { commit: false } : {}),
      status,
    };
  }
  return { ...doc, status };
}
