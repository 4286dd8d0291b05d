import { FormworkError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { StoredObject } from '../core/kinds.js';
import { GENERATED_KEY, generatedValues, isRemoving, normalizeOverride, randomToken, REMOVING_KEY } from '../core/attribs.js';
import { sealOwner, sealWriteFields } from '../store/sealing.js';
import { planDeployment, type PlanBinding, type PlannedNodeRole } from '../core/planner.js';
import { cmp, roleFromObject, type RoleSpec } from '../core/roles.js';
import { blockedReason as failureReason, failedAncestors } from '../engine/graph.js';
import { sameValue } from '../store/repository.js';
import type { Store } from '../store/store.js';
import type { FieldProblem } from '../core/schema.js';
import type { CommitResult, DeploymentTree, TreeNodeRole } from '../core/wire.js';
import type { DeploymentNodeSpec, DeploymentSpec, NodeRoleObject } from '../core/objects.js';
import { deploymentInputProblems, inputFieldProblems, inputsInvalid } from './deployment-inputs.js';
import type { Applier, ApplierValidate, ApplierValidateContext, ApplyContext, ApplyResult, Services } from '../context/services.js';
import { catalogueWith, checkVersion, refuseDeleting } from './writes.js';

/**
 * Deployments: the applier for `kind: Deployment` documents, commit, and the tree the
 * CLI's `describe deployment` shows.
 *
 * Applying plans the node-roles (src/core/planner.ts) and writes the deployment, its
 * nodes, node-roles and parent links in ONE transaction: a refused plan or any error
 * leaves the store as it was. Re-applying the same document writes nothing.
 *
 * @example
 *   registerDeploymentServices(services);
 *   await services.appliers.get('Deployment')!(yamlDoc, { actor: 'alice' });
 *   await new DeploymentService(services).commit('demo');
 */

/** Roles bound on every node of every deployment, when a loaded workload defines them. */
export const EVERY_NODE_ROLES = ['node-ready'];

/** The stored spec of a deployment (its types: core/objects.ts). */
export type { DeploymentNodeSpec, DeploymentSpec } from '../core/objects.js';

export interface DeploymentDocument {
  name: string;
  provider?: string;
  labels?: Record<string, string>;
  spec: DeploymentSpec;
  attribs: Record<string, unknown>;
  commit: boolean;
}

/** The tree `describe deployment` shows (its wire shape: core/wire.ts). */
export type { DeploymentTree, TreeNodeRole } from '../core/wire.js';

const DOC_KEYS = ['kind', 'name', 'provider', 'nodes', 'roles', 'attribs', 'commit', 'labels', 'apiVersion'];

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function invalid(message: string, field?: string): FormworkError {
  return new FormworkError('VALIDATION', message, field ? { field } : undefined);
}

/** Checks and normalizes a Deployment document (node indexes become node names). */
export function parseDeploymentDocument(doc: Record<string, unknown>): DeploymentDocument {
  const unknown = Object.keys(doc).filter((k) => !DOC_KEYS.includes(k));
  if (unknown.length) throw invalid(`a Deployment has no field${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${DOC_KEYS.slice(1).join(', ')}`, unknown[0]);
  const name = doc.name;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
    throw invalid(`a Deployment needs a "name" of lower-case letters, digits and "-" (at most 63); got ${JSON.stringify(name)}`, 'name');
  }
  if (doc.provider !== undefined && typeof doc.provider !== 'string') throw invalid('"provider" must be a provider name', 'provider');

  const nodes: DeploymentNodeSpec[] = [];
  const shape = (o: Record<string, unknown>, field: string): Omit<DeploymentNodeSpec, 'name'> => {
    for (const k of ['size', 'image']) if (o[k] !== undefined && typeof o[k] !== 'string') throw invalid(`"${field}.${k}" must be text`, `${field}.${k}`);
    return { ...(o.size !== undefined ? { size: o.size as string } : {}), ...(o.image !== undefined ? { image: o.image as string } : {}) };
  };
  if (doc.nodes === undefined) {
    // no nodes
  } else if (Array.isArray(doc.nodes)) {
    doc.nodes.forEach((n, i) => {
      if (typeof n === 'string') nodes.push({ name: n });
      else if (isObject(n)) {
        const bad = Object.keys(n).filter((k) => !['name', 'size', 'image'].includes(k));
        if (bad.length) throw invalid(`nodes[${i}] has no field "${bad[0]}" (name, size, image)`, `nodes[${i}].${bad[0]}`);
        if (n.name !== undefined && typeof n.name !== 'string') throw invalid(`nodes[${i}].name must be text`, `nodes[${i}].name`);
        nodes.push({ name: (n.name as string | undefined) ?? `${name}-${i}`, ...shape(n, `nodes[${i}]`) });
      } else throw invalid(`nodes[${i}] must be a node name or { name, size, image }`, `nodes[${i}]`);
    });
  } else if (isObject(doc.nodes)) {
    const bad = Object.keys(doc.nodes).filter((k) => !['count', 'size', 'image'].includes(k));
    if (bad.length) throw invalid(`"nodes" has no field "${bad[0]}" (count, size, image — or give a list of nodes)`, `nodes.${bad[0]}`);
    const count = doc.nodes.count;
    if (!Number.isInteger(count) || (count as number) < 0 || (count as number) > 10000) throw invalid('"nodes.count" must be an integer from 0 to 10000', 'nodes.count');
    const s = shape(doc.nodes, 'nodes');
    for (let i = 0; i < (count as number); i++) nodes.push({ name: `${name}-${i}`, ...s });
  } else throw invalid('"nodes" must be { count, size, image } or a list of nodes', 'nodes');
  const seen = new Set<string>();
  for (const n of nodes) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/.test(n.name)) throw invalid(`node name ${JSON.stringify(n.name)} must be letters, digits, ".", "_" or "-" (at most 63)`, 'nodes');
    if (seen.has(n.name)) throw invalid(`node "${n.name}" is listed twice`, 'nodes');
    seen.add(n.name);
  }

  const roles: DeploymentSpec['roles'] = {};
  if (doc.roles !== undefined && !isObject(doc.roles)) throw invalid('"roles" must be a mapping: role → { nodes: [indexes or names], inputs: {…} }', 'roles');
  for (const [role, raw] of Object.entries((doc.roles ?? {}) as Record<string, unknown>)) {
    const field = `roles.${role}`;
    const b = Array.isArray(raw) ? { nodes: raw } : raw;
    if (!isObject(b)) throw invalid(`"${field}" must be { nodes: [...], inputs: {...} }`, field);
    const bad = Object.keys(b).filter((k) => !['nodes', 'inputs', 'requires'].includes(k));
    if (bad.length) throw invalid(`"${field}" has no field "${bad[0]}" (nodes, inputs, requires)`, `${field}.${bad[0]}`);
    if (b.requires !== undefined && !(Array.isArray(b.requires) && b.requires.every((x) => typeof x === 'string' && x))) {
      throw invalid(`"${field}.requires" must be a list of role names`, `${field}.requires`);
    }
    const requires = [...new Set((b.requires ?? []) as string[])];
    if (!Array.isArray(b.nodes)) throw invalid(`"${field}.nodes" must be a list of node indexes or names`, `${field}.nodes`);
    const names = b.nodes.map((ref, i) => {
      if (typeof ref === 'number') {
        if (!Number.isInteger(ref) || ref < 0 || ref >= nodes.length) throw invalid(`"${field}.nodes[${i}]": node index ${ref} is out of range (the deployment has ${nodes.length} nodes)`, `${field}.nodes`);
        return nodes[ref].name;
      }
      if (typeof ref === 'string') {
        if (!seen.has(ref)) throw invalid(`"${field}.nodes[${i}]": no node named "${ref}" in the deployment`, `${field}.nodes`);
        return ref;
      }
      throw invalid(`"${field}.nodes[${i}]" must be a node index or name`, `${field}.nodes`);
    });
    if (b.inputs !== undefined && !isObject(b.inputs)) throw invalid(`"${field}.inputs" must be a mapping of input name → value`, `${field}.inputs`);
    roles[role] = {
      nodes: [...new Set(names)],
      ...(b.inputs && Object.keys(b.inputs).length ? { inputs: b.inputs as Record<string, unknown> } : {}),
      ...(requires.length ? { requires } : {}),
    };
  }
  if (doc.attribs !== undefined && !isObject(doc.attribs)) throw invalid('"attribs" must be a mapping of attrib name → value', 'attribs');
  if (doc.commit !== undefined && typeof doc.commit !== 'boolean') throw invalid('"commit" must be true or false', 'commit');
  return {
    name,
    ...(typeof doc.provider === 'string' ? { provider: doc.provider } : {}),
    ...(isObject(doc.labels) ? { labels: doc.labels as Record<string, string> } : {}),
    spec: { nodes, roles },
    attribs: (doc.attribs as Record<string, unknown>) ?? {},
    commit: doc.commit !== false,
  };
}

