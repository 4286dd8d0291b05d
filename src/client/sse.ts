/**
 * A parser for the Server-Sent Events wire format (the WHATWG "event stream"): feed it
 * text as it arrives, get back whole events. Handles CRLF/CR/LF line ends, comments,
 * multi-line `data:`, `id:` and `retry:`.
 *
 * @example
 *   const p = new SseParser();
 *   p.push('id: 1\nevent: nodes\ndata: {"a":1}\n\n'); // [{ id: '1', event: 'nodes', data: '{"a":1}' }]
 */

export interface SseMessage {
  /** The last `id:` seen (carried over from earlier events, as the spec says). */
  id?: string;
  event: string;
  data: string;
  retry?: number;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private lastId: string | undefined;
  private retry: number | undefined;
  private sawField = false;

  /** The id of the last event dispatched (or set), for Last-Event-ID on reconnect. */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone trailing CR may be the first half of CRLF: wait for more input.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawField = true;
        break;
      case 'event':
        this.event = value;
        this.sawField = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const had = this.sawField && this.data.length > 0;
    const msg: SseMessage | undefined = had
      ? {
          ...(this.lastId !== undefined ? { id: this.lastId } : {}),
          event: this.event || 'message',
          data: this.data.join('\n'),
          ...(this.retry !== undefined ? { retry: this.retry } : {}),
        }
      : undefined;
    this.data = [];
    this.event = '';
    this.sawField = false;
    return msg;
  }
}
