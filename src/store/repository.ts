import type { Executor } from './db.js';
import { FormworkError } from '../core/errors.js';
import { ID_PREFIX, newId } from '../core/ids.js';
import { COMMON_FIELDS, columnName, type FieldDef, type KindDef, type StoredObject } from '../core/kinds.js';
import { compileSchema, type CompiledSchema } from '../core/schema.js';
import type { EventLog } from './events.js';

/**
 * Create, read, update, delete and list for any kind, driven by its descriptor in
 * core/kinds.ts. Every write bumps the object's version, keeps its labels table in step
 * and appends an event in the same transaction, so the event stream never disagrees
 * with the state.
 */

export interface WriteOptions {
  actor?: string;
  /** Optimistic concurrency: the write happens only if the stored version is this one. */
  expectedVersion?: number;
}

export interface ListQuery {
  /** Field filters, `{ state: 'active' }`; values compare as text. */
  filters?: Record<string, string | number | boolean>;
  labels?: Record<string, string>;
  limit?: number;
  /** Return items after this id (the `next` of the previous page). */
  after?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

export type ApplyAction = 'created' | 'updated' | 'unchanged';

const MAX_PAGE = 1000;

export class ObjectRepository<T extends StoredObject = StoredObject> {
  constructor(
    readonly kind: KindDef,
    private readonly db: Executor,
    /** Runs fn in a transaction (or in the current one). */
    private readonly inTransaction: <T>(fn: (db: Executor, events: EventLog) => Promise<T>) => Promise<T>,
  ) {}

  private get table(): string {
    return this.kind.plural;
  }

  /** Columns other than the common ones: kind fields plus private columns a store keeps (e.g. ciphertext). */
  private fieldNames(): string[] {
    return this.kind.fields.map((f) => f.name);
  }

  toObject(row: Record<string, unknown>): T {
    const obj: StoredObject = {
      id: row.id as string,
      name: row.name as string,
      version: Number(row.version),
      labels: parseJson(row.labels, {}) as Record<string, string>,
      createdAt: row.created_at as string,
      updatedAt: row.updated_at as string,
    };
    for (const f of this.kind.fields) {
      const v = row[columnName(f.name)];
      if (v === null || v === undefined) continue;
      if (f.type === 'json') obj[f.name] = parseJson(v, null);
      else if (f.type === 'integer') obj[f.name] = Number(v);
      else if (f.type === 'boolean') obj[f.name] = v === 1 || v === true || v === '1';
      else obj[f.name] = v;
    }
    // Read by the kind's own field list: the shape its type (core/objects.ts) describes.
    return obj as T;
  }

  private toRow(fields: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const row: Record<string, unknown> = { ...extra };
    for (const f of this.kind.fields) {
      if (!(f.name in fields)) continue;
      const v = fields[f.name];
      const col = columnName(f.name);
      if (v === undefined || v === null) row[col] = null;
      else if (f.type === 'json') row[col] = jsonText(this.kind, f.name, checkedJson(this.kind, f, v));
      else if (f.type === 'boolean') row[col] = v ? 1 : 0;
      else row[col] = v;
    }
    return row;
  }

  private checkFields(input: Record<string, unknown>): void {
    const allowed = new Set<string>([...COMMON_FIELDS, 'kind', ...this.fieldNames()]);
    const unknown = Object.keys(input).filter((k) => !allowed.has(k));
    if (unknown.length) {
      throw new FormworkError(
        'VALIDATION',
        `${this.kind.kind} has no field${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; known fields: ${['name', 'labels', ...this.fieldNames()].join(', ')}`,
        { kind: this.kind.plural, unknownFields: unknown },
      );
    }
  }

  async find(idOrName: string, db: Executor = this.db): Promise<T | undefined> {
    const row = await db
      .selectFrom(this.table)
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .executeTakeFirst();
    return row ? this.toObject(row) : undefined;
  }

  async get(idOrName: string, db: Executor = this.db): Promise<T> {
    const obj = await this.find(idOrName, db);
    if (!obj) {
      throw new FormworkError('NOT_FOUND', `${this.kind.singular} "${idOrName}" does not exist`, {
        kind: this.kind.plural,
        key: idOrName,
      });
    }
    return obj;
  }

  /** Reads a column the kind does not expose (a secret's ciphertext), for the store's own use. */
  async privateColumn(id: string, column: string): Promise<unknown> {
    const row = await this.db.selectFrom(this.table).select(column).where('id', '=', id).executeTakeFirst();
    return row?.[column];
  }