/** What a new or re-checked node-role's state is, given its parents' states: todo, or blocked with the reason. */
export function stateFromParents(parents: Array<{ name: string; state: string }>): { state: 'todo' | 'blocked'; blockedReason: string | null } {
  const waiting = parents.find((p) => p.state !== 'active');
  return waiting ? { state: 'blocked', blockedReason: `waiting for ${waiting.name} (${waiting.state})` } : { state: 'todo', blockedReason: null };
}

/**
 * A blocked node-role with a failed node-role above it (src/engine/graph.ts) names that
 * failure, however deep: its parents' states alone would say "waiting for X (blocked)".
 */
async function withFailuresAbove(tx: Store, id: string, r: { state: string; blockedReason: string | null }): Promise<{ state: string; blockedReason: string | null }> {
  if (r.state !== 'blocked') return r;
  const failed = await failedAncestors(tx, id);
  return failed.length ? { state: 'blocked', blockedReason: failureReason([], failed) } : r;
}

export class DeploymentService {
  constructor(private readonly services: Services) {}

  private get store(): Store {
    return this.services.store;
  }

  /** Applies a Deployment document (see parseDeploymentDocument). All or nothing. */
  async apply(raw: Record<string, unknown>, ctx: ApplyContext = {}): Promise<ApplyResult> {
    const doc = parseDeploymentDocument(raw);
    const result = await (ctx.store ?? this.store).transaction((tx) => applyInTx(tx, doc, ctx));
    if (result.kick) this.services.engine?.kick();
    return { kind: 'Deployment', name: doc.name, action: result.action, object: result.object };
  }

