import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The import rules of docs/architecture.md ("Layering"), enforced. The table there is the
 * one statement of which area may import which: this test reads it, so the two cannot
 * drift. Test files (*.test.ts) and testing/ helpers are exempt: they build fixtures from
 * any layer (a store test starts an engine, a CLI test starts a server).
 */

const SRC = path.resolve(import.meta.dirname);
const DOC = path.resolve(SRC, '../docs/architecture.md');

type ImportKind = 'static' | 'type' | 'dynamic';
interface Import {
  from: string; // path relative to src/
  to: string;
  kind: ImportKind;
}

function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'testing' && e.name !== 'node_modules') out.push(...sourceFiles(p));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
      out.push(p);
    }
  }
  return out;
}

/** The relative imports of one file's text: static, type-only and dynamic `import()`. */
export function parseImports(text: string): { spec: string; kind: ImportKind }[] {
  const found: { spec: string; kind: ImportKind }[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?[^;]*?\sfrom\s+['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(statement)) found.push({ spec: m[3], kind: m[2] ? 'type' : 'static' });
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) found.push({ spec: m[1], kind: 'static' });
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push({ spec: m[1], kind: 'dynamic' });
  return found.filter((i) => i.spec.startsWith('.'));
}

function allImports(): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles()) {
    for (const { spec, kind } of parseImports(fs.readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      out.push({ from: path.relative(SRC, file), to: path.relative(SRC, target), kind });
    }
  }
  return out;
}

/** A file's area: its top-level folder under src/ (or, for a file there, its name). */
function areaOf(rel: string): string {
  const [first, ...rest] = rel.split(path.sep);
  return rest.length ? first : first.replace(/\.ts$/, '');
}

interface Allowed {
  /** Areas this one may import in any way. */
  any: Set<string>;
  /** Areas it may import only with `import type` (no code loaded). */
  types: Set<string>;
  /** Areas it may import only through `import()` (loaded when a command needs it). */
  dynamic: Set<string>;
}

/** The "| area | may import |" table of docs/architecture.md. */
function allowedTable(): Map<string, Allowed> {
  const doc = fs.readFileSync(DOC, 'utf8');
  const table = new Map<string, Allowed>();
  for (const m of doc.matchAll(/^\|\s*`([a-z.-]+)`\s*\|([^|\n]*)\|/gm)) {
    const allowed: Allowed = { any: new Set(), types: new Set(), dynamic: new Set() };
    for (const entry of m[2].split(',').map((s) => s.trim()).filter((s) => s && s !== '—')) {
      const e = /^`([a-z.-]+)`(?: \((types|dynamic)\))?$/.exec(entry);
      if (!e) throw new Error(`docs/architecture.md: cannot read "${entry}" in the row of ${m[1]}`);
      (e[2] === 'types' ? allowed.types : e[2] === 'dynamic' ? allowed.dynamic : allowed.any).add(e[1]);
    }
    table.set(m[1], allowed);
  }
  return table;
}

/** Every cycle's members (strongly connected components of more than one node, or a self-loop). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return out;
}

function graph(imports: Import[], node: (rel: string) => string): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const i of imports) {
    const a = node(i.from);
    const b = node(i.to);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)!.add(b);
  }
  return edges;
}

/** Names the imports that make up a cycle, so a failure says which lines to change. */
function describeCycle(members: string[], imports: Import[], node: (rel: string) => string): string {
  const inside = new Set(members);
  const lines = imports.filter((i) => node(i.from) !== node(i.to) && inside.has(node(i.from)) && inside.has(node(i.to)));
  return `${members.join(' ↔ ')}: ${lines.map((i) => `${i.from} → ${i.to}`).join('; ')}`;
}

describe('layering (docs/architecture.md)', () => {
  const imports = allImports();
  const table = allowedTable();

  it('reads static, type-only and dynamic imports', () => {
    const seen = parseImports(
      "import { a } from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nimport './d.js';\nimport x from 'kysely';\nconst e = await import('./e.js');\n",
    );
    expect(seen).toEqual([
      { spec: './a.js', kind: 'static' },
      { spec: '../b.js', kind: 'type' },
      { spec: './c.js', kind: 'static' },
      { spec: './d.js', kind: 'static' },
      { spec: './e.js', kind: 'dynamic' },
    ]);
    // the real tree: `formwork server` loads the server only when run
    expect(imports).toContainEqual({ from: path.join('cli', 'commands', 'server.ts'), to: path.join('server', 'server.ts'), kind: 'dynamic' });
  });

  it('has a row for every area, and core imports nothing', () => {
    const areas = new Set(sourceFiles().map((f) => areaOf(path.relative(SRC, f))));
    expect([...areas].filter((a) => !table.has(a)).sort()).toEqual([]);
    const core = table.get('core')!;
    expect([...core.any, ...core.types, ...core.dynamic]).toEqual([]);
  });

  it('every import between areas is one the table allows', () => {
    const bad: string[] = [];
    for (const i of imports) {
      const a = areaOf(i.from);
      const b = areaOf(i.to);
      if (a === b) continue;
      const allowed = table.get(a);
      const ok =
        !!allowed &&
        (allowed.any.has(b) || (allowed.types.has(b) && i.kind === 'type') || (allowed.dynamic.has(b) && i.kind === 'dynamic'));
      if (!ok) bad.push(`${i.from} → ${i.to} (${i.kind}): ${a} may not import ${b}`);
    }
    expect(bad).toEqual([]);
  });

  it('the areas import each other in no cycle', () => {
    const found = cycles(graph(imports, areaOf)).map((c) => describeCycle(c, imports, areaOf));
    expect(found).toEqual([]);
  });

  it.each(['core', 'store'])('the files of %s import each other in no cycle', (area) => {
    const within = imports.filter((i) => areaOf(i.from) === area && areaOf(i.to) === area);
    const found = cycles(graph(within, (f) => f)).map((c) => describeCycle(c, within, (f) => f));
    expect(found).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const fake: Import[] = [
      { from: 'a/x.ts', to: 'b/y.ts', kind: 'static' },
      { from: 'b/y.ts', to: 'c/z.ts', kind: 'type' },
      { from: 'c/z.ts', to: 'a/x.ts', kind: 'dynamic' },
    ];
    expect(cycles(graph(fake, areaOf)).map((c) => describeCycle(c, fake, areaOf))).toEqual([
      'a ↔ b ↔ c: a/x.ts → b/y.ts; b/y.ts → c/z.ts; c/z.ts → a/x.ts',
    ]);
  });

  it('only the API loads core/wire.ts (TypeBox) as code; every other area imports its types', () => {
    // The server opens its store and starts its engine before it loads the HTTP layer, and
    // the CLI never loads it: neither pays for TypeBox ("Build and start-up" above).
    const wire = path.join('core', 'wire.ts');
    const found = imports.filter((i) => i.to === wire && i.kind !== 'type' && areaOf(i.from) !== 'api').map((i) => `${i.from} (${i.kind})`);
    expect(found).toEqual([]);
  });
});
