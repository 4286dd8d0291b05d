import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { FormworkError } from '../core/errors.js';
import { roleFromObject, validateRoles, type RoleError, type RoleSpec } from '../core/roles.js';
import { mergeRoleErrors, parseRoleSpec } from '../core/role-spec.js';
import type { StoredObject } from '../core/kinds.js';
import { sameValue } from '../store/repository.js';
import type { Store } from '../store/store.js';
import { packageRoot } from '../package.js';

/**
 * Workload packs: a folder with `workload.yaml` (name, version, description, defaults,
 * roles) plus the files its roles use. A pack is checked whole — every problem reported
 * with its file, role and field — and refused whole if anything is wrong (docs/workloads.md).
 *
 * @example
 *   const { packs, refused } = await loadBuiltinPacks({ dataDir });
 *   await registerPacks(store, packs);
 */

export interface WorkloadPack {
  name: string;
  version: string;
  description?: string;
  /** Workload defaults: input name → value (the lowest precedence level). */
  defaults: Record<string, unknown>;
  roles: RoleSpec[];
  /** Every file the roles reference plus `templates/**` and `files/**`: path (relative to the pack) → text. */
  files: Record<string, string>;
  /** The folder it was loaded from (or a label for packs sent over the API). */
  source: string;
}

export const PACK_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const PACK_KEYS = ['name', 'version', 'description', 'defaults', 'roles'];
const FILE_FOLDERS = ['templates', 'files'];