  /** Moves a deployment and its proposed node-roles to todo/blocked, then wakes the engine. */
  async commit(name: string, ctx: ApplyContext = {}): Promise<CommitResult> {
    const res = await this.store.transaction((tx) => commitInTx(tx, name, ctx));
    this.services.engine?.kick();
    return res;
  }

  /** The node-roles of a deployment grouped by node (deployment node order), each with state and blocked reason. */
  async describeTree(name: string): Promise<DeploymentTree> {
    return describeTree(this.store, name);
  }
}

/** The node-roles a document binds (the planner's errors as they are). */
function planDocument(doc: DeploymentDocument, catalogue: RoleSpec[]): PlannedNodeRole[] {
  const bindings: PlanBinding[] = Object.entries(doc.spec.roles).map(([role, b]) => ({
    role,
    nodes: b.nodes,
    after: [...new Set([...outputsReadBy(b.inputs), ...(b.requires ?? [])])].sort(),
  }));
  return planDeployment({ deployment: doc.name, roles: catalogue, nodes: doc.spec.nodes.map((n) => n.name), bindings, everyNode: EVERY_NODE_ROLES });
}

async function rolesCatalogue(tx: Store): Promise<RoleSpec[]> {
  return (await tx.objects('roles').all()).map(roleFromObject);
}

/**
 * Seals, in place, the values the document gives for secret inputs, in its attribs and its
 * bindings' inputs (src/store/sealing.ts), so that neither the store nor the API ever
 * holds them in clear. The caller's objects are not edited: new ones replace them.
 */
