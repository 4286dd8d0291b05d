import { describe, expect, it } from 'vitest';
import { FormworkError } from './errors.js';
import { planDeployment, type PlanInput } from './planner.js';
import { CORE_ROLES, testRole } from './testing/roles.js';

const ETCD = [
  ...CORE_ROLES,
  testRole('etcd-member', { requires: ['node-ready'], flags: ['cluster'] }),
  testRole('etcd-healthy', { requires: ['etcd-member'], flags: ['service'] }),
  testRole('haproxy', { requires: ['node-ready', 'etcd-member'], conflicts: ['nginx'] }),
  testRole('nginx', { requires: ['node-ready'] }),
];
const NODES = ['d-0', 'd-1', 'd-2', 'd-3'];

function plan(extra: Partial<PlanInput>) {
  return planDeployment({ deployment: 'd', roles: ETCD, nodes: NODES, bindings: [], ...extra });
}

function code(fn: () => unknown): { code: string; message: string; details: unknown } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FormworkError);
    const fe = e as FormworkError;
    return { code: fe.code, message: fe.message, details: fe.details };
  }
  throw new Error('expected a FormworkError');
}

describe('planDeployment', () => {
  it('auto-binds required roles on the same node, recursively, with parent edges', () => {
    const out = plan({ nodes: ['d-0'], bindings: [{ role: 'nginx', nodes: ['d-0'] }] });
    expect(out.map((n) => [n.name, n.parents, n.requested])).toEqual([
      ['d:d-0:provision', [], false],
      ['d:d-0:node-ready', ['d:d-0:provision'], false],
      ['d:d-0:nginx', ['d:d-0:node-ready'], true],
    ]);
    expect(out[0].reason).toMatch(/required by d:d-0:node-ready/);
  });

  it('takes the parents of a cluster role from the deployment (haproxy on node 3 → etcd-member on 0,1,2)', () => {
    const out = plan({ bindings: [{ role: 'etcd-member', nodes: ['d-0', 'd-1', 'd-2'] }, { role: 'haproxy', nodes: ['d-3'] }] });
    const haproxy = out.find((n) => n.role === 'haproxy')!;
    expect(haproxy.parents).toEqual(['d:d-0:etcd-member', 'd:d-1:etcd-member', 'd:d-2:etcd-member', 'd:d-3:node-ready']);
    expect(out.filter((n) => n.role === 'etcd-member')).toHaveLength(3);
    // cluster members know their peers, in node order
    expect(out.find((n) => n.name === 'd:d-1:etcd-member')!.peers).toEqual(['d-0', 'd-1', 'd-2']);
    expect(haproxy.peers).toEqual([]);
  });

  it('makes every node-role of a role whose outputs a binding reads a parent of it, and refuses cycles and unbound ones', () => {
    const out = plan({
      bindings: [
        { role: 'etcd-member', nodes: ['d-0', 'd-1', 'd-2'] },
        { role: 'nginx', nodes: ['d-3'], after: ['etcd-member'] },
      ],
    });
    expect(out.find((n) => n.role === 'nginx')!.parents).toEqual(['d:d-0:etcd-member', 'd:d-1:etcd-member', 'd:d-2:etcd-member', 'd:d-3:node-ready']);
    expect(code(() => plan({ bindings: [{ role: 'nginx', nodes: ['d-3'], after: ['etcd-member'] }] })).code).toBe('ROLE_UNSATISFIABLE');
    const cyc = code(() =>
      plan({
        bindings: [
          { role: 'nginx', nodes: ['d-0'], after: ['etcd-member'] },
          { role: 'etcd-member', nodes: ['d-0'], after: ['nginx'] },
        ],
      }),
    );
    expect(cyc.code).toBe('ROLE_CYCLE');
    expect(cyc.message).toContain('d:d-0:nginx');
  });

  it('binds a service role once per deployment, on the first node needing it, preferring where it is bound', () => {
    const roles = [...ETCD, testRole('watcher', { requires: ['etcd-healthy'] })];
    const auto = planDeployment({ deployment: 'd', roles, nodes: NODES, bindings: [{ role: 'etcd-member', nodes: ['d-0', 'd-1'] }, { role: 'watcher', nodes: ['d-2', 'd-3'] }] });
    const healthy = auto.filter((n) => n.role === 'etcd-healthy');
    expect(healthy.map((n) => n.node)).toEqual(['d-2']);
    expect(healthy[0].parents).toEqual(['d:d-0:etcd-member', 'd:d-1:etcd-member']);
    expect(auto.find((n) => n.name === 'd:d-3:watcher')!.parents).toEqual(['d:d-2:etcd-healthy']);

    const bound = planDeployment({ deployment: 'd', roles, nodes: NODES, bindings: [{ role: 'etcd-member', nodes: ['d-0'] }, { role: 'watcher', nodes: ['d-2'] }, { role: 'etcd-healthy', nodes: ['d-1'] }] });
    expect(bound.filter((n) => n.role === 'etcd-healthy').map((n) => n.node)).toEqual(['d-1']);
    expect(bound.find((n) => n.role === 'watcher')!.parents).toContain('d:d-1:etcd-healthy');
  });

  it('refuses a service role requested on two nodes', () => {
    expect(code(() => plan({ bindings: [{ role: 'etcd-member', nodes: ['d-0'] }, { role: 'etcd-healthy', nodes: ['d-0', 'd-1'] }] })).code).toBe('ROLE_CONFLICT');
  });

  it('satisfies an alias with the role that provides it', () => {
    const roles = [testRole('base'), testRole('lab-join', { provides: ['joined'], requires: ['base'] }), testRole('app', { requires: ['joined'] })];
    const out = planDeployment({ deployment: 'd', roles, nodes: ['n'], bindings: [{ role: 'app', nodes: ['n'] }] });
    expect(out.map((n) => n.role)).toEqual(['base', 'lab-join', 'app']);
    expect(out[2].parents).toEqual(['d:n:lab-join']);
  });

  it('binds node-ready on every node when asked', () => {
    const out = plan({ nodes: ['d-0', 'd-1'], everyNode: ['node-ready'] });
    expect(out.map((n) => n.name)).toEqual(['d:d-0:provision', 'd:d-0:node-ready', 'd:d-1:provision', 'd:d-1:node-ready']);
  });

  it('refuses conflicting roles on one node, naming them and why they are there', () => {
    const e = code(() => plan({ bindings: [{ role: 'etcd-member', nodes: ['d-0'] }, { role: 'haproxy', nodes: ['d-1'] }, { role: 'nginx', nodes: ['d-1'] }] }));
    expect(e.code).toBe('ROLE_CONFLICT');
    expect(e.message).toContain('"haproxy" and "nginx" conflict on node "d-1"');
    // an auto-bound role that conflicts is reported with its reason
    const roles = [testRole('a', { requires: ['b'] }), testRole('b'), testRole('c', { conflicts: ['b'] })];
    const e2 = code(() => planDeployment({ deployment: 'd', roles, nodes: ['n'], bindings: [{ role: 'a', nodes: ['n'] }, { role: 'c', nodes: ['n'] }] }));
    expect(e2.code).toBe('ROLE_CONFLICT');
    expect(e2.message).toContain('"b" (required by d:n:a)');
  });

  it('refuses unknown roles', () => {
    const e = code(() => plan({ bindings: [{ role: 'nope', nodes: ['d-0'] }, { role: 'nada', nodes: ['d-0'] }] }));
    expect(e.code).toBe('ROLE_UNKNOWN');
    expect(e.message).toContain('"nope", "nada"');
  });

  it('refuses cycles and reports the path', () => {
    const roles = [testRole('a', { requires: ['b'] }), testRole('b', { requires: ['c'] }), testRole('c', { requires: ['a'] })];
    const e = code(() => planDeployment({ deployment: 'd', roles, nodes: ['n'], bindings: [{ role: 'a', nodes: ['n'] }] }));
    expect(e.code).toBe('ROLE_CYCLE');
    expect((e.details as { cycle: string[] }).cycle).toEqual(['a', 'b', 'c', 'a']);
    expect(e.message).toContain('a → b → c → a');
  });

  it('refuses unsatisfiable requirements (nothing provides it, or it is ambiguous)', () => {
    const e = code(() => planDeployment({ deployment: 'd', roles: [testRole('a', { requires: ['ghost'] })], nodes: ['n'], bindings: [{ role: 'a', nodes: ['n'] }] }));
    expect(e.code).toBe('ROLE_UNSATISFIABLE');
    expect(e.message).toContain('"ghost"');
    const roles = [testRole('x1', { provides: ['x'] }), testRole('x2', { provides: ['x'] }), testRole('app', { requires: ['x'] })];
    const amb = code(() => planDeployment({ deployment: 'd', roles, nodes: ['n'], bindings: [{ role: 'app', nodes: ['n'] }] }));
    expect(amb.code).toBe('ROLE_UNSATISFIABLE');
    expect(amb.message).toContain('x1, x2');
    // binding one of them explicitly resolves it
    const ok = planDeployment({ deployment: 'd', roles, nodes: ['n', 'm'], bindings: [{ role: 'app', nodes: ['m'] }, { role: 'x2', nodes: ['n'] }] });
    expect(ok.find((n) => n.role === 'app')!.parents).toEqual(['d:m:x2']);
  });

  it('refuses a binding to a node outside the deployment', () => {
    expect(code(() => plan({ bindings: [{ role: 'nginx', nodes: ['elsewhere'] }] })).code).toBe('VALIDATION');
  });

  it('is deterministic whatever the order of bindings and catalogue', () => {
    const a = plan({ bindings: [{ role: 'etcd-member', nodes: ['d-2', 'd-0', 'd-1'] }, { role: 'haproxy', nodes: ['d-3'] }, { role: 'etcd-healthy', nodes: ['d-1'] }] });
    const b = planDeployment({
      deployment: 'd',
      roles: [...ETCD].reverse(),
      nodes: NODES,
      bindings: [{ role: 'etcd-healthy', nodes: ['d-1'] }, { role: 'haproxy', nodes: ['d-3'] }, { role: 'etcd-member', nodes: ['d-0', 'd-1', 'd-2'] }],
    });
    expect(b).toEqual(a);
    expect(a.map((n) => n.name)).toEqual([
      'd:d-0:provision', 'd:d-0:node-ready', 'd:d-0:etcd-member',
      'd:d-1:provision', 'd:d-1:node-ready', 'd:d-1:etcd-member', 'd:d-1:etcd-healthy',
      'd:d-2:provision', 'd:d-2:node-ready', 'd:d-2:etcd-member',
      'd:d-3:provision', 'd:d-3:node-ready', 'd:d-3:haproxy',
    ]);
  });
});
