import { describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { envBlock, shellQuote, wrapCommand } from './quoting.js';

describe('shell quoting', () => {
  it('quotes anything into one safe word', () => {
    expect(shellQuote('abc')).toBe('abc');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    expect(shellQuote('$(x)')).toBe(`'$(x)'`);
  });

  it('wraps with env and sudo -n -E only for non-root users', () => {
    expect(wrapCommand('id', { username: 'root', sudo: true })).toBe('/bin/sh -c id');
    expect(wrapCommand('id', { username: 'debian', sudo: true })).toBe(`sudo -n -E sh -c '/bin/sh -c id'`);
    // The environment is read from stdin (envBlock), never written into the command.
    const withEnv = wrapCommand('id', { username: 'debian', env: { A: 'x y' } });
    expect(withEnv).toMatch(/^\/bin\/sh -c '[\s\S]*read -r[\s\S]*exec \/bin\/sh -c id'$/);
    expect(withEnv).not.toContain('x y');
    expect(envBlock({ A: 'x y', B: 'two\nlines' })).toBe(`3\nexport A='x y'\nexport B='two\nlines'\n`);
    expect(() => wrapCommand('id', { username: 'u', env: { 'A-B': '1' } })).toThrow(/not valid/);
    expect(() => wrapCommand('id', { username: 'u', env: { 'A=B': '1' } })).toThrow(FormworkError);
  });
});