async function sealSecretValues(tx: Store, doc: DeploymentDocument, current: StoredObject | undefined): Promise<void> {
  const sealed = await sealWriteFields(tx, 'deployments', { name: doc.name, attribs: doc.attribs, spec: doc.spec }, current);
  doc.attribs = sealed.attribs as DeploymentDocument['attribs'];
  doc.spec = sealed.spec as DeploymentDocument['spec'];
}

async function applyInTx(tx: Store, doc: DeploymentDocument, ctx: ApplyContext): Promise<{ action: ApplyResult['action']; object: StoredObject; kick: boolean }> {
  const opts = { actor: ctx.actor };
  let changed = false;

  // 1. Everything that can refuse the document, before any write.
  const depRepo = tx.objects('deployments');
  let dep = await depRepo.find(doc.name);
  checkVersion(depRepo.kind, doc.name, dep, ctx.expectedVersion);
  refuseDeleting(depRepo.kind, dep);
  const provider = doc.provider ? await tx.objects('providers').find(doc.provider) : undefined;
  if (doc.provider && !provider) {
    throw new FormworkError('NOT_FOUND', `deployment "${doc.name}" names provider "${doc.provider}", which does not exist; apply the Provider first`, { kind: 'providers', key: doc.provider });
  }
  refuseDeleting(tx.objects('providers').kind, provider);
  const catalogue = await rolesCatalogue(tx);
  const byName = new Map(catalogue.map((r) => [r.name, r] as const));
  const planned = planDocument(doc, catalogue);
  const inputProblems = await deploymentInputProblems(tx, doc, byName, planned);
  if (inputProblems.length) throw inputsInvalid(doc.name, inputProblems);
  const nodesRepo = tx.objects('nodes');
  const existingNodes = new Map<string, StoredObject>();
  for (const n of doc.spec.nodes) {
    const found = await nodesRepo.find(n.name);
    if (found) {
      if (found.deployment && found.deployment !== doc.name) {
        throw new FormworkError('CONFLICT', `node "${n.name}" belongs to deployment "${String(found.deployment)}"`, { node: n.name, deployment: found.deployment });
      }
      existingNodes.set(n.name, found);
    }
  }

  // 2. The deployment.
  await sealSecretValues(tx, doc, dep);
  const created = !dep;
  const fields = { provider: doc.provider ?? null, spec: doc.spec, attribs: doc.attribs, ...(doc.labels ? { labels: doc.labels } : {}) };
  if (!dep) {
    dep = await depRepo.create({ name: doc.name, state: 'proposed', ...fields }, opts);
    changed = true;
  } else {
    // The version read above: a concurrent apply that wrote since refuses this one instead of being overwritten.
    const next = await depRepo.update(dep.id, fields, { ...opts, expectedVersion: dep.version });
    if (next.version !== dep.version) changed = true;
    dep = next;
  }
  const committed = dep.state === 'committed';

  // 3. Nodes: created when missing (state pending), adopted when free, otherwise left alone.
  for (const n of doc.spec.nodes) {
    const found = existingNodes.get(n.name);
    if (!found) {
      await nodesRepo.create(
        { name: n.name, provider: doc.provider ?? null, deployment: doc.name, sizeNormalized: n.size ?? null, imageNormalized: n.image ?? null, state: 'pending' },
        opts,
      );
      changed = true;
    } else if (!found.deployment) {
      await nodesRepo.update(found.id, { deployment: doc.name, ...(found.provider ? {} : { provider: doc.provider ?? null }) }, opts);
      changed = true;
    }
  }

  // 4. Node-roles.
  const nrRepo = tx.objects('noderoles');
  const existing = new Map((await nrRepo.all({ filters: { deployment: doc.name } })).map((o) => [o.name, o] as const));
  const plannedByName = new Map(planned.map((p) => [p.name, p] as const));
  const ids = new Map<string, string>();
  for (const p of planned) ids.set(p.name, existing.get(p.name)?.id ?? newId('nr'));

  // Removed bindings: delete their node-roles and links; one that has run and whose role has
  // a removal step is marked instead, and queued: the engine runs the step, then deletes it.
  for (const [name, o] of existing) {
    if (plannedByName.has(name)) continue;
    existing.delete(name);
    if (isRemoving(o.attribs)) continue;
    await tx.db.deleteFrom('noderole_links').where((eb) => eb.or([eb('parent_id', '=', o.id), eb('child_id', '=', o.id)])).execute();
    const hasRun = o.inputHash != null || ['running', 'error'].includes(o.state) || Number(o.attempts ?? 0) > 0;
    if (committed && hasRun && byName.get(o.role)?.removal) {
      const marked = { ...(o.attribs ?? {}), [REMOVING_KEY]: true };
      // A running node-role finishes its run first (the annealer then queues the removal).
      const queued = o.state === 'running' ? {} : { state: 'todo', attempts: 0, nextAttemptAt: null, blockedReason: null };
      await nrRepo.update(o.id, { attribs: marked, parents: [], ...queued }, opts);
    } else {
      await nrRepo.delete(o.id, opts);
    }
    changed = true;
  }

  // Generated values: kept once made; cluster members share them.
  const shared = new Map<string, Record<string, unknown>>();
  for (const p of planned) {
    const g = existing.get(p.name)?.attribs?.[GENERATED_KEY] as Record<string, unknown> | undefined;
    if (g && !shared.has(p.role)) shared.set(p.role, g);
  }
  const desiredAttribs = (p: PlannedNodeRole): Record<string, unknown> => {
    const role = byName.get(p.role)!;
    const out: Record<string, unknown> = {};
    const binding = doc.spec.roles[p.role];
    if (binding && binding.nodes.includes(p.node)) {
      for (const [k, v] of Object.entries(binding.inputs ?? {})) out[k] = normalizeOverride(v);
    }
    const current = existing.get(p.name)?.attribs?.[GENERATED_KEY] as Record<string, unknown> | undefined;
    // Sealed with the store's key: generated values are secrets, kept encrypted and opened only to run.
    const g = generatedValues(role, current, shared.get(p.role), () => tx.secrets.seal(randomToken(), sealOwner('deployments', { name: doc.name })));
    if (g) {
      out[GENERATED_KEY] = g;
      if (!shared.has(p.role)) shared.set(p.role, g);
    }
    return out;
  };

  // States of new node-roles (and re-checked todo/blocked ones) follow their parents.
  const decided = new Map<string, { state: string; blockedReason: string | null }>();
  const visiting = new Set<string>();
  const decide = (p: PlannedNodeRole): { state: string; blockedReason: string | null } => {
    const known = decided.get(p.name);
    if (known) return known;
    const cur = existing.get(p.name);
    const keep = { state: cur?.state ?? 'proposed', blockedReason: cur?.blockedReason ?? null };
    let r: { state: string; blockedReason: string | null };
    if (!committed || (cur && !['todo', 'blocked', 'proposed'].includes(cur.state))) r = keep;
    else if (visiting.has(p.name)) return keep; // the planner refuses cycles; defensive only
    else {
      visiting.add(p.name);
      r = stateFromParents(p.parents.map((n) => ({ name: n, state: decide(plannedByName.get(n)!).state })));
      visiting.delete(p.name);
    }
    decided.set(p.name, r);
    return r;
  };

  for (const p of planned) {
    const attribs = desiredAttribs(p);
    const parents = p.parents.map((n) => ids.get(n)!);
    const cur = existing.get(p.name);
    // Only a stored node-role has failures above it (a new one's parents link to it below).
    const { state, blockedReason } = cur && committed ? await withFailuresAbove(tx, cur.id, decide(p)) : decide(p);
    if (!cur) {
      await nrRepo.create(
        { id: ids.get(p.name), name: p.name, deployment: doc.name, node: p.node, role: p.role, state, blockedReason, parents, attribs },
        opts,
      );
      changed = true;
    } else {
      const patch: Record<string, unknown> = {};
      if (!sameValue(cur.attribs ?? {}, attribs)) patch.attribs = attribs;
      if (!sameValue(cur.parents ?? [], parents)) patch.parents = parents;
      if (cur.state !== state) patch.state = state;
      if ((cur.blockedReason ?? null) !== blockedReason) patch.blockedReason = blockedReason;
      if (Object.keys(patch).length) {
        await nrRepo.update(cur.id, patch, opts);
        changed = true;
      }
    }
  }

  // Links, diffed against what is stored.
  const allIds = [...ids.values()];
  const stored = allIds.length ? await tx.db.selectFrom('noderole_links').select(['parent_id', 'child_id']).where('child_id', 'in', allIds).execute() : [];
  const want = new Set(planned.flatMap((p) => p.parents.map((parent) => `${ids.get(parent)}>${ids.get(p.name)}`)));
  const have = new Set(stored.map((l) => `${l.parent_id as string}>${l.child_id as string}`));
  for (const key of have) {
    if (want.has(key)) continue;
    const [parent, child] = key.split('>');
    await tx.db.deleteFrom('noderole_links').where('parent_id', '=', parent).where('child_id', '=', child).execute();
    changed = true;
  }
  const add = [...want].filter((k) => !have.has(k)).map((k) => {
    const [parent_id, child_id] = k.split('>');
    return { parent_id, child_id };
  });
  if (add.length) {
    await tx.db.insertInto('noderole_links').values(add).execute();
    changed = true;
  }

  // 5. Commit when asked (the default).
  let object = dep;
  let kick = committed && changed;
  if (doc.commit && !committed) {
    object = (await commitInTx(tx, doc.name, ctx)).deployment;
    changed = true;
    kick = true;
  }
  return { action: created ? 'created' : changed ? 'updated' : 'unchanged', object, kick };
}