/** The file name used in error reports for a pack's workload.yaml. */
export function packFile(source: string): string {
  return source && !source.startsWith('<') ? path.join(source, 'workload.yaml') : 'workload.yaml';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Parses a pack from the text of its workload.yaml and its files. Reports structural
 * problems (YAML, unknown keys, wrong types, files outside the pack); cross-role checks
 * are validatePacks' job (checkPack runs both). The pack is returned whenever the YAML is a
 * mapping, even with problems: a pack with any problem must still be refused whole.
 */
export function parsePack(workloadYaml: string, files: Record<string, string>, source = '<memory>'): { pack?: WorkloadPack; errors: RoleError[] } {
  const file = packFile(source);
  const errors: RoleError[] = [];
  const err = (message: string, role?: string, field?: string) => errors.push({ file, ...(role ? { role } : {}), ...(field ? { field } : {}), message });
  let doc: unknown;
  try {
    const parsed = YAML.parseDocument(workloadYaml, { prettyErrors: true });
    if (parsed.errors.length) {
      for (const e of parsed.errors) err(`YAML: ${e.message}`);
      return { errors };
    }
    doc = parsed.toJS();
  } catch (e) {
    err(`YAML: ${e instanceof Error ? e.message : String(e)}`);
    return { errors };
  }
  if (!isObject(doc)) {
    err('workload.yaml must be a mapping with name, version and roles');
    return { errors };
  }
  for (const k of Object.keys(doc)) if (!PACK_KEYS.includes(k)) err(`unknown key "${k}"; known: ${PACK_KEYS.join(', ')}`, undefined, k);
  const name = doc.name;
  if (typeof name !== 'string' || !PACK_NAME_PATTERN.test(name)) err(`the pack needs a "name" of lower-case letters, digits, ".", "_" or "-"; got ${JSON.stringify(name)}`, undefined, 'name');
  const version = typeof doc.version === 'number' ? String(doc.version) : doc.version;
  if (typeof version !== 'string' || !version) err('the pack needs a "version" (e.g. 1.0.0)', undefined, 'version');
  if (doc.description !== undefined && typeof doc.description !== 'string') err('"description" must be text', undefined, 'description');
  if (doc.defaults !== undefined && !isObject(doc.defaults)) err('"defaults" must be a mapping of input name → value', undefined, 'defaults');
  if (!Array.isArray(doc.roles)) err('"roles" must be a list', undefined, 'roles');
  const workload = typeof name === 'string' ? name : '';
  const roles: RoleSpec[] = [];
  for (const [i, raw] of (Array.isArray(doc.roles) ? doc.roles : []).entries()) {
    const role = parseRoleSpec(raw, i, workload, (message, r, field) => err(message, r, field));
    if (role) roles.push(role);
  }
  // Files must stay inside the pack and exist.
  for (const r of roles) {
    for (const [field, impl] of implementationsOf(r)) {
      if (typeof impl.file === 'string' && !isSafeRelative(impl.file)) err(`${field} file "${impl.file}" must be a relative path inside the pack`, r.name, `${field}.file`);
    }
  }
  // The pack comes back with its problems, so the checks across roles run in the same pass.
  return {
    pack: {
      name: workload,
      version: version as string,
      ...(typeof doc.description === 'string' ? { description: doc.description } : {}),
      defaults: (doc.defaults as Record<string, unknown>) ?? {},
      roles,
      files,
      source,
    },
    errors,
  };
}

function isSafeRelative(p: string): boolean {
  return !!p && !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..');
}

/**
 * Checks packs together (requires may cross packs), with `context` = roles of other
 * workloads already known (e.g. registered ones). Returns the problems of each pack by name;
 * context roles are not reported on.
 */
export function validatePacks(packs: WorkloadPack[], context: RoleSpec[] = []): Map<string, RoleError[]> {
  const names = new Set(packs.map((p) => p.name));
  const fileOfRole = new Map<RoleSpec, string>();
  for (const p of packs) for (const r of p.roles) fileOfRole.set(r, packFile(p.source));
  const ctx = context.filter((r) => !names.has(r.workload));
  // Context first, so a pack role clashing with a known role is the one reported.
  const own = packs.flatMap((p) => p.roles);
  const errors = validateRoles([...ctx, ...own], {
    subjects: new Set(own),
    files: Object.fromEntries(packs.map((p) => [p.name, p.files])),
    fileOf: (r) => fileOfRole.get(r) ?? `${r.workload}/workload.yaml`,
  });
  const byPack = new Map<string, RoleError[]>();
  const packOfFile = new Map(packs.map((p) => [packFile(p.source), p.name] as const));
  for (const e of errors) {
    const p = packOfFile.get(e.file);
    if (!p) continue;
    byPack.set(p, [...(byPack.get(p) ?? []), e]);
  }
  return byPack;
}

export function workloadInvalid(name: string, errors: RoleError[]): FormworkError {
  const head = errors.slice(0, 5).map((e) => `${e.role ? `${e.role}: ` : ''}${e.field ? `${e.field}: ` : ''}${e.message}`).join('; ');
  return new FormworkError(
    'WORKLOAD_INVALID',
    `workload "${name}" is invalid (${errors.length} problem${errors.length === 1 ? '' : 's'}): ${head}${errors.length > 5 ? '; …' : ''}`,
    { workload: name, errors },
  );
}

/** The role's implementation and, when it has one, its removal step, by field name. */
function implementationsOf(r: RoleSpec): Array<[string, { file?: unknown }]> {
  const out: Array<[string, { file?: unknown }]> = [['implementation', (r.implementation ?? {}) as { file?: unknown }]];
  if (r.removal && typeof r.removal === 'object') out.push(['removal', r.removal as { file?: unknown }]);
  return out;
}

/** Reads the files a pack needs: every implementation file its roles name, and everything under templates/ and files/. */
function readPackFiles(dir: string, roles: RoleSpec[]): Record<string, string> {
  const files: Record<string, string> = {};
  const add = (rel: string) => {
    const abs = path.join(dir, rel);
    if (!(rel in files) && fs.existsSync(abs) && fs.statSync(abs).isFile()) files[rel.split(path.sep).join('/')] = fs.readFileSync(abs, 'utf8');
  };
  for (const r of roles) {
    for (const [, impl] of implementationsOf(r)) if (typeof impl.file === 'string') add(impl.file); // parsePack has refused a path outside the pack
  }
  for (const folder of FILE_FOLDERS) {
    const walk = (rel: string) => {
      const abs = path.join(dir, rel);
      if (!fs.existsSync(abs)) return;
      for (const e of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const r = path.join(rel, e.name);
        if (e.isDirectory()) walk(r);
        else if (e.isFile()) add(r);
      }
    };
    walk(folder);
  }
  return files;
}

/** Reads one pack folder; structural problems only (see checkPack for the full check). */
export function readPack(dir: string): { pack?: WorkloadPack; errors: RoleError[] } {
  const source = path.resolve(dir);
  const yamlPath = path.join(source, 'workload.yaml');
  if (!fs.existsSync(yamlPath)) return { errors: [{ file: yamlPath, message: `no workload.yaml in ${source}` }] };
  // Parsed once: the roles name the files to read.
  const { pack, errors } = parsePack(fs.readFileSync(yamlPath, 'utf8'), {}, source);
  return pack ? { pack: { ...pack, files: readPackFiles(source, pack.roles) }, errors } : { errors };
}

/**
 * Loads and checks one pack folder against `context` (roles of other packs it may
 * require). Throws WORKLOAD_INVALID listing every problem.
 */
export function loadPack(dir: string, opts: { context?: RoleSpec[] } = {}): WorkloadPack {
  const { pack, errors } = checkPacksRead([readPack(dir)], opts.context);
  if (!pack || errors.length) throw workloadInvalid(pack?.name ?? path.basename(path.resolve(dir)), errors);
  return pack;
}

/**
 * Every problem of packs as read (readPack, parsePack), in one pass: their structural
 * problems and those of their roles checked together with `context` (the roles of other
 * packs they may require). `pack` is the first pack, for callers that read one.
 */
export function checkPacksRead(read: Array<{ pack?: WorkloadPack; errors: RoleError[] }>, context: RoleSpec[] = []): { pack?: WorkloadPack; errors: RoleError[] } {
  const packs = read.flatMap((r) => (r.pack ? [r.pack] : []));
  const checked = validatePacks(packs, context);
  const errors = read.flatMap((r) => (r.pack ? mergeRoleErrors(r.errors, checked.get(r.pack.name) ?? []) : r.errors));
  return { ...(read[0]?.pack ? { pack: read[0].pack } : {}), errors };
}

/** Checks a pack sent as text (the API's validate endpoint): every problem, or []. */
export function checkPackText(workloadYaml: string, files: Record<string, string>, context: RoleSpec[] = []): { pack?: WorkloadPack; errors: RoleError[] } {
  const { pack, errors } = checkPacksRead([parsePack(workloadYaml, files, '<request>')], context);
  return errors.length ? { errors } : { pack, errors };
}

/** Pack folders under a folder: the folder itself if it holds workload.yaml, else its sub-folders that do (sorted). */
export function packFolders(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  if (fs.existsSync(path.join(dir, 'workload.yaml'))) return [path.resolve(dir)];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'workload.yaml')))
    .map((e) => path.resolve(dir, e.name))
    .sort();
}

