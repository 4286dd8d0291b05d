/**
 * Gathers what a node-role's inputs are resolved from (its node, deployment, parents'
 * outputs, cluster peers, workload defaults) and resolves them with the planner's pure
 * `resolveInputs` (src/core/attribs.ts). Roles and workloads are cached briefly: they
 * change rarely and every run reads them.
 */
import { clusterPeers, GENERATED_KEY, hashInputs, isRemoving, isSealed, SEALED_KEY, resolveInputs, type ResolveContext, type ResolveNode } from '../core/attribs.js';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { roleFromObject, type RoleSpec } from '../core/roles.js';
import type { SecretStore } from '../store/secrets.js';
import { isSealedText } from '../store/secrets.js';
import type { Store } from '../store/store.js';
import { sealOwner } from '../store/sealing.js';
import { SecretValues } from './secrecy.js';

export interface NodeRoleContext {
  noderole: StoredObject;
  role: RoleSpec;
  node?: StoredObject;
  deployment: StoredObject;
  files: Record<string, string>;
  resolve: ResolveContext;
  /** The inputs of this node-role's last successful run (secret ones redacted); `{}` before its first. */
  previousInputs: Record<string, unknown>;
  /** Keys the input hash (the store's hash key), so that it says nothing of secret inputs. */
  hashKey?: Buffer;
  /** Every plaintext this run opened from a sealed form (src/engine/secrecy.ts). */
  secrets: SecretValues;
}

export interface Resolved {
  inputs: Record<string, unknown>;
  hash: string;
  /** Inputs that are secret: marked so by the role, or holding a secret value (through `from:` too). */
  secret: Set<string>;
}

interface Cached<T> {
  at: number;
  value: T;
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Every read takes the store to read through: the caller's, or the transaction it runs in
 * (a read through any other handle inside a transaction is TRANSACTION_REENTRY). The loader
 * holds no handle of its own, so it cannot pick the wrong one when its cache expires.
 */
export class ContextLoader {
  private roles = new Map<string, Cached<RoleSpec>>();
  private workloads = new Map<string, Cached<StoredObject | undefined>>();

  constructor(
    private readonly secrets: SecretStore,
    private readonly ttlMs = 2000,
  ) {}

  invalidate(): void {
    this.roles.clear();
    this.workloads.clear();
  }

  async role(name: string, store: Store): Promise<RoleSpec> {
    const hit = this.roles.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const row = await store.objects('roles').find(name);
    if (!row) throw new FormworkError('ROLE_UNKNOWN', `role "${name}" is not defined by any loaded workload`, { role: name });
    const value = roleFromObject(row);
    this.roles.set(name, { at: Date.now(), value });
    return value;
  }

  async workload(name: string, store: Store): Promise<StoredObject | undefined> {
    const hit = this.workloads.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const value = name ? await store.objects('workloads').find(name) : undefined;
    this.workloads.set(name, { at: Date.now(), value });
    return value;
  }

  /**
   * Generated values and values given for secret inputs are stored sealed, for their owner
   * (src/store/sealing.ts); a run needs them open, and remembers each as a secret.
   */
  private openSealed(attribs: Record<string, unknown>, owner: string, secrets: SecretValues): Record<string, unknown> {
    const open: Record<string, unknown> = {};
    const unseal = (sealed: string): string => this.secrets.unseal(sealed, owner);
    for (const [k, v] of Object.entries(attribs)) {
      if (!isSealed(v)) open[k] = v;
      else secrets.add((open[k] = JSON.parse(unseal(v[SEALED_KEY]))));
    }
    const g = attribs[GENERATED_KEY];
    if (g && typeof g === 'object') {
      open[GENERATED_KEY] = Object.fromEntries(
        Object.entries(g as Record<string, unknown>).map(([k, v]) => {
          if (!isSealedText(v)) return [k, v];
          const plain = unseal(v);
          secrets.add(plain);
          return [k, plain];
        }),
      );
    }
    return open;
  }

