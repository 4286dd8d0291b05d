import { describe, expect, it } from 'vitest';
import { MarkerSplitter } from './script.js';

describe('MarkerSplitter', () => {
  const run = (chunks: string[]) => {
    const logged: string[] = [];
    const s = new MarkerSplitter('MARK-1', (c) => logged.push(c));
    for (const c of chunks) s.push(c);
    s.end();
    return { log: logged.join(''), found: s.found, after: s.after };
  };

  it('forwards the log and keeps what follows the marker line', () => {
    expect(run(['hello\nworld\n', '\nMARK-1\n{"a":1}'])).toEqual({ log: 'hello\nworld\n', found: true, after: '{"a":1}' });
  });

  it('finds a marker split across chunks, one character at a time', () => {
    const text = 'line one\nline two\nMARK-1\n{"b":2}\n';
    expect(run([...text])).toEqual({ log: 'line one\nline two', found: true, after: '{"b":2}\n' });
  });

  it('streams a line at once instead of holding it back for a marker that may follow', () => {
    const logged: string[] = [];
    const s = new MarkerSplitter('MARK-1', (c) => logged.push(c));
    s.push('sleeping on f-2\n');
    expect(logged.join('')).toBe('sleeping on f-2');
    s.push('still here\n');
    expect(logged.join('')).toBe('sleeping on f-2\nstill here');
  });

  it('forwards everything when the marker never comes', () => {
    expect(run(['no marker ', 'here\nMARK-', '2\n'])).toEqual({ log: 'no marker here\nMARK-2\n', found: false, after: '' });
  });
});