  async list(query: ListQuery = {}): Promise<Page<T>> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), MAX_PAGE);
    let q = this.db.selectFrom(this.table).selectAll();
    for (const [field, value] of Object.entries(query.filters ?? {})) {
      const def = this.kind.fields.find((f) => f.name === field);
      if (!def && field !== 'name') {
        throw new FormworkError('VALIDATION', `cannot filter ${this.kind.plural} by "${field}"`, {
          filterable: ['name', ...this.kind.fields.filter((f) => f.filterable).map((f) => f.name)],
        });
      }
      q = q.where(field === 'name' ? 'name' : columnName(field), '=', def?.type === 'integer' ? Number(value) : String(value));
    }
    for (const [key, value] of Object.entries(query.labels ?? {})) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('labels')
            .select('labels.key')
            .whereRef('labels.object_id', '=', `${this.table}.id`)
            .where('labels.key', '=', key)
            .where('labels.value', '=', value),
        ),
      );
    }
    if (query.after) q = q.where('id', '>', query.after);
    const rows = await q.orderBy('id').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map((r) => this.toObject(r));
    return rows.length > limit ? { items, next: items[items.length - 1].id } : { items };
  }

  /** Every object matching the query, across pages. For internal use on bounded sets. */
  async all(query: Omit<ListQuery, 'limit' | 'after'> = {}): Promise<T[]> {
    const out: T[] = [];
    let after: string | undefined;
    do {
      const page = await this.list({ ...query, limit: MAX_PAGE, after });
      out.push(...page.items);
      after = page.next;
    } while (after);
    return out;
  }

  async create(input: Record<string, unknown>, opts: WriteOptions = {}, extraColumns: Record<string, unknown> = {}): Promise<T> {
    this.checkFields(input);
    const name = input.name;
    if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._:@-]{0,252}$/.test(name)) {
      throw new FormworkError(
        'VALIDATION',
        `${this.kind.singular} name must be 1-253 characters of letters, digits, ".", "_", ":", "@" or "-", starting with a letter or digit; got ${JSON.stringify(name)}`,
        { field: 'name' },
      );
    }
    for (const f of this.kind.fields) {
      if (f.required && (input[f.name] === undefined || input[f.name] === null)) {
        throw new FormworkError('VALIDATION', `${this.kind.singular} "${name}" needs the field "${f.name}"`, { field: f.name });
      }
    }
    const labels = checkLabels(input.labels);
    return this.inTransaction(async (db, events) => {
      if (await this.find(name, db)) {
        throw new FormworkError('ALREADY_EXISTS', `${this.kind.singular} "${name}" already exists`, { kind: this.kind.plural, key: name });
      }
      const now = new Date().toISOString();
      const id = (typeof input.id === 'string' && input.id) || newId(ID_PREFIX[this.kind.plural] ?? 'ob');
      const row = this.toRow(input, {
        ...extraColumns,
        id,
        name,
        version: 1,
        labels: JSON.stringify(labels),
        created_at: now,
        updated_at: now,
      });
      await db.insertInto(this.table).values(row).execute();
      await this.writeLabels(db, id, labels);
      const obj = this.toObject(row);
      await events.append(db, { type: this.kind.plural, action: 'created', key: name, actor: opts.actor, object: obj });
      return obj;
    });
  }

  /**
   * Changes the given fields (a merge at the top level; `null` clears a field).
   * Returns the object unchanged, without a new version or event, when nothing differs.
   */
  async update(idOrName: string, patch: Record<string, unknown>, opts: WriteOptions = {}, extraColumns: Record<string, unknown> = {}): Promise<T> {
    this.checkFields(patch);
    return this.inTransaction(async (db, events) => {
      const current = await this.get(idOrName, db);
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== current.version) {
        throw versionMismatch(this.kind, current, opts.expectedVersion);
      }
      if (patch.name !== undefined && patch.name !== current.name) {
        throw new FormworkError('VALIDATION', `${this.kind.singular} "${current.name}" cannot be renamed`, { field: 'name' });
      }
      const changed: string[] = [];
      const fields: Record<string, unknown> = {};
      for (const f of this.kind.fields) {
        if (!(f.name in patch)) continue;
        const next = patch[f.name] ?? undefined;
        if (!sameValue(current[f.name], next)) {
          changed.push(f.name);
          fields[f.name] = next;
        }
      }
      let labels = current.labels;
      if (patch.labels !== undefined) {
        const next = checkLabels(patch.labels);
        if (!sameValue(labels, next)) {
          labels = next;
          changed.push('labels');
        }
      }
      if (changed.length === 0 && Object.keys(extraColumns).length === 0) return current;
      const version = current.version + 1;
      const now = new Date().toISOString();
      const row = this.toRow(fields, { ...extraColumns, version, labels: JSON.stringify(labels), updated_at: now });
      const res = await db
        .updateTable(this.table)
        .set(row)
        .where('id', '=', current.id)
        .where('version', '=', current.version)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) {
        // Another writer got there between our read and our write (PostgreSQL, several processes).
        throw versionMismatch(this.kind, current, current.version);
      }
      if (changed.includes('labels')) await this.writeLabels(db, current.id, labels);
      const obj: StoredObject = { ...current, ...fields, labels, version, updatedAt: now };
      for (const k of Object.keys(fields)) if (fields[k] === undefined) delete obj[k];
      const action = changed.length === 1 && changed[0] === 'state' ? 'state' : 'updated';
      await events.append(db, { type: this.kind.plural, action, key: current.name, actor: opts.actor, object: { ...obj, changed } });
      return obj as T;
    });
  }

  async delete(idOrName: string, opts: WriteOptions = {}): Promise<T> {
    return this.inTransaction(async (db, events) => {
      const current = await this.get(idOrName, db);
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== current.version) {
        throw versionMismatch(this.kind, current, opts.expectedVersion);
      }
      const res = await db.deleteFrom(this.table).where('id', '=', current.id).where('version', '=', current.version).executeTakeFirst();
      if (Number(res.numDeletedRows) !== 1) {
        // Changed (or deleted) between our read and our delete: never delete a version nobody read.
        throw versionMismatch(this.kind, current, current.version);
      }
      await db.deleteFrom('labels').where('object_id', '=', current.id).execute();
      await events.append(db, { type: this.kind.plural, action: 'deleted', key: current.name, actor: opts.actor, object: current });
      return current;
    });
  }

  /**
   * Declarative create-or-update by name: what `formwork apply` does for each document.
   * Fields absent from the input are left as they are.
   */
  async apply(input: Record<string, unknown>, opts: WriteOptions = {}): Promise<{ object: T; action: ApplyAction }> {
    // No outer transaction: create refuses a name taken meanwhile, update checks the version.
    const existing = typeof input.name === 'string' ? await this.find(input.name) : undefined;
    if (!existing) return { object: await this.create(input, opts), action: 'created' };
    const { id: _id, version: _v, createdAt: _c, updatedAt: _u, kind: _k, ...patch } = input;
    const object = await this.update(existing.id, patch, { ...opts, expectedVersion: opts.expectedVersion ?? existing.version });
    return { object, action: object.version === existing.version ? 'unchanged' : 'updated' };
  }

  private async writeLabels(db: Executor, id: string, labels: Record<string, string>): Promise<void> {
    await db.deleteFrom('labels').where('object_id', '=', id).execute();
    const rows = Object.entries(labels).map(([key, value]) => ({ object_id: id, key, value }));
    if (rows.length) await db.insertInto('labels').values(rows).execute();
  }
}

