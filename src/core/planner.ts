import { FormworkError } from './errors.js';
import { candidatesFor, cmp, findCycles, hasFlag, satisfies, type RoleSpec } from './roles.js';

/**
 * The planner: from a catalogue of roles, a deployment's nodes and its requested
 * bindings, the complete set of node-roles with their parent edges. Pure: no I/O; it
 * throws (ROLE_UNKNOWN, ROLE_CYCLE, ROLE_CONFLICT, ROLE_UNSATISFIABLE) before anything
 * is written.
 *
 * Rules (docs/workloads.md, "Binding"):
 * - A requirement is met on the node itself when a node-role there is (or provides) it.
 * - Otherwise the role that satisfies it is the role of that name, else the one role
 *   providing the alias (if several do, one already bound in the deployment; else refused
 *   as ambiguous).
 * - A `service` role is bound once per deployment: its existing node-role is the parent;
 *   if it has none, it is bound on the node of the first node-role that needs it.
 * - A `cluster` role already bound in the deployment: every member is a parent (haproxy on
 *   node 3 requiring etcd-member gets etcd-member on nodes 0, 1, 2). Not bound anywhere:
 *   bound on the requiring node.
 * - Any other role is bound on the same node (recursively).
 * - Members of a cluster role wait for every member's own prerequisites (etcd on node 0
 *   starts when node-ready is done on nodes 0, 1 and 2), so peers' facts exist.
 *
 * @example
 *   planDeployment({ deployment: 'demo', roles, nodes: ['demo-0', 'demo-1'], bindings: [{ role: 'etcd-member', nodes: ['demo-0', 'demo-1'] }] });
 *   // [{ name: 'demo:demo-0:provision', parents: [] }, { name: 'demo:demo-0:node-ready', parents: ['demo:demo-0:provision'] }, …]
 */

export interface PlanBinding {
  role: string;
  /** Node names. */
  nodes: string[];
  /**
   * Roles this binding reads outputs of (its inputs say `outputs(ROLE).FIELD`) or requires
   * (the document's `requires:`): every node-role of each in the deployment becomes a parent,
   * so the outputs exist, or the role is done, before it runs.
   */
  after?: string[];
}

export interface PlanInput {
  deployment: string;
  roles: RoleSpec[];
  /** The deployment's node names, in order. */
  nodes: string[];
  bindings: PlanBinding[];
  /** Roles bound on every node when the catalogue has them (the applier passes ['node-ready']). */
  everyNode?: string[];
}

export interface PlannedNodeRole {
  /** `<deployment>:<node>:<role>` */
  name: string;
  role: string;
  node: string;
  /** Names of the parent node-roles, in plan order. */
  parents: string[];
  /** Bound by the document (true) or automatically (false). */
  requested: boolean;
  /** Why it was bound automatically: 'required by <name>' or 'bound on every node'. */
  reason?: string;
  /** Cluster roles: the nodes of every member, in node order. Otherwise []. */
  peers: string[];
}

export function noderoleName(deployment: string, node: string | null | undefined, role: string): string {
  return `${deployment}:${node ?? '-'}:${role}`;
}

interface Work {
  nr: PlannedNodeRole;
  spec: RoleSpec;
  nodeIndex: number;
  parents: Work[];
}

