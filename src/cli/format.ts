import { InvalidArgumentError } from 'commander';
import { stringify } from 'yaml';
import { parseDuration } from '../core/durations.js';
import { KINDS, kindByName, type KindDef, type StoredObject } from '../core/kinds.js';

/**
 * Output helpers for the CLI: tables (kubectl style), ages, durations, and the
 * readable `describe` view.
 *
 * @example
 *   renderTable(['NAME', 'AGE'], [['web-1', '5m']]); // "NAME    AGE\nweb-1   5m\n"
 *   durationOption('1h30m');                        // 5400 (seconds)
 */

export type OutputFormat = 'table' | 'json' | 'yaml';

/** One apply result as a line: `provider/lab created`. */
export function applyResultLine(r: { kind: string; name: string; action: string }): string {
  return `${kindByName(r.kind)?.singular ?? r.kind.toLowerCase()}/${r.name} ${r.action}`;
}

export function parseOutputFormat(v: string): OutputFormat {
  const f = v.toLowerCase();
  if (f === 'table' || f === 'wide') return 'table';
  if (f === 'json' || f === 'yaml') return f;
  throw new InvalidArgumentError('expected table, json or yaml.');
}

/** Renders rows under headers, columns separated by three spaces, no trailing blanks. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map((r) => line(headers.map((_, i) => clean(r[i] ?? ''))))].join('\n') + '\n';
}

/** One line, no control characters: keeps tables aligned whatever a field holds. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/**
 * The first line of a message, without control characters (a terminal would act on them).
 *
 * @example
 *   oneLine('\nfailed: exit 1\nmore')  // → 'failed: exit 1'
 */
export function oneLine(text: string): string {
  return (text.split(/\r?\n/).find((l) => l.trim()) ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

/**
 * `text` cut to `width` characters (code points), marking the cut.
 *
 * @example
 *   fit('etcd-member running', 8)  // → 'etcd-me…'
 */
export function fit(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, width - 1).join('') + '…';
}

/** A compact age like kubectl's: 45s, 12m, 5h, 3d, 2y. */
export function humanAge(from: string | undefined, now: number = Date.now()): string {
  if (!from) return '<unknown>';
  const t = Date.parse(from);
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 730) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** A commander option parser for a duration (core/durations.ts): seconds, or a usage error that says what a duration looks like. */
export function durationOption(text: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

interface Column {
  header: string;
  value: (o: StoredObject) => string;
}

const field =
  (name: string) =>
  (o: StoredObject): string => {
    const v = o[name];
    if (v === undefined || v === null || v === '') return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  };

const col = (header: string, name: string): Column => ({ header, value: field(name) });

/** The first public address, else the first address, of a node. */
function primaryAddress(o: StoredObject): string {
  const list = Array.isArray(o.addresses) ? (o.addresses as Array<{ address?: string; role?: string }>) : [];
  const pick = list.find((a) => a.role === 'public') ?? list[0];
  return pick?.address ?? '';
}

/** STATE, or where a deletion is under way (its `deletion`) `deleting`, or `deletion-failed` once it gave up. */
const stateCol: Column = {
  header: 'STATE',
  value: (o) => {
    const d = o.deletion as { failed?: boolean } | null | undefined;
    return d ? (d.failed ? 'deletion-failed' : 'deleting') : field('state')(o);
  },
};

/** Columns between NAME and AGE, per kind plural. Kinds not listed get a generic set. */
const KIND_COLUMNS: Record<string, Column[]> = {
  providers: [col('TYPE', 'type'), stateCol],
  nodes: [
    col('PROVIDER', 'provider'),
    stateCol,
    { header: 'ADDRESS', value: primaryAddress },
    col('SIZE', 'sizeNormalized'),
    col('IMAGE', 'imageNormalized'),
    col('DEPLOYMENT', 'deployment'),
  ],
  workloads: [col('VERSION', 'workloadVersion')],
  roles: [col('WORKLOAD', 'workload')],
  deployments: [col('PROVIDER', 'provider'), stateCol],
  noderoles: [col('DEPLOYMENT', 'deployment'), col('NODE', 'node'), col('ROLE', 'role'), col('STATE', 'state')],
  runs: [col('NODE', 'node'), col('ROLE', 'role'), col('ATTEMPT', 'attempt'), col('STATE', 'state'), col('EXIT', 'exitCode')],
  users: [col('ROLE', 'role')],
  secrets: [{ header: 'KEYS', value: (o) => (Array.isArray(o.keys) ? (o.keys as unknown[]).join(',') : field('keys')(o)) }],
};

const GENERIC_FIELDS = ['type', 'provider', 'deployment', 'node', 'role', 'workload', 'state'];

export function columnsFor(kind: KindDef): Column[] {
  const own = KIND_COLUMNS[kind.plural] ?? kind.fields
    .filter((f) => GENERIC_FIELDS.includes(f.name) && f.type !== 'json')
    .map((f) => col(f.name.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase(), f.name));
  return [{ header: 'NAME', value: (o) => o.name ?? o.id }, ...own];
}

export function renderObjects(kind: KindDef, objects: StoredObject[], now: number = Date.now()): string {
  const cols = columnsFor(kind);
  return renderTable(
    [...cols.map((c) => c.header), 'AGE'],
    // Empty cells read <none> (as kubectl's), so `awk '{print $3}'` still finds the column.
    objects.map((o) => [...cols.map((c) => c.value(o) || '<none>'), humanAge(o.createdAt, now)]),
  );
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

const pad = (label: string, width: number) => `${label}:`.padEnd(width + 2);

function titleOf(name: string): string {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === '' ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)
  );
}

function indent(text: string, by: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

/** The `describe` view: a header block, then the kind's fields in their declared order. */
export function describeObject(kind: KindDef, o: StoredObject, now: number = Date.now()): string {
  const lines: Array<[string, unknown]> = [
    ['Kind', kind.kind],
    ['Name', o.name],
    ['ID', o.id],
    ['Version', o.version],
    ['Labels', isEmpty(o.labels) ? '<none>' : Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['Created', o.createdAt ? `${o.createdAt} (${humanAge(o.createdAt, now)} ago)` : undefined],
    ['Updated', o.updatedAt ? `${o.updatedAt} (${humanAge(o.updatedAt, now)} ago)` : undefined],
  ];
  const known = new Set<string>(['id', 'name', 'version', 'labels', 'createdAt', 'updatedAt', 'kind']);
  const rest: Array<[string, unknown]> = [];
  for (const f of kind.fields) {
    known.add(f.name);
    rest.push([titleOf(f.name), o[f.name]]);
  }
  for (const [k, v] of Object.entries(o)) if (!known.has(k)) rest.push([titleOf(k), v]);

  const all = [...lines, ...rest].filter(([, v]) => !isEmpty(v));
  const width = Math.max(...all.map(([l]) => l.length));
  const out: string[] = [];
  for (const [label, v] of all) {
    if (typeof v === 'object' && v !== null) {
      out.push(`${label}:`);
      out.push(indent(toYaml(v), '  '));
    } else if (typeof v === 'string' && v.includes('\n')) {
      out.push(`${label}:`);
      out.push(indent(v, '  '));
    } else {
      out.push(`${pad(label, width)}${String(v)}`);
    }
  }
  return out.join('\n') + '\n';
}

export function allKindsTable(): string {
  return renderTable(
    ['NAME', 'SINGULAR', 'KIND', 'DESCRIPTION'],
    KINDS.map((k) => [k.plural, k.singular, k.kind, k.description]),
  );
}