  async load(noderole: StoredObject, store: Store): Promise<NodeRoleContext> {
    const role = await this.role(noderole.role as string, store);
    const deployment = await store.objects('deployments').find(noderole.deployment as string);
    const deploymentObj = deployment ?? ({ id: '', name: noderole.deployment as string, version: 0, labels: {}, createdAt: '', updatedAt: '' } as StoredObject);
    const nodeName = typeof noderole.node === 'string' && noderole.node && noderole.node !== '-' ? noderole.node : undefined;
    const node = nodeName ? await store.objects('nodes').get(nodeName) : undefined;
    const workload = await this.workload(role.workload, store);
    const secrets = new SecretValues();
    const depOwner = sealOwner('deployments', { name: noderole.deployment });

    // Parents, in the order of the node-role's `parents` (ids), with their outputs.
    const parentIds = Array.isArray(noderole.parents) ? (noderole.parents as string[]) : [];
    const parentRows = parentIds.length
      ? await store.db.selectFrom('noderoles').select(['id', 'name', 'role', 'node', 'outputs']).where('id', 'in', parentIds).execute()
      : [];
    const byId = new Map(parentRows.map((r) => [r.id as string, r]));
    const parents = [];
    for (const id of parentIds) {
      const r = byId.get(id);
      if (!r) continue;
      const prole = await this.role(r.role as string, store).catch(() => undefined);
      parents.push({
        name: r.name as string,
        role: r.role as string,
        provides: prole?.provides ?? [],
        node: (r.node as string | null) ?? undefined,
        outputs: r.outputs ? this.openSealed(JSON.parse(r.outputs as string) as Record<string, unknown>, depOwner, secrets) : undefined,
      });
    }

    let peers;
    if (role.flags.includes('cluster')) {
      const members = await store.db
        .selectFrom('noderoles')
        .select(['name', 'node', 'attribs'])
        .where('deployment', '=', noderole.deployment as string)
        .where('role', '=', role.name)
        .execute()
        // A member being removed is no longer a peer, of the others or of itself.
        .then((rows) => rows.filter((m) => !isRemoving(m.attribs)));
      const names = [...new Set(members.map((m) => m.node as string).filter(Boolean))];
      const nodes = names.length ? await store.db.selectFrom('nodes').selectAll().where('name', 'in', names).execute() : [];
      const repo = store.objects('nodes');
      const nodeObjs = nodes.map((r) => repo.toObject(r) as unknown as ResolveNode);
      const order = nodeOrder(deploymentObj);
      nodeObjs.sort((a, b) => {
        const ia = order.indexOf(a.name);
        const ib = order.indexOf(b.name);
        if (ia >= 0 && ib >= 0) return ia - ib;
        if (ia >= 0 || ib >= 0) return ia >= 0 ? -1 : 1;
        return naturalCompare(a.name, b.name);
      });
      peers = clusterPeers(members.map((m) => ({ name: m.name as string, node: m.node as string | null })), nodeObjs);
    }

    const resolve: ResolveContext = {
      noderole: { name: noderole.name, attribs: this.openSealed((noderole.attribs ?? {}) as Record<string, unknown>, depOwner, secrets) },
      node: node ? ({ ...node, attribs: this.openSealed((node.attribs ?? {}) as Record<string, unknown>, sealOwner('nodes', node), secrets) } as unknown as ResolveNode) : undefined,
      deployment: { name: deploymentObj.name, attribs: this.openSealed((deploymentObj.attribs ?? {}) as Record<string, unknown>, depOwner, secrets) },
      parents,
      peers,
      workloadDefaults: (workload?.defaults ?? {}) as Record<string, unknown>,
    };
    return {
      noderole,
      role,
      node,
      deployment: deploymentObj,
      files: (workload?.files ?? {}) as Record<string, string>,
      resolve,
      previousInputs: await this.previousInputs(noderole, store),
      hashKey: this.secrets.hashKey,
      secrets,
    };
  }

  /**
   * Whether a node-role's inputs, resolved now (through `store`, which may be an open
   * transaction), differ from `hash`, the hash its last run started with. Inputs that no
   * longer resolve count as changed: a run then shows the error. Destructive roles never
   * re-run on their own: always false for them.
   */
  async stale(noderole: StoredObject, hash: unknown, store: Store): Promise<boolean> {
    try {
      const ctx = await this.load(noderole, store);
      return !ctx.role.flags.includes('destructive') && inputsChanged(resolveContext(ctx), hash);
    } catch {
      return true;
    }
  }

  /**
   * The inputs recorded by the node-role's last successful run (redacted as every run's are).
   * Only runs of this node-role's own life count: one removed and bound again starts afresh.
   */
  async previousInputs(noderole: StoredObject, store: Store): Promise<Record<string, unknown>> {
    const row = await store.db
      .selectFrom('runs')
      .select('inputs')
      .where('noderole', '=', noderole.name)
      .where('state', '=', 'succeeded')
      .where('started_at', '>=', noderole.createdAt)
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const inputs = typeof row?.inputs === 'string' ? (JSON.parse(row.inputs) as unknown) : row?.inputs;
    return inputs && typeof inputs === 'object' ? (inputs as Record<string, unknown>) : {};
  }
}

/** The deployment's node order: its spec's `nodes: [{name, …}]`, as the Deployment applier writes it. */
function nodeOrder(deployment: StoredObject): string[] {
  const nodes = ((deployment.spec ?? {}) as { nodes?: unknown }).nodes;
  if (!Array.isArray(nodes)) return [];
  return nodes.map((n) => (n && typeof n === 'object' ? (n as { name?: unknown }).name : undefined)).filter((x): x is string => typeof x === 'string');
}

/**
 * Whether resolved inputs differ from those of the last successful run, by its stored hash.
 * A plain `sha256:` hash, stored before hashes were keyed, is still understood: an upgrade
 * must not re-run every active node-role.
 */
export function inputsChanged(resolved: Pick<Resolved, 'inputs' | 'hash'>, storedHash: unknown): boolean {
  if (typeof storedHash === 'string' && storedHash.startsWith('sha256:')) return hashInputs(resolved.inputs) !== storedHash;
  return resolved.hash !== storedHash;
}

export function resolveContext(ctx: NodeRoleContext): Resolved {
  const { inputs } = resolveInputs(ctx.role, ctx.resolve);
  return { inputs, hash: hashInputs(inputs, ctx.hashKey), secret: ctx.secrets.secretInputs(inputs, ctx.role) };
}