export interface LoadPacksOptions {
  /** Adds `<dataDir>/workloads/*`. */
  dataDir?: string;
  /** Extra folders (default: FORMWORK_WORKLOADS_PATH, colon-separated); each a pack or a folder of packs. */
  paths?: string[];
  /** Include the built-in packs of the repo (default true). */
  builtin?: boolean;
}

export interface LoadPacksResult {
  packs: WorkloadPack[];
  /** Packs refused whole, with every problem. */
  refused: Array<{ source: string; error: FormworkError }>;
}

/**
 * Loads the built-in packs (`workloads/*` of the package), then `<dataDir>/workloads/*`,
 * then FORMWORK_WORKLOADS_PATH; a later pack with the same name replaces an earlier one.
 * Packs are checked together; a pack with any problem is refused whole (and packs that
 * then lose a role they require are refused in turn).
 */
export function loadBuiltinPacks(opts: LoadPacksOptions = {}): LoadPacksResult {
  return checkPacks(readPacks(opts));
}

/** The packs loadBuiltinPacks loads, read and parsed but not yet checked together (structural problems only). */
export function readPacks(opts: LoadPacksOptions = {}): LoadPacksResult {
  const dirs: string[] = [];
  if (opts.builtin !== false) dirs.push(...packFolders(path.join(packageRoot(), 'workloads')));
  if (opts.dataDir) dirs.push(...packFolders(path.join(opts.dataDir, 'workloads')));
  const extra = opts.paths ?? (process.env.FORMWORK_WORKLOADS_PATH ?? '').split(':').filter(Boolean);
  for (const p of extra) dirs.push(...packFolders(p));

  const refused: LoadPacksResult['refused'] = [];
  const byName = new Map<string, WorkloadPack>();
  for (const dir of dirs) {
    const { pack, errors } = readPack(dir);
    if (!pack || errors.length) refused.push({ source: dir, error: workloadInvalid(path.basename(dir), errors) });
    else byName.set(pack.name, pack);
  }
  return { packs: [...byName.values()], refused };
}

