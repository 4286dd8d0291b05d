/**
 * Test fixtures for the engine: roles, a workload with files, a deployment, nodes and
 * node-roles with their parent links, inserted straight through the store (as the
 * planner would after a commit). Roots start `todo`, the others `blocked`.
 *
 * @example
 *   await seed(store, {
 *     roles: [role('a', { kind: 'local', file: 'a.sh' })],
 *     files: { 'a.sh': 'echo hi' },
 *     nodes: ['n1'],
 *     bind: [{ node: 'n1', role: 'a' }],
 *   });
 */
import type { StoredObject } from '../../core/kinds.js';
import type { RoleSpec } from '../../core/roles.js';
import { testRole } from '../../core/testing/roles.js';
import type { Store } from '../../store/store.js';

export const WORKLOAD = 'test';

/** A test role with the given implementation (see core/testing/roles.ts). */
export function role(name: string, implementation: RoleSpec['implementation'], extra: Partial<RoleSpec> = {}): RoleSpec {
  return testRole(name, { workload: WORKLOAD, implementation, ...extra });
}

export interface NodeFixture {
  name: string;
  provider?: string;
  addresses?: Array<{ address: string; family: 4 | 6; role: 'public' | 'private' | 'admin' }>;
  attribs?: Record<string, unknown>;
  loginUser?: string;
  hostKey?: string;
  inventory?: Record<string, unknown>;
}

export interface BindFixture {
  node?: string;
  role: string;
  /** Parent node-roles as `node:role` (or `-:role`). */
  parents?: string[];
  attribs?: Record<string, unknown>;
}

export interface SeedSpec {
  deployment?: string;
  deploymentAttribs?: Record<string, unknown>;
  roles: RoleSpec[];
  files?: Record<string, string>;
  defaults?: Record<string, unknown>;
  nodes: Array<string | NodeFixture>;
  bind: BindFixture[];
}

export function nrName(deployment: string, node: string | undefined, role: string): string {
  return `${deployment}:${node ?? '-'}:${role}`;
}

/** Inserts everything; returns the node-roles by name. */
export async function seed(store: Store, spec: SeedSpec): Promise<Map<string, StoredObject>> {
  const dep = spec.deployment ?? 'demo';
  if (!(await store.objects('workloads').find(WORKLOAD))) {
    await store.objects('workloads').create({ name: WORKLOAD, workloadVersion: '1.0.0', files: spec.files ?? {}, defaults: spec.defaults ?? {} });
  } else {
    await store.objects('workloads').update(WORKLOAD, { files: spec.files ?? {}, defaults: spec.defaults ?? {} });
  }
  for (const r of spec.roles) await store.objects('roles').apply({ name: r.name, workload: r.workload, spec: r });
  await store.objects('deployments').apply({ name: dep, state: 'committed', attribs: spec.deploymentAttribs ?? {}, spec: { nodes: spec.nodes.map((n) => ({ name: typeof n === 'string' ? n : n.name })) } });
  for (const n of spec.nodes) {
    const f: NodeFixture = typeof n === 'string' ? { name: n } : n;
    await store.objects('nodes').apply({
      provider: 'lab',
      addresses: [{ address: '127.0.0.1', family: 4, role: 'private' }],
      state: 'ready',
      deployment: dep,
      ...f,
    });
  }
  const byKey = new Map<string, StoredObject>();
  for (const b of spec.bind) {
    const parents = (b.parents ?? []).map((p) => {
      const found = byKey.get(p);
      if (!found) throw new Error(`fixture: parent ${p} of ${b.node}:${b.role} is not bound before it`);
      return found;
    });
    const nr = await store.objects('noderoles').create({
      name: nrName(dep, b.node, b.role),
      deployment: dep,
      node: b.node ?? null,
      role: b.role,
      state: parents.length ? 'blocked' : 'todo',
      blockedReason: parents.length ? `waiting for ${parents.map((p) => `${p.name} (todo)`).join(', ')}` : null,
      parents: parents.map((p) => p.id),
      attribs: b.attribs ?? {},
      attempts: 0,
    });
    for (const p of parents) await store.db.insertInto('noderole_links').values({ parent_id: p.id, child_id: nr.id }).execute();
    byKey.set(`${b.node ?? '-'}:${b.role}`, nr);
  }
  return new Map([...byKey.values()].map((n) => [n.name, n]));
}

/** A chain of roles on one node: roles[0] → roles[1] → … */
export function chain(node: string, roles: string[]): BindFixture[] {
  return roles.map((r, i) => ({ node, role: r, parents: i ? [`${node}:${roles[i - 1]}`] : [] }));
}

/** Polls until `fn` returns a truthy value or the time runs out. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false | null>, timeoutMs = 15_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every node-role of a deployment by name → state. */
export async function states(store: Store, deployment = 'demo'): Promise<Record<string, string>> {
  const all = await store.objects('noderoles').all({ filters: { deployment } });
  return Object.fromEntries(all.map((n) => [n.name, n.state as string]));
}

/** Waits until no node-role of the deployment is todo, running or blocked-waiting (settled). */
export async function settled(store: Store, deployment = 'demo', timeoutMs = 20_000): Promise<Record<string, string>> {
  return waitFor(async () => {
    const all = await store.objects('noderoles').all({ filters: { deployment } });
    const busy = all.some((n) => n.state === 'todo' || n.state === 'running' || (n.state === 'blocked' && !String(n.blockedReason ?? '').includes('failed')));
    return busy ? undefined : Object.fromEntries(all.map((n) => [n.name, n.state as string]));
  }, timeoutMs);
}
