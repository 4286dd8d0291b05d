import { describe, expect, it } from 'vitest';
import { renderScript } from './template.js';
import { HeadTailText } from './log.js';
import { inputEnv } from './process.js';
import { parseRetryTarget } from './graph.js';
import { inputsChanged } from './inputs.js';
import { hashInputs } from '../core/attribs.js';

describe('engine units', () => {
  it('inputsChanged compares by the keyed hash, and still understands a plain one stored before hashes were keyed', () => {
    const key = Buffer.alloc(32, 3);
    const resolved = { inputs: { a: 1, token: 's' }, hash: hashInputs({ a: 1, token: 's' }, key) };
    expect(inputsChanged(resolved, resolved.hash)).toBe(false);
    expect(inputsChanged(resolved, hashInputs({ a: 2, token: 's' }, key))).toBe(true);
    expect(inputsChanged(resolved, hashInputs({ a: 1, token: 's' }))).toBe(false); // an upgrade re-runs nothing
    expect(inputsChanged(resolved, hashInputs({ a: 1, token: 't' }))).toBe(true);
    expect(inputsChanged(resolved, undefined)).toBe(true);
  });

  it('renders templates as references to variables holding the values: paths, json, indexes; refuses unknown names and logic', () => {
    const ctx = { inputs: { name: 'x', peers: [{ name: 'a' }], n: 3, evil: 'a"; id; echo "' }, node: { name: 'web-1' } };
    expect(renderScript('{{ inputs.name }} {{node.name}} {{ json inputs.peers }} {{ inputs.peers.0.name }} {{ inputs.n }} {{ json inputs.name }}', ctx)).toEqual({
      text: '${FW_TPL_1} ${FW_TPL_2} ${FW_TPL_3} ${FW_TPL_4} ${FW_TPL_5} ${FW_TPL_6}',
      env: { FW_TPL_1: 'x', FW_TPL_2: 'web-1', FW_TPL_3: '[{"name":"a"}]', FW_TPL_4: 'a', FW_TPL_5: '3', FW_TPL_6: '"x"' },
    });
    // A value never becomes text of the script, whatever it holds.
    const evil = renderScript('echo "{{ inputs.evil }}"', ctx);
    expect(evil.text).toBe('echo "${FW_TPL_1}"');
    expect(evil.env.FW_TPL_1).toBe('a"; id; echo "');
    expect(() => renderScript('{{ inputs.nope }}', ctx, 'f.sh')).toThrow(/f\.sh: \{\{ inputs\.nope \}\} names "inputs\.nope", which does not exist; known: name, peers, n/);
    expect(() => renderScript('{{ #if x }}', ctx)).toThrow(/not a template tag/);
    expect(renderScript('echo ${HOME} { not a tag }', ctx)).toEqual({ text: 'echo ${HOME} { not a tag }', env: {} });
  });

  it('keeps the head and tail of a long log with a marker', () => {
    const b = new HeadTailText(100);
    b.push('H'.repeat(60));
    for (let i = 0; i < 100; i++) b.push('m'.repeat(10));
    b.push('T'.repeat(20));
    const s = b.toString();
    expect(s.startsWith('H'.repeat(50))).toBe(true);
    expect(s.endsWith('m'.repeat(30) + 'T'.repeat(20))).toBe(true);
    expect(s).toContain('[... 980 characters truncated ...]');
    const small = new HeadTailText(100);
    small.push('abc');
    expect(small.toString()).toBe('abc');
  });

  it('names input variables FW_INPUT_<NAME> with non-strings as JSON', () => {
    expect(inputEnv({ 'cluster-token': 't', peers: [1], port: 2379 })).toEqual({ FW_INPUT_CLUSTER_TOKEN: 't', FW_INPUT_PEERS: '[1]', FW_INPUT_PORT: '2379' });
  });

  it('parses retry targets', () => {
    expect(parseRetryTarget('deployment/demo')).toEqual({ deployment: 'demo' });
    expect(parseRetryTarget('demo:n1:a')).toEqual({ noderole: 'demo:n1:a' });
  });
});
