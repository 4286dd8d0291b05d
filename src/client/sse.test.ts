import { describe, expect, it } from 'vitest';
import { SseParser } from './sse.js';

describe('SseParser', () => {
  it('parses events split across chunks, with ids, types and comments', () => {
    const p = new SseParser();
    expect(p.push(': ping\n\nid: 1\nevent: no')).toEqual([]);
    expect(p.push('des\ndata: {"a":1}\n\nid: 2\ndata: x\n')).toEqual([{ id: '1', event: 'nodes', data: '{"a":1}' }]);
    expect(p.push('\n')).toEqual([{ id: '2', event: 'message', data: 'x' }]);
    expect(p.lastEventId).toBe('2');
  });

  it('joins multi-line data, handles CRLF and a CR split from its LF, and retry', () => {
    const p = new SseParser();
    const out = p.push('retry: 1500\r\ndata: a\r\ndata:b\r');
    expect(out).toEqual([]);
    expect(p.push('\n\r\n')).toEqual([{ event: 'message', data: 'a\nb', retry: 1500 }]);
  });

  it('ignores events without data', () => {
    const p = new SseParser();
    expect(p.push('event: x\n\nid: 5\n\n')).toEqual([]);
    expect(p.lastEventId).toBe('5');
  });
});
