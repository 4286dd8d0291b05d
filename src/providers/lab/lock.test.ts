import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { withFileLock } from './lock.js';

const execFileAsync = promisify(execFile);

describe('withFileLock', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fw-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs holders in this process one at a time, in the order they asked (a queue, not racing polls of the file)', async () => {
    const lock = join(dir, 'a.lock');
    const order: string[] = [];
    let inside = 0;
    let most = 0;
    const hold = (name: string, ms: number) =>
      withFileLock(lock, async () => {
        inside++;
        most = Math.max(most, inside);
        order.push(`${name}:in`);
        expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}:out`);
        inside--;
        return name;
      });
    const results = await Promise.all([hold('a', 30), hold('b', 5), hold('c', 5), hold('d', 5)]);
    expect(results).toEqual(['a', 'b', 'c', 'd']);
    expect(most).toBe(1);
    expect(order).toEqual(['a:in', 'a:out', 'b:in', 'b:out', 'c:in', 'c:out', 'd:in', 'd:out']);
    expect(existsSync(lock)).toBe(false);
  });

  it('releases the lock and lets the next holder in when a holder throws', async () => {
    const lock = join(dir, 'b.lock');
    const first = withFileLock(lock, async () => {
      throw new Error('boom');
    });
    const second = withFileLock(lock, async () => 'second ran');
    await expect(first).rejects.toThrow('boom');
    await expect(second).resolves.toBe('second ran');
    expect(existsSync(lock)).toBe(false);
  });

  it('gives up waiting behind a holder in this process at its timeout or abort, and the queue goes on', async () => {
    const lock = join(dir, 'd.lock');
    let releaseHolder!: () => void;
    const holder = withFileLock(lock, () => new Promise<string>((r) => (releaseHolder = () => r('holder'))));
    const impatient = withFileLock(lock, async () => 'never', { timeoutMs: 50 });
    const aborted = new AbortController();
    const cancelled = withFileLock(lock, async () => 'never', { signal: aborted.signal });
    const patient = withFileLock(lock, async () => 'patient');
    await expect(impatient).rejects.toThrow(/timed out waiting for lock/);
    aborted.abort(new Error('stop waiting'));
    await expect(cancelled).rejects.toThrow('stop waiting');
    releaseHolder();
    await expect(holder).resolves.toBe('holder');
    await expect(patient).resolves.toBe('patient');
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock file left by a process that is gone', async () => {
    const lock = join(dir, 'c.lock');
    writeFileSync(lock, '999999999 12345\n'); // no such process
    await expect(withFileLock(lock, async () => 'taken over', { timeoutMs: 2000 })).resolves.toBe('taken over');
  });

  it('lets processes that all find the owner dead hold the lock one at a time', async () => {
    const lock = join(dir, 'd.lock');
    const log = join(dir, 'log');
    writeFileSync(lock, '999999999 12345\n'); // no such process
    const go = join(dir, 'go');
    // Each process waits for the others to be ready (all find the dead owner at once), then
    // takes the lock, notes entering, waits, notes leaving.
    const holder = `
      import { appendFileSync, existsSync } from 'node:fs';
      import { withFileLock } from ${JSON.stringify(join(import.meta.dirname, 'lock.ts'))};
      while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
      await withFileLock(${JSON.stringify(lock)}, async () => {
        appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
        await new Promise((r) => setTimeout(r, 100));
        appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
      }, { timeoutMs: 20000 });`;
    const runs = Array.from({ length: 6 }, () => execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holder], { cwd: join(import.meta.dirname, '../../..') }));
    await new Promise((r) => setTimeout(r, 2500)); // all started and waiting
    writeFileSync(go, '');
    await Promise.all(runs);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(12);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i].startsWith('in ')).toBe(true);
      expect(lines[i + 1]).toBe(`out ${lines[i].slice(3)}`); // nobody entered while another held it
    }
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(`${lock}.takeover`)).toBe(false);
  }, 30_000);
});
