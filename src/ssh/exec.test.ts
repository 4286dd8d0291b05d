import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshPool } from './client.js';
import type { SshTarget } from './connection.js';
import { generatePlatformKeyPair } from './keys.js';
import { envBlock, shellQuote, wrapCommand } from './quoting.js';
import { catchErr, pidsWithCmdline, until } from './testing/assertions.js';
import { startSshd, type SshdHandle } from './testing/sshd.js';

const kp = generatePlatformKeyPair();
let sshd: SshdHandle;
let pool: SshPool;
let target: SshTarget;
let scratch: string;

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [kp.publicKey] });
  pool = new SshPool();
  target = { host: sshd.host, port: sshd.port, username: 'root', privateKey: kp.privateKey, connectTimeoutMs: 5000 };
  scratch = mkdtempSync(join(tmpdir(), 'fw-ssh-exec-test-'));
});

afterAll(async () => {
  await pool?.close();
  await sshd?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('exec', () => {
  it('returns exit codes 0 and 3 with stdout and stderr', async () => {
    const ok = await pool.exec(target, 'echo hello; echo warn >&2');
    expect(ok).toEqual({ exitCode: 0, stdout: 'hello\n', stderr: 'warn\n', truncated: false });
    const three = await pool.exec(target, 'echo out; echo err >&2; exit 3');
    expect(three.exitCode).toBe(3);
    expect(three.stdout).toBe('out\n');
    expect(three.stderr).toBe('err\n');
  });

  it('reports a signal death', async () => {
    const r = await pool.exec(target, 'kill -TERM $$; sleep 5');
    expect(r.signal).toBe('TERM');
    expect(r.exitCode).toBe(128 + 15);
  });

  it('streams stdout and stderr in arrival order, before the command ends', async () => {
    const events: Array<[string, string, number]> = [];
    const start = Date.now();
    const r = await pool.exec(target, 'printf a; sleep 0.4; printf b >&2; sleep 0.4; printf c', {
      onOutput: (chunk, stream) => events.push([chunk, stream, Date.now() - start]),
    });
    const ended = Date.now() - start;
    expect(events.map(([c, s]) => [c, s])).toEqual([
      ['a', 'stdout'],
      ['b', 'stderr'],
      ['c', 'stdout'],
    ]);
    expect(ended - events[0][2]).toBeGreaterThan(500); // the first chunk came long before the end
    expect(r.stdout).toBe('ac');
    expect(r.stderr).toBe('b');
  });

  it('feeds stdin (text and binary) and sends EOF when none is given', async () => {
    expect((await pool.exec(target, 'cat', { stdin: 'line 1\nline 2\n' })).stdout).toBe('line 1\nline 2\n');
    const data = randomBytes(300_000);
    const r = await pool.exec(target, 'sha256sum | cut -d" " -f1', { stdin: data });
    expect(r.stdout.trim()).toBe(createHash('sha256').update(data).digest('hex'));
    const none = await pool.exec(target, 'cat; echo done', { timeoutMs: 5000 });
    expect(none.stdout).toBe('done\n');
  });

  it('passes env values with quotes, $, backticks, backslashes and newlines verbatim', async () => {
    const env = {
      QUOTES: `it's "double" and 'single'`,
      DOLLAR: '$HOME ${PATH} $(touch /tmp/fw-pwned) `id`',
      NEWLINES: 'line1\nline2\n\nline4',
      BACKSLASH: 'a\\b\\\\c\\n',
      EMPTY: '',
      SEMI: '; rm -rf / #',
    };
    const r = await pool.exec(target, `printf '%s\\0' "$QUOTES" "$DOLLAR" "$NEWLINES" "$BACKSLASH" "$EMPTY" "$SEMI"`, { env });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(Object.values(env));
    expect(() => statSync('/tmp/fw-pwned')).toThrow();
    await expect(pool.exec(target, 'true', { env: { 'BAD NAME': 'x' } })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('keeps env values off every command line (ps, /proc, sudo\'s log), and passes stdin after them intact', async () => {
    const secret = `s3cret-${randomBytes(6).toString('hex')}`;
    const r = await pool.exec(target, `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f"; echo; done 2>/dev/null; printf '%s' "--$S--"`, { env: { S: secret } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.endsWith(`--${secret}--`)).toBe(true);
    expect(r.stdout.slice(0, -(secret.length + 4))).not.toContain(secret);
    const data = randomBytes(100_000);
    const both = await pool.exec(target, 'printf "%s " "$S"; sha256sum | cut -d" " -f1', { env: { S: secret }, stdin: data });
    expect(both.stdout.trim()).toBe(`${secret} ${createHash('sha256').update(data).digest('hex')}`);
  });

  it('runs with sudo as root (no sudo needed) ', async () => {
    const r = await pool.exec(target, 'id -u; printf %s "$V"', { sudo: true, env: { V: "x'y" } });
    expect(r).toMatchObject({ exitCode: 0, stdout: "0\nx'y" });
  });

  it('wraps as sudo -n -E sh -c for a non-root user: quoting survives, and no value is on sudo\'s command line (fake sudo on PATH)', async () => {
    const bin = join(scratch, 'fakebin');
    mkdirSync(bin, { recursive: true });
    const argsLog = join(scratch, 'sudo-args');
    // Records its arguments (what a real sudo logs as COMMAND), then runs the rest as a
    // child, staying its parent as a real sudo does (so its command line is there to see).
    writeFileSync(join(bin, 'sudo'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${shellQuote(argsLog)}\n[ "$1" = -n ] && shift\n[ "$1" = -E ] && shift\n"$@"\n`);
    chmodSync(join(bin, 'sudo'), 0o755);
    const secret = `s3cret-${randomBytes(6).toString('hex')}`;
    const env = { V: `it's $HOME "q"\nnext ${secret}` };
    const dump = `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f"; echo; done 2>/dev/null > ${shellQuote(join(scratch, 'cmdlines'))}`;
    const wrapped = wrapCommand(`${dump}; printf '%s' "$V"; exit 4`, { username: 'debian', sudo: true, env });
    expect(wrapped.startsWith('sudo -n -E sh -c ')).toBe(true);
    const r = await pool.exec(target, `PATH=${shellQuote(bin)}:$PATH; export PATH; ${wrapped}`, { stdin: envBlock(env) });
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe(env.V);
    const sudoArgs = readFileSync(argsLog, 'utf8');
    expect(sudoArgs.startsWith('-n\n-E\nsh\n-c\n')).toBe(true);
    expect(sudoArgs).not.toContain(secret); // what sudo logs as COMMAND holds no value
    const cmdlines = readFileSync(join(scratch, 'cmdlines'), 'utf8');
    expect(cmdlines).toContain('sudo -n -E sh -c'); // the fake sudo was seen, still running…
    expect(cmdlines).not.toContain(secret); // …and no process showed the value
  });

  it('kills the remote command (its whole process group) on timeout and throws RUN_TIMEOUT', async () => {
    const start = Date.now();
    const err = await catchErr(pool.exec(target, 'echo started; sleep 377 & sleep 378; wait', { timeoutMs: 1000 }));
    expect(err.code).toBe('RUN_TIMEOUT');
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ host: target.host, timeoutMs: 1000 });
    expect(String(err.details?.stdoutTail)).toContain('started');
    expect(Date.now() - start).toBeLessThan(15000);
    await until(() => pidsWithCmdline(/^sleep 37[78]$/).length === 0, 3000);
    // The connection is still usable.
    expect((await pool.exec(target, 'echo still')).stdout).toBe('still\n');
  });

  it('kills the remote command (its whole process group) when its signal aborts, with a retryable RUN_FAILED', async () => {
    const ac = new AbortController();
    const running = catchErr(
      pool.exec(target, 'echo started; sleep 387 & sleep 388; wait', {
        signal: ac.signal,
        onOutput: (c) => c.includes('started') && ac.abort(),
      }),
    );
    const err = await running;
    expect(err.code).toBe('RUN_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ host: target.host, aborted: true });
    await until(() => pidsWithCmdline(/^sleep 38[78]$/).length === 0, 3000);
    // Aborted before it starts: stopped at once. The connection is still usable.
    expect((await catchErr(pool.exec(target, 'sleep 389', { signal: AbortSignal.abort() }))).code).toBe('RUN_FAILED');
    await until(() => pidsWithCmdline(/^sleep 389$/).length === 0, 3000);
    expect((await pool.exec(target, 'echo still')).stdout).toBe('still\n');
  });

  it('caps kept output at maxOutputBytes, keeping head and tail, while streaming all of it', async () => {
    let streamed = 0;
    const r = await pool.exec(target, 'seq 1 100000', {
      maxOutputBytes: 1000,
      onOutput: (c) => {
        streamed += Buffer.byteLength(c);
      },
    });
    const full = Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join('');
    expect(streamed).toBe(full.length);
    expect(r.truncated).toBe(true);
    expect(r.stdout.startsWith('1\n2\n3\n4\n')).toBe(true);
    expect(r.stdout.endsWith('99999\n100000\n')).toBe(true);
    expect(r.stdout).toMatch(/\[\.\.\. \d+ bytes truncated \.\.\.\]/);
    expect(r.stdout.length).toBeLessThan(1100);
    const small = await pool.exec(target, 'seq 1 10', { maxOutputBytes: 1000 });
    expect(small.truncated).toBe(false);
  });
});