/** Checks read packs together, refusing each pack with a problem (and, in turn, those that lose a role they require). */
export function checkPacks(read: LoadPacksResult): LoadPacksResult {
  const refused = [...read.refused];
  let packs = read.packs;
  for (;;) {
    const errs = validatePacks(packs);
    if (errs.size === 0) return { packs, refused };
    for (const [name, list] of errs) refused.push({ source: packs.find((p) => p.name === name)!.source, error: workloadInvalid(name, list) });
    packs = packs.filter((p) => !errs.has(p.name));
  }
}

export interface RegisterResult {
  workloads: Array<{ name: string; action: 'created' | 'updated' | 'unchanged' }>;
  rolesChanged: number;
  rolesDeleted: string[];
}

/** A pack as registerPacks stores it: its workload object and its roles'. */
function storedForm(p: WorkloadPack): { workload: Record<string, unknown>; roles: Array<Record<string, unknown>> } {
  return {
    workload: { name: p.name, workloadVersion: p.version, description: p.description ?? null, source: p.source, defaults: p.defaults, files: p.files },
    roles: p.roles.map((r) => ({ name: r.name, workload: p.name, description: r.description ?? null, spec: r })),
  };
}

/**
 * True when registering these packs would write nothing: every workload and role is stored
 * as given (compared as `apply` compares) and no other role of those workloads is. What is
 * stored passed registerPacks' checks when it was written, so packs unchanged since then
 * need not be checked again (a server's second start skips compiling their schemas).
 */
export async function packsStored(store: Store, packs: WorkloadPack[]): Promise<boolean> {
  const [workloads, roles] = await Promise.all([store.objects('workloads').all(), store.objects('roles').all()]);
  const same = (stored: StoredObject | undefined, input: Record<string, unknown>) =>
    stored !== undefined && Object.entries(input).every(([k, v]) => sameValue(stored[k], v ?? undefined));
  return packs.every((p) => {
    const form = storedForm(p);
    const theirs = roles.filter((r) => r.workload === p.name);
    return same(workloads.find((w) => w.name === p.name), form.workload) && theirs.length === form.roles.length && form.roles.every((r) => same(theirs.find((s) => s.name === r.name), r));
  });
}

/** The role catalogue as stored. */
export async function storedRoles(store: Store): Promise<RoleSpec[]> {
  return (await store.objects('roles').all()).map(roleFromObject);
}

/**
 * Stores packs and their roles (create or update by name) in one transaction; roles a
 * pack no longer has are deleted. Idempotent: unchanged packs write nothing (no new
 * version, no event). The packs are checked together with the roles of the other
 * workloads already stored; any problem refuses the whole call (WORKLOAD_INVALID).
 */
export async function registerPacks(store: Store, packs: WorkloadPack[], opts: { actor?: string } = {}): Promise<RegisterResult> {
  return store.transaction(async (tx) => {
    const rolesRepo = tx.objects('roles');
    const existingRoles = await rolesRepo.all();
    const errs = validatePacks(packs, existingRoles.map((r) => r.spec as RoleSpec));
    if (errs.size) {
      const all = [...errs.values()].flat();
      const [first] = errs.keys();
      throw errs.size === 1 ? workloadInvalid(first, all) : new FormworkError('WORKLOAD_INVALID', `${errs.size} workloads are invalid: ${[...errs.keys()].join(', ')}`, { errors: all });
    }
    const result: RegisterResult = { workloads: [], rolesChanged: 0, rolesDeleted: [] };
    for (const p of packs) {
      const form = storedForm(p);
      const { action } = await tx.objects('workloads').apply(form.workload, { actor: opts.actor });
      result.workloads.push({ name: p.name, action });
      for (const r of form.roles) {
        const res = await rolesRepo.apply(r, { actor: opts.actor });
        if (res.action !== 'unchanged') result.rolesChanged++;
      }
      const keep = new Set(p.roles.map((r) => r.name));
      for (const old of existingRoles.filter((o: StoredObject) => o.workload === p.name && !keep.has(o.name))) {
        await rolesRepo.delete(old.id, { actor: opts.actor });
        result.rolesDeleted.push(old.name);
      }
    }
    return result;
  });
}
