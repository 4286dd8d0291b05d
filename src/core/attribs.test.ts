import { describe, expect, it } from 'vitest';
import {
  clusterPeers,
  evaluateExpression,
  generatedValues,
  hashInputs,
  normalizeOverride,
  resolveInputs,
  type ResolveContext,
} from './attribs.js';
import { FormworkError } from './errors.js';
import { parseExpression } from './expressions.js';
import { testRole } from './testing/roles.js';

const node = {
  name: 'demo-0',
  addresses: [
    { address: 'fd00::5', family: 6, role: 'private' },
    { address: '10.0.0.5', family: 4, role: 'private' },
    { address: '198.18.0.5', family: 4, role: 'public' },
  ],
  attribs: {},
};

function ctx(extra: Partial<ResolveContext> = {}): ResolveContext {
  return { noderole: { name: 'demo:demo-0:r', attribs: {} }, node, deployment: { name: 'demo', attribs: {} }, parents: [], ...extra };
}

describe('resolveInputs precedence', () => {
  const role = testRole('r', { inputs: { v: { schema: { type: 'string' }, from: 'node.name', default: 'role-default' } } });
  const levels = {
    noderole: { noderole: { name: 'demo:demo-0:r', attribs: { v: 'noderole' } } },
    node: { node: { ...node, attribs: { v: 'node' } } },
    deployment: { deployment: { name: 'demo', attribs: { v: 'deployment' } } },
    workload: { workloadDefaults: { v: 'workload' } },
  };

  it('each level beats the next', () => {
    const all = { ...levels.noderole, ...levels.node, ...levels.deployment, ...levels.workload };
    expect(resolveInputs(role, ctx(all))).toEqual({ inputs: { v: 'noderole' }, sources: { v: 'noderole' } });
    const { noderole: _1, ...noNr } = all;
    expect(resolveInputs(role, ctx(noNr)).inputs.v).toBe('node');
    const { node: _2, ...noNode } = noNr;
    expect(resolveInputs(role, ctx(noNode)).inputs.v).toBe('deployment');
    const { deployment: _3, ...noDep } = noNode;
    expect(resolveInputs(role, ctx(noDep))).toEqual({ inputs: { v: 'demo-0' }, sources: { v: 'from' } });
    const noFrom = testRole('r', { inputs: { v: { schema: { type: 'string' }, default: 'role-default' } } });
    expect(resolveInputs(noFrom, ctx(noDep)).inputs.v).toBe('role-default');
    const noDefault = testRole('r', { inputs: { v: { schema: { type: 'string' } } } });
    expect(resolveInputs(noDefault, ctx(noDep))).toEqual({ inputs: { v: 'workload' }, sources: { v: 'workload' } });
    expect(resolveInputs(noDefault, ctx()).inputs).toEqual({});
  });

  it('an override that is an expression is evaluated; one giving nothing falls through', () => {
    const r = testRole('r', { inputs: { v: { default: 'dflt' } } });
    expect(resolveInputs(r, ctx({ noderole: { name: 'x', attribs: { v: { $from: 'node.addresses.public[0]' } } } })).inputs.v).toBe('198.18.0.5');
    expect(resolveInputs(r, ctx({ noderole: { name: 'x', attribs: { v: { $from: 'outputs(nothing).x' } } } })).inputs.v).toBe('dflt');
  });

  it('fails with INPUT_INVALID naming role, node and field (secret values not shown)', () => {
    const r = testRole('etcd-member', { inputs: { port: { schema: { type: 'integer' } }, token: { schema: { type: 'string' }, secret: true } } });
    let err: FormworkError | undefined;
    try {
      resolveInputs(r, ctx({ deployment: { name: 'demo', attribs: { port: 'abc' } } }));
    } catch (e) {
      err = e as FormworkError;
    }
    expect(err?.code).toBe('INPUT_INVALID');
    expect(err?.message).toContain('input "port" of role "etcd-member" on node "demo-0"');
    expect(err?.details).toMatchObject({ role: 'etcd-member', node: 'demo-0', field: 'port' });
    try {
      resolveInputs(r, ctx({ deployment: { name: 'demo', attribs: { token: 12345678 } } }));
    } catch (e) {
      err = e as FormworkError;
    }
    expect(err?.details).toMatchObject({ field: 'token' });
    expect(err?.message).not.toContain('12345678');
    const req = testRole('r', { inputs: { must: { required: true } } });
    expect(() => resolveInputs(req, ctx())).toThrow(/input "must".*no value/);
  });

  it('uses the generated value stored at bind time, and fails if there is none', () => {
    const r = testRole('r', { inputs: { token: { schema: { type: 'string' }, secret: true, default: 'generated' } } });
    const out = resolveInputs(r, ctx({ noderole: { name: 'x', attribs: { $generated: { token: 'abc' } } } }));
    expect(out).toEqual({ inputs: { token: 'abc' }, sources: { token: 'generated' } });
    expect(() => resolveInputs(r, ctx())).toThrow(/generated value is missing/);
    // a deployment attrib still beats it
    expect(resolveInputs(r, ctx({ noderole: { name: 'x', attribs: { $generated: { token: 'abc' } } }, deployment: { name: 'd', attribs: { token: 'set' } } })).inputs.token).toBe('set');
  });

  it('gives cluster roles their peers', () => {
    const r = testRole('m', { flags: ['cluster'] });
    const peers = clusterPeers(
      [{ name: 'd:b:m', node: 'b' }, { name: 'd:a:m', node: 'a' }],
      [{ name: 'a', addresses: [{ address: '10.0.0.1', family: 4, role: 'private' }] }, { name: 'b', addresses: [{ address: '10.0.0.2', family: 4, role: 'private' }, { address: '1.2.3.4', family: 4, role: 'public' }] }],
    );
    expect(peers).toEqual([
      { name: 'd:a:m', node: 'a', addresses: { public: [], private: ['10.0.0.1'] } },
      { name: 'd:b:m', node: 'b', addresses: { public: ['1.2.3.4'], private: ['10.0.0.2'] } },
    ]);
    expect(resolveInputs(r, ctx({ peers }))).toEqual({ inputs: { peers }, sources: { peers: 'peers' } });
  });
});