/** The VERSION_MISMATCH error of a write that expected `expected` but found `current`. */
export function versionMismatch(kind: KindDef, current: StoredObject, expected: number): FormworkError {
  return new FormworkError(
    'VERSION_MISMATCH',
    `${kind.singular} "${current.name}" is at version ${current.version}, not ${expected}: it changed since you read it. Read it again and reapply your change.`,
    { kind: kind.plural, key: current.name, currentVersion: current.version, expectedVersion: expected },
  );
}

function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) {
    throw new FormworkError('VALIDATION', 'labels must be an object of string values, e.g. {"env": "prod"}', { field: 'labels' });
  }
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string' || !/^[a-zA-Z0-9._/-]{1,63}$/.test(k)) {
      throw new FormworkError('VALIDATION', `label "${k}" must have a key of letters, digits, ".", "_", "/" or "-" and a string value`, { field: `labels.${k}` });
    }
  }
  return labels as Record<string, string>;
}

/** A json field as text; a value nested so deeply that serializing it overflows the stack is refused. */
const fieldValidators = new WeakMap<FieldDef, CompiledSchema>();

/**
 * A JSON field's value checked against its descriptor's schema (core/kinds.ts), on every
 * write: the API checks what users send, and this holds the engine, the appliers and
 * test fixtures to the same shape, so nothing stored is what a document could not say.
 */
function checkedJson(kind: KindDef, f: FieldDef, v: unknown): unknown {
  if (!f.schema) return v;
  let c = fieldValidators.get(f);
  if (!c) fieldValidators.set(f, (c = compileSchema(f.schema)));
  if ('error' in c) throw new FormworkError('INTERNAL', `${kind.kind} field "${f.name}" has an invalid schema: ${c.error}`);
  if (!c.validate(v)) {
    throw new FormworkError('VALIDATION', `${kind.singular} field "${f.name}" does not match its schema: ${c.errors()}`, { kind: kind.plural, field: f.name });
  }
  return v;
}

function jsonText(kind: KindDef, field: string, v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new FormworkError('VALIDATION', `${kind.singular} field "${field}" is nested too deeply to store; flatten it`, { field });
  }
}

function parseJson(v: unknown, fallback: unknown): unknown {
  if (typeof v !== 'string') return v ?? fallback;
  try {
    return JSON.parse(v);
  } catch {
    return fallback;
  }
}

/** Deep equality for JSON values, ignoring object key order. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return (a ?? null) === (b ?? null);
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
