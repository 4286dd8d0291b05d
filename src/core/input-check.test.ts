import { describe, expect, it } from 'vitest';
import { checkBoundInputs, type BoundInputsContext } from './input-check.js';
import { testRole } from './testing/roles.js';

const app = testRole('app', {
  inputs: {
    count: { schema: { type: 'integer' } },
    token: { schema: { type: 'string' }, secret: true },
    site: { schema: { type: 'string' }, required: true },
  },
});
const helper = testRole('helper', { inputs: { level: { schema: { type: 'integer' }, required: true } } });

function ctx(over: Partial<BoundInputsContext>): BoundInputsContext {
  return {
    planned: [{ role: 'app', node: 'n0' }, { role: 'app', node: 'n1' }],
    roles: new Map([app, helper].map((r) => [r.name, r])),
    bindings: { app: { nodes: ['n0', 'n1'], inputs: { site: 's' } } },
    deploymentAttribs: {},
    nodeAttribs: new Map(),
    workloadDefaults: new Map(),
    ...over,
  };
}

describe('checkBoundInputs', () => {
  it('judges only the value that would be used, level by level as resolveInputs takes them', () => {
    // The deployment's "two" is never used where the binding or the node gives a number.
    const shadowed = ctx({ bindings: { app: { nodes: ['n0', 'n1'], inputs: { site: 's', count: 2 } } }, deploymentAttribs: { count: 'two' } });
    expect(checkBoundInputs(shadowed)).toEqual([]);
    const partly = ctx({ deploymentAttribs: { count: 'two' }, nodeAttribs: new Map([['n0', { count: 1 }]]) });
    expect(checkBoundInputs(partly)).toEqual([{ role: 'app', input: 'count', nodes: ['n1'], field: 'attribs.count', message: expect.stringContaining('the value "two" from the deployment\'s attribs') }]);
  });

  it('leaves expressions to run time and never shows a secret value', () => {
    expect(checkBoundInputs(ctx({ bindings: { app: { nodes: ['n0', 'n1'], inputs: { site: 'node.name', count: { from: 'node.name' } } } } }))).toEqual([]);
    const [secret] = checkBoundInputs(ctx({ deploymentAttribs: { token: 12345 } }));
    expect(secret.message).toMatch(/^the value from the deployment's attribs does not match/);
    expect(secret.message).not.toContain('12345');
  });

  it('finds a required input without a value on a role bound automatically, on each of its nodes once', () => {
    const problems = checkBoundInputs(ctx({ planned: [{ role: 'helper', node: 'n0' }, { role: 'helper', node: 'n1' }], bindings: {} }));
    expect(problems).toEqual([{ role: 'helper', input: 'level', nodes: ['n0', 'n1'], field: 'roles.helper.inputs.level', message: expect.stringContaining('required, and nothing gives it a value') }]);
    expect(checkBoundInputs(ctx({ planned: [{ role: 'helper', node: 'n0' }], bindings: {}, workloadDefaults: new Map([['test', { level: 3 }]]) }))).toEqual([]);
  });
});
