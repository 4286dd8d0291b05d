import http from 'node:http';
import { FormworkError } from '../core/errors.js';

/**
 * The demo's proof, `formwork up`'s last step: etcd, reached through haproxy, keeps what it
 * is given. A key written there reads back (RUN_FAILED otherwise).
 *
 * @example
 *   const { key, value } = await proveThroughHaproxy('198.18.0.14:2379');
 */
export async function proveThroughHaproxy(frontend: string): Promise<{ key: string; value: string }> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const key = 'formwork-up';
  const value = `written at ${new Date().toISOString()}`;
  // node:http rather than fetch: loading fetch's implementation (undici) is ~50 ms of a CLI.
  const post = (p: string, body: unknown) =>
    new Promise<{ kvs?: Array<{ value: string }> }>((resolve, reject) => {
      const fail = (why: string) => reject(new FormworkError('RUN_FAILED', `etcd through haproxy at ${frontend}: ${why} (${p})`));
      const req = http.request(`http://${frontend}${p}`, { method: 'POST', timeout: 10_000, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if (res.statusCode !== 200) return fail(`answered ${res.statusCode}`);
          try {
            resolve(JSON.parse(text) as { kvs?: Array<{ value: string }> });
          } catch {
            fail('answered something other than JSON');
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', (e) => fail(e.message));
      req.end(JSON.stringify(body));
    });
  await post('/v3/kv/put', { key: b64(key), value: b64(value) });
  const got = await post('/v3/kv/range', { key: b64(key) });
  const read = got.kvs?.[0] ? Buffer.from(got.kvs[0].value, 'base64').toString() : undefined;
  if (read !== value) throw new FormworkError('RUN_FAILED', `wrote "${value}" through haproxy at ${frontend} but read back ${JSON.stringify(read)}`);
  return { key, value };
}