async function commitInTx(tx: Store, name: string, ctx: ApplyContext): Promise<CommitResult> {
  const opts = { actor: ctx.actor };
  const depRepo = tx.objects('deployments');
  let dep = await depRepo.get(name);
  refuseDeleting(depRepo.kind, dep);
  if (dep.state !== 'committed') dep = await depRepo.update(dep.id, { state: 'committed' }, opts);
  const nrRepo = tx.objects('noderoles');
  const all = await nrRepo.all({ filters: { deployment: name } });
  const byId = new Map(all.map((o) => [o.id, o] as const));
  const next = new Map<string, { state: string; blockedReason: string | null }>();
  const visiting = new Set<string>();
  const stateOf = (o: NodeRoleObject): string => {
    if (o.state !== 'proposed') return o.state;
    return decide(o).state;
  };
  const decide = (o: NodeRoleObject): { state: string; blockedReason: string | null } => {
    let r = next.get(o.id);
    if (r) return r;
    if (visiting.has(o.id)) return { state: 'blocked', blockedReason: null };
    visiting.add(o.id);
    const parents = parentsOf(o, byId);
    r = stateFromParents(parents.map((p) => ({ name: p.name, state: stateOf(p) })));
    visiting.delete(o.id);
    next.set(o.id, r);
    return r;
  };
  let changed = 0;
  for (const o of all) {
    if (o.state !== 'proposed') continue;
    const r = await withFailuresAbove(tx, o.id, decide(o));
    await nrRepo.update(o.id, { state: r.state, blockedReason: r.blockedReason }, opts);
    changed++;
  }
  return { deployment: dep, changed };
}