export function planDeployment(input: PlanInput): PlannedNodeRole[] {
  const { deployment, roles, nodes } = input;
  const byName = new Map(roles.map((r) => [r.name, r] as const));
  const nodeIndex = new Map(nodes.map((n, i) => [n, i] as const));

  // Requested bindings: known roles, known nodes, service roles once.
  const unknown = [...new Set(input.bindings.map((b) => b.role).filter((r) => !byName.has(r)))];
  if (unknown.length) {
    throw new FormworkError(
      'ROLE_UNKNOWN',
      `unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}: no loaded workload defines ${unknown.length > 1 ? 'them' : 'it'}`,
      { roles: unknown },
    );
  }
  const merged = new Map<string, string[]>();
  for (const b of input.bindings) {
    for (const n of b.nodes) {
      if (!nodeIndex.has(n)) {
        throw new FormworkError('VALIDATION', `role "${b.role}" is bound to node "${n}", which is not in deployment "${deployment}" (nodes: ${nodes.join(', ') || 'none'})`, { role: b.role, node: n });
      }
    }
    const list = merged.get(b.role) ?? [];
    for (const n of b.nodes) if (!list.includes(n)) list.push(n);
    merged.set(b.role, list);
  }
  for (const [role, ns] of merged) {
    if (hasFlag(byName.get(role)!, 'service') && ns.length > 1) {
      throw new FormworkError('ROLE_CONFLICT', `"${role}" is a service role, bound once per deployment; it is requested on ${ns.length} nodes (${ns.join(', ')})`, { role, nodes: ns });
    }
  }

  // Cycles among the roles this plan can reach.
  const everyNode = (input.everyNode ?? []).filter((r) => byName.has(r));
  const reach = new Set<string>();
  const stack = [...merged.keys(), ...everyNode];
  while (stack.length) {
    const r = stack.pop()!;
    if (reach.has(r)) continue;
    reach.add(r);
    for (const req of byName.get(r)!.requires) for (const c of candidatesFor(req, byName, roles)) stack.push(c.name);
  }
  const cycles = findCycles(roles.filter((r) => reach.has(r.name)));
  const selfLoop = roles.find((r) => reach.has(r.name) && r.requires.includes(r.name));
  if (selfLoop) cycles.unshift([selfLoop.name, selfLoop.name]);
  if (cycles.length) {
    throw new FormworkError('ROLE_CYCLE', `roles require each other in a cycle: ${cycles[0].join(' → ')}`, { cycle: cycles[0], cycles });
  }

  // Place node-roles.
  const perNode = new Map<string, Work[]>(nodes.map((n) => [n, []]));
  const perRole = new Map<string, Work[]>();
  const queue: Work[] = [];
  const place = (spec: RoleSpec, node: string, requested: boolean, reason?: string): Work => {
    const existing = perNode.get(node)!.find((w) => w.spec.name === spec.name);
    if (existing) {
      if (requested) {
        existing.nr.requested = true;
        delete existing.nr.reason;
      }
      return existing;
    }
    const w: Work = {
      nr: { name: noderoleName(deployment, node, spec.name), role: spec.name, node, parents: [], requested, ...(reason ? { reason } : {}), peers: [] },
      spec,
      nodeIndex: nodeIndex.get(node)!,
      parents: [],
    };
    perNode.get(node)!.push(w);
    const byRole = perRole.get(spec.name) ?? [];
    byRole.push(w);
    byRole.sort((a, b) => a.nodeIndex - b.nodeIndex);
    perRole.set(spec.name, byRole);
    queue.push(w);
    return w;
  };
  for (const [role, ns] of merged) {
    for (const n of [...ns].sort((a, b) => nodeIndex.get(a)! - nodeIndex.get(b)!)) place(byName.get(role)!, n, true);
  }
  for (const r of everyNode) for (const n of nodes) place(byName.get(r)!, n, false, 'bound on every node');

  while (queue.length) {
    const w = queue.shift()!;
    const addParent = (p: Work) => {
      if (p !== w && !w.parents.includes(p)) w.parents.push(p);
    };
    for (const req of w.spec.requires) {
      const local = perNode.get(w.nr.node)!.filter((x) => x !== w && satisfies(x.spec, req));
      if (local.length) {
        local.sort((a, b) => cmp(a.spec.name, b.spec.name)).forEach(addParent);
        continue;
      }
      const cands = candidatesFor(req, byName, roles);
      if (cands.length === 0) {
        throw new FormworkError('ROLE_UNSATISFIABLE', `role "${w.spec.name}" on node "${w.nr.node}" requires "${req}", which no loaded role is or provides`, {
          role: w.spec.name,
          node: w.nr.node,
          requires: req,
        });
      }
      let chosen = cands[0];
      if (cands.length > 1) {
        const bound = cands.filter((c) => perRole.has(c.name));
        if (bound.length === 0) {
          throw new FormworkError(
            'ROLE_UNSATISFIABLE',
            `role "${w.spec.name}" on node "${w.nr.node}" requires "${req}", which several roles provide (${cands.map((c) => c.name).join(', ')}): bind one of them explicitly`,
            { role: w.spec.name, node: w.nr.node, requires: req, candidates: cands.map((c) => c.name) },
          );
        }
        chosen = bound[0];
      }
      const members = perRole.get(chosen.name) ?? [];
      const why = `required by ${w.nr.name}`;
      if (hasFlag(chosen, 'service')) addParent(members[0] ?? place(chosen, w.nr.node, false, why));
      else if (hasFlag(chosen, 'cluster') && members.length) members.forEach(addParent);
      else addParent(place(chosen, w.nr.node, false, why));
    }
  }

  // A cluster member starts only when every member's own prerequisites are done: members
  // read each other's addresses (peers), and services like etcd form quorum only if all start.
  for (const [role, members] of perRole) {
    if (!hasFlag(byName.get(role)!, 'cluster') || members.length < 2) continue;
    const local = members.flatMap((m) => m.parents.filter((p) => p.nr.node === m.nr.node && !members.includes(p)));
    for (const m of members) for (const p of local) if (!m.parents.includes(p)) m.parents.push(p);
  }

  // Edges from inputs that read other roles' outputs (`outputs(etcd-member).client-url`).
  for (const b of input.bindings) {
    for (const dep of b.after ?? []) {
      const members = [...perRole.entries()].filter(([name]) => name === dep || satisfies(byName.get(name)!, dep)).flatMap(([, ws]) => ws);
      if (members.length === 0) {
        throw new FormworkError('ROLE_UNSATISFIABLE', `role "${b.role}" reads outputs(${dep}) or requires it, but "${dep}" is not bound in deployment "${deployment}": bind it too`, {
          role: b.role,
          requires: dep,
        });
      }
      for (const w of perRole.get(b.role) ?? []) for (const m of members) if (m !== w && !w.parents.includes(m)) w.parents.push(m);
    }
  }
  const cycle = findWorkCycle([...perNode.values()].flat());
  if (cycle) {
    throw new FormworkError('ROLE_CYCLE', `node-roles depend on each other in a cycle: ${cycle.join(' → ')}`, { cycle });
  }

  // Conflicts: two roles on one node where one names the other (or an alias it provides).
  const conflicts: Array<{ node: string; roles: [string, string] }> = [];
  for (const n of nodes) {
    const here = perNode.get(n)!;
    for (const a of here) {
      for (const c of a.spec.conflicts) {
        for (const b of here) {
          if (b === a || !satisfies(b.spec, c)) continue;
          const pair = [a.spec.name, b.spec.name].sort() as [string, string];
          if (!conflicts.some((x) => x.node === n && x.roles[0] === pair[0] && x.roles[1] === pair[1])) conflicts.push({ node: n, roles: pair });
        }
      }
    }
  }
  if (conflicts.length) {
    const all = [...perNode.values()].flat();
    const describe = (node: string, role: string) => {
      const w = all.find((x) => x.nr.node === node && x.spec.name === role)!;
      return w.nr.requested ? `"${role}"` : `"${role}" (${w.nr.reason})`;
    };
    const msg = conflicts.map((c) => `${describe(c.node, c.roles[0])} and ${describe(c.node, c.roles[1])} conflict on node "${c.node}"`).join('; ');
    throw new FormworkError('ROLE_CONFLICT', msg, { conflicts });
  }

  // Order: by node, then depth (longest chain of parents), then role name.
  const all = [...perNode.values()].flat();
  const depth = new Map<Work, number>();
  const depthOf = (w: Work): number => {
    let d = depth.get(w);
    if (d === undefined) {
      d = w.parents.length ? 1 + Math.max(...w.parents.map(depthOf)) : 0;
      depth.set(w, d);
    }
    return d;
  };
  all.sort((a, b) => a.nodeIndex - b.nodeIndex || depthOf(a) - depthOf(b) || cmp(a.spec.name, b.spec.name));
  const order = new Map(all.map((w, i) => [w, i] as const));
  for (const w of all) {
    w.nr.parents = [...w.parents].sort((a, b) => order.get(a)! - order.get(b)!).map((p) => p.nr.name);
    if (hasFlag(w.spec, 'cluster')) w.nr.peers = (perRole.get(w.spec.name) ?? []).map((m) => m.nr.node);
  }
  return all.map((w) => w.nr);
}

function findWorkCycle(all: Work[]): string[] | undefined {
  const state = new Map<Work, 1 | 2>();
  const path: Work[] = [];
  const visit = (w: Work): string[] | undefined => {
    if (state.get(w) === 2) return undefined;
    if (state.get(w) === 1) return [...path.slice(path.indexOf(w)), w].map((x) => x.nr.name);
    state.set(w, 1);
    path.push(w);
    for (const p of w.parents) {
      const c = visit(p);
      if (c) return c;
    }
    path.pop();
    state.set(w, 2);
    return undefined;
  };
  for (const w of all) {
    const c = visit(w);
    if (c) return c;
  }
  return undefined;
}