describe('from expressions', () => {
  it('parses and refuses', () => {
    expect(parseExpression('node.addresses.private[0]')).toEqual({ kind: 'node', path: ['addresses', 'private', 0] });
    expect(parseExpression('outputs(etcd-member).client-url')).toEqual({ kind: 'outputs', role: 'etcd-member', path: ['client-url'] });
    expect(parseExpression('deployment.attribs.etcd-version')).toEqual({ kind: 'deployment', path: ['attribs', 'etcd-version'] });
    expect(parseExpression('nodes.name')).toHaveProperty('error');
    expect(parseExpression('node.example.com')).toHaveProperty('error');
    expect(parseExpression('outputs(x)')).toHaveProperty('error');
  });

  it('reads node facts (IPv4 first) and deployment attribs', () => {
    const c = ctx({ deployment: { name: 'demo', attribs: { 'etcd-version': '3.4' } } });
    expect(evaluateExpression('node.addresses.private[0]', c)).toBe('10.0.0.5');
    expect(evaluateExpression('node.addresses.private', c)).toEqual(['10.0.0.5', 'fd00::5']);
    expect(evaluateExpression('node.name', c)).toBe('demo-0');
    expect(evaluateExpression('deployment.attribs.etcd-version', c)).toBe('3.4');
    expect(evaluateExpression('deployment.name', c)).toBe('demo');
  });

  it('outputs(ROLE).FIELD: a list over parents of ROLE (or its alias), a single value when one and the schema is not an array', () => {
    const parents = [
      { name: 'd:a:etcd-member', role: 'etcd-member', outputs: { 'client-url': 'http://a:2379' } },
      { name: 'd:b:etcd-member', role: 'etcd-member', outputs: { 'client-url': 'http://b:2379' } },
      { name: 'd:c:node-ready', role: 'lab-join', provides: ['node-ready'], outputs: { user: 'root' } },
    ];
    const c = ctx({ parents });
    expect(evaluateExpression('outputs(etcd-member).client-url', c)).toEqual(['http://a:2379', 'http://b:2379']);
    expect(evaluateExpression('outputs(node-ready).user', c)).toBe('root');
    expect(evaluateExpression('outputs(node-ready).user', c, { schema: { type: 'array' } })).toEqual(['root']);
    expect(evaluateExpression('outputs(etcd-member).missing', c)).toBeUndefined();
  });
});

describe('helpers', () => {
  it('normalizes binding overrides', () => {
    expect(normalizeOverride('outputs(etcd-member).client-url')).toEqual({ $from: 'outputs(etcd-member).client-url' });
    expect(normalizeOverride({ from: 'node.name' })).toEqual({ $from: 'node.name' });
    expect(normalizeOverride('plain text')).toBe('plain text');
    expect(normalizeOverride('node.example.com')).toBe('node.example.com');
    expect(normalizeOverride(['a'])).toEqual(['a']);
  });

  it('hashes stably', () => {
    expect(hashInputs({ a: 1, b: { y: 2, x: [1, { q: 1, p: 2 }] } })).toBe(hashInputs({ b: { x: [1, { p: 2, q: 1 }], y: 2 }, a: 1 }));
    expect(hashInputs({ a: 1 })).not.toBe(hashInputs({ a: 2 }));
    expect(hashInputs({ a: 1 })).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Keyed, a guess cannot be checked without the key.
    const k1 = Buffer.alloc(32, 1);
    expect(hashInputs({ s: 'hunter2' }, k1)).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(hashInputs({ s: 'hunter2' }, k1)).toBe(hashInputs({ s: 'hunter2' }, Buffer.alloc(32, 1)));
    expect(hashInputs({ s: 'hunter2' }, k1)).not.toBe(hashInputs({ s: 'hunter2' }, Buffer.alloc(32, 2)));
    expect(hashInputs({ s: 'hunter2' }, k1).slice(-64)).not.toBe(hashInputs({ s: 'hunter2' }).slice(-64));
  });

  it('keeps generated values, shares them in a cluster, generates the rest', () => {
    let n = 0;
    const gen = () => `tok${++n}`;
    const plain = testRole('p', { inputs: { t: { default: 'generated' }, u: { default: 'generated' } } });
    expect(generatedValues(plain, { t: 'kept' }, { u: 'sib' }, gen)).toEqual({ t: 'kept', u: 'tok1' });
    const cluster = testRole('c', { flags: ['cluster'], inputs: { t: { default: 'generated' } } });
    expect(generatedValues(cluster, undefined, { t: 'sib' }, gen)).toEqual({ t: 'sib' });
    expect(generatedValues(testRole('none'), undefined, undefined, gen)).toBeUndefined();
  });
});
