import { describe, expect, it } from 'vitest';
import { encrypt, decrypt } from '../store/secrets.js';
import { protectOutputs, SecretValues } from './secrecy.js';
import { testRole } from '../core/testing/roles.js';

describe('secrecy follows the value', () => {
  const secrets = () => {
    const s = new SecretValues();
    s.add('hunter22');
    s.add({ nested: ['Zq8vXw31'] });
    s.add('ab'); // short: matched only whole
    return s;
  };

  it('finds a secret anywhere in a value: whole, inside a string, in lists and objects; short ones only whole', () => {
    const s = secrets();
    expect(s.holds('hunter22')).toBe(true);
    expect(s.holds({ dsn: ['db://u:hunter22@db'] })).toBe(true);
    expect(s.holds('Zq8vXw31')).toBe(true);
    expect(s.holds('ab')).toBe(true);
    expect(s.holds('about')).toBe(false);
    expect(s.holds({ word: 'hello', n: 3 })).toBe(false);
  });

  it('names the inputs that are secret by role or by value, and records the role-marked ones', () => {
    const s = secrets();
    const role = testRole('r', { inputs: { token: { secret: true }, pw: {}, plain: {} } });
    expect([...s.secretInputs({ token: 'tok-12345', pw: 'x-hunter22', plain: 'hello' }, role)].sort()).toEqual(['pw', 'token']);
    expect(s.holds('tok-12345')).toBe(true);
  });

  it('masks a log stream even when a secret is cut across chunks, and holds back no more than it must', () => {
    const m = secrets().masker();
    const out = [m.push('line 1\npw=hun'), m.push('ter'), m.push('22 done\n'), m.push('tail h'), m.end()];
    expect(out.join('')).toBe('line 1\npw=[redacted] done\ntail h');
    expect(out[0]).toBe('line 1\npw='); // what cannot begin a secret is not held back
    expect(secrets().mask('a hunter22 b Zq8vXw31 c ab')).toBe('a [redacted] b [redacted] c ab');
  });

  it('seals outputs holding a secret for the owner, keeps an unchanged sealed form, and shows them redacted', () => {
    const key = Buffer.alloc(32, 7);
    const box = { seal: (p: string, o: string) => encrypt(key, p, o), unseal: (v: string, o: string) => decrypt(key, v, o) };
    const s = secrets();
    const first = protectOutputs({ url: 'http://x', copy: 'hunter22' }, s, undefined, box, 'deployment:d');
    expect(first.shown).toEqual({ url: 'http://x', copy: '[redacted]' });
    const sealed = (first.stored.copy as { $sealed: string }).$sealed;
    expect(sealed).toMatch(/^v2:/);
    expect(JSON.parse(decrypt(key, sealed, 'deployment:d'))).toBe('hunter22');
    expect(() => decrypt(key, sealed, 'deployment:other')).toThrow(/sealed for another object/);
    expect(protectOutputs({ url: 'http://x', copy: 'hunter22' }, s, first.stored, box, 'deployment:d').stored).toEqual(first.stored);
    expect(protectOutputs({ url: 'http://x', copy: 'Zq8vXw31' }, s, first.stored, box, 'deployment:d').stored.copy).not.toEqual(first.stored.copy);
  });
});