/** Orders node-roles of one node: parents before children (depth), then role name. */
function orderWithinNode(list: NodeRoleObject[], byId: Map<string, NodeRoleObject>): NodeRoleObject[] {
  const depth = new Map<string, number>();
  const depthOf = (o: NodeRoleObject, seen = new Set<string>()): number => {
    const d = depth.get(o.id);
    if (d !== undefined) return d;
    if (seen.has(o.id)) return 0;
    seen.add(o.id);
    const ps = parentsOf(o, byId);
    const v = ps.length ? 1 + Math.max(...ps.map((p) => depthOf(p, seen))) : 0;
    depth.set(o.id, v);
    return v;
  };
  return [...list].sort((a, b) => depthOf(a) - depthOf(b) || cmp(a.role, b.role));
}

/** A node-role's parents that are among `byId` (the node-roles of its deployment). */
function parentsOf(o: NodeRoleObject, byId: Map<string, NodeRoleObject>): NodeRoleObject[] {
  return (o.parents ?? []).map((id) => byId.get(id)).filter((p): p is NodeRoleObject => !!p);
}

export async function describeTree(store: Store, name: string): Promise<DeploymentTree> {
  const dep = await store.objects('deployments').get(name);
  const spec = dep.spec ?? { nodes: [] };
  const all = await store.objects('noderoles').all({ filters: { deployment: dep.name } });
  const byId = new Map(all.map((o) => [o.id, o] as const));
  const nodeObjs = await store.objects('nodes').all({ filters: { deployment: dep.name } });
  const nodeState = new Map(nodeObjs.map((n) => [n.name, n.state] as const));
  const order = (spec.nodes ?? []).map((n) => n.name);
  for (const o of all) if (o.node && !order.includes(o.node)) order.push(o.node);
  const toTree = (o: NodeRoleObject): TreeNodeRole => ({
    id: o.id,
    name: o.name,
    role: o.role,
    state: o.state,
    ...(o.blockedReason ? { blockedReason: o.blockedReason } : {}),
    parents: (o.parents ?? []).map((id) => byId.get(id)?.name ?? id),
    ...(o.attempts ? { attempts: o.attempts } : {}),
    ...(o.lastError ? { lastError: o.lastError } : {}),
  });
  const counts: Record<string, number> = {};
  for (const o of all) counts[o.state] = (counts[o.state] ?? 0) + 1;
  return {
    deployment: { name: dep.name, state: dep.state ?? 'proposed', ...(dep.provider ? { provider: dep.provider } : {}) },
    nodes: order.map((n) => ({
      name: n,
      ...(nodeState.get(n) ? { state: nodeState.get(n) } : {}),
      noderoles: orderWithinNode(all.filter((o) => o.node === n), byId).map(toTree),
    })),
    other: orderWithinNode(all.filter((o) => !o.node || o.node === '-'), byId).map(toTree),
    counts,
  };
}

/**
 * The applier for `kind: Deployment` documents. Its `validate` property (read by apply
 * before anything is written) reports a malformed document, and the inputs of the
 * node-roles it would bind that cannot be satisfied or have the wrong type, as field
 * problems. A document that cannot be planned is left to the applier, which says why.
 */
export function deploymentApplier(services: Services): Applier & { validate: ApplierValidate } {
  const svc = new DeploymentService(services);
  const applier = (doc: Record<string, unknown>, ctx: ApplyContext) => svc.apply(doc, ctx);
  return Object.assign(applier, {
    async validate(raw: Record<string, unknown>, ctx: ApplierValidateContext): Promise<FieldProblem[]> {
      let doc: DeploymentDocument;
      try {
        doc = parseDeploymentDocument(raw);
      } catch (e) {
        if (!(e instanceof FormworkError)) throw e;
        const field = typeof e.details?.field === 'string' ? e.details.field : '';
        return [{ path: '/' + field.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean).join('/'), message: e.message }];
      }
      const catalogue = await catalogueWith(ctx.store, ctx.pending);
      let planned: PlannedNodeRole[];
      try {
        planned = planDocument(doc, catalogue);
      } catch (e) {
        if (e instanceof FormworkError) return [];
        throw e;
      }
      const problems = await deploymentInputProblems(ctx.store, doc, new Map(catalogue.map((r) => [r.name, r] as const)), planned, ctx.pending);
      return inputFieldProblems(doc.name, problems);
    },
  });
}

/** Registers the Deployment applier in services.appliers. */
export function registerDeploymentServices(services: Services): DeploymentService {
  services.appliers.set('Deployment', deploymentApplier(services));
  return new DeploymentService(services);
}

/** The roles whose outputs a binding's inputs read: `outputs(ROLE).FIELD` anywhere in them. */
export function outputsReadBy(inputs: unknown): string[] {
  const found = new Set<string>();
  for (const m of JSON.stringify(inputs ?? {}).matchAll(/outputs\(([^)\s]+)\)/g)) found.add(m[1]);
  return [...found].sort();
}
