import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { envBlock, findLoginUser, shellQuote, SshPool, type SshTarget, waitForPort, wrapCommand } from './client.js';
import { generatePlatformKeyPair } from './keys.js';
import { freePort, startSshd, type SshdHandle } from './testing/sshd.js';

const kp = generatePlatformKeyPair();
const otherKp = generatePlatformKeyPair();
let sshd: SshdHandle;
let pool: SshPool;
let target: SshTarget;
let scratch: string;

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [kp.publicKey] });
  pool = new SshPool();
  target = { host: sshd.host, port: sshd.port, username: 'root', privateKey: kp.privateKey, connectTimeoutMs: 5000 };
  scratch = mkdtempSync(join(tmpdir(), 'fw-ssh-test-'));
});

afterAll(async () => {
  await pool?.close();
  await sshd?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function catchErr(p: Promise<unknown>): Promise<FormworkError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FormworkError);
    return e as FormworkError;
  }
  throw new Error('expected the promise to reject');
}

/** Local pids whose command line matches (the sshd runs on this machine). */
function pidsWithCmdline(re: RegExp): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (re.test(cmd)) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

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

describe('host keys', () => {
  it('trust on first use: reports the observed fingerprint; the same one is accepted later', async () => {
    const p = new SshPool();
    try {
      const info = await p.connect({ ...target, knownHostKey: undefined });
      expect(info.hostKeyFingerprint).toBe(sshd.hostKeyFingerprint);
      expect(info.reused).toBe(false);
      const again = await p.connect({ ...target, knownHostKey: info.hostKeyFingerprint });
      expect(again.reused).toBe(true);
      await p.close();
      const fresh = await p.connect({ ...target, knownHostKey: info.hostKeyFingerprint });
      expect(fresh.reused).toBe(false);
    } finally {
      await p.close();
    }
  });

  it('a different recorded key fails with HOST_KEY_MISMATCH before authentication', async () => {
    const p = new SshPool();
    const before = sshd.acceptedLogins();
    const recorded = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    try {
      const err = await catchErr(p.connect({ ...target, knownHostKey: recorded }));
      expect(err.code).toBe('HOST_KEY_MISMATCH');
      expect(err.details).toMatchObject({ expected: recorded, observed: sshd.hostKeyFingerprint });
      expect(err.retryable).toBe(false);
      expect(sshd.acceptedLogins()).toBe(before); // never authenticated
      expect(p.stats().open).toBe(0);
      // An existing pooled connection is not reused under a different recorded key either.
      await p.exec(target, 'true');
      const e2 = await catchErr(p.exec({ ...target, knownHostKey: recorded }, 'true'));
      expect(e2.code).toBe('HOST_KEY_MISMATCH');
    } finally {
      await p.close();
    }
  });

  it('after the host is rebuilt (new host key) the recorded key fails', async () => {
    const own = await startSshd({ authorizedKeys: [kp.publicKey] });
    const p = new SshPool();
    try {
      const t: SshTarget = { ...target, port: own.port };
      const first = await p.connect(t);
      const newFp = await own.restartWithNewHostKey();
      expect(newFp).not.toBe(first.hostKeyFingerprint);
      await until(() => p.stats().open === 0); // the old connection dropped with the old server
      const err = await catchErr(p.exec({ ...t, knownHostKey: first.hostKeyFingerprint }, 'true'));
      expect(err.code).toBe('HOST_KEY_MISMATCH');
      expect(err.details).toMatchObject({ expected: first.hostKeyFingerprint, observed: newFp });
    } finally {
      await p.close();
      await own.stop();
    }
  });
});

describe('failures to connect', () => {
  it('an unused port gives SSH_UNREACHABLE quickly', async () => {
    const port = await freePort();
    const start = Date.now();
    const err = await catchErr(new SshPool().connect({ ...target, port }));
    expect(err.code).toBe('SSH_UNREACHABLE');
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ host: '127.0.0.1', port, cause: 'ECONNREFUSED' });
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('a server that never speaks SSH gives SSH_UNREACHABLE after connectTimeoutMs', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const start = Date.now();
      const err = await catchErr(new SshPool().connect({ ...target, port, connectTimeoutMs: 500 }));
      expect(err.code).toBe('SSH_UNREACHABLE');
      expect(Date.now() - start).toBeLessThan(3000);
    } finally {
      silent.close();
    }
  });

  it('a key the server does not know gives SSH_AUTH_FAILED, without leaking the key', async () => {
    const err = await catchErr(new SshPool().connect({ ...target, privateKey: otherKp.privateKey }));
    expect(err.code).toBe('SSH_AUTH_FAILED');
    expect(err.details).toMatchObject({ host: '127.0.0.1', user: 'root' });
    const keyBody = otherKp.privateKey.split('\n')[2];
    expect(JSON.stringify(err.toJSON()) + err.stack).not.toContain(keyBody);
  });

  it('findLoginUser returns the first user that logs in, with the host key', async () => {
    const found = await findLoginUser(sshd.host, ['nosuchuser-fw1', 'root', 'daemon'], kp.privateKey, { port: sshd.port });
    expect(found).toEqual({ username: 'root', hostKeyFingerprint: sshd.hostKeyFingerprint });
  });

  it('findLoginUser: no user accepts → SSH_AUTH_FAILED listing the users tried', async () => {
    const err = await catchErr(findLoginUser(sshd.host, ['nosuchuser-fw1', 'root'], otherKp.privateKey, { port: sshd.port }));
    expect(err.code).toBe('SSH_AUTH_FAILED');
    expect(err.details).toMatchObject({ usersTried: ['nosuchuser-fw1', 'root'], hostKeyFingerprint: sshd.hostKeyFingerprint });
    expect(err.message).toContain('nosuchuser-fw1, root');
  });

  it('findLoginUser: refused port → SSH_UNREACHABLE; recorded key mismatch → HOST_KEY_MISMATCH', async () => {
    const port = await freePort();
    expect((await catchErr(findLoginUser('127.0.0.1', ['root'], kp.privateKey, { port }))).code).toBe('SSH_UNREACHABLE');
    const err = await catchErr(findLoginUser(sshd.host, ['root'], kp.privateKey, { port: sshd.port, knownHostKey: 'SHA256:nope' }));
    expect(err.code).toBe('HOST_KEY_MISMATCH');
  });
});

describe('pool', () => {
  it('reuses one connection for several execs (sequential and concurrent)', async () => {
    const p = new SshPool({ maxChannelsPerConnection: 4 });
    const before = sshd.acceptedLogins();
    try {
      // Concurrent first use shares one pending connection; more channels than the
      // per-connection limit queue rather than open a second connection.
      const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => p.exec(target, `echo ${i}`)));
      expect(outs.map((o) => o.stdout)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}\n`));
      await p.exec(target, 'true');
      await p.exec(target, 'true');
      expect(p.stats()).toEqual({ open: 1, opened: 1 });
      expect(sshd.acceptedLogins() - before).toBe(1);
    } finally {
      await p.close();
    }
    expect(p.stats().open).toBe(0);
  });

  it('adapts to an sshd that allows fewer sessions than the pool: the refused command waits, the running one is not dropped', async () => {
    const strict = await startSshd({ authorizedKeys: [kp.publicKey], extraConfig: ['MaxSessions 1'] });
    const p = new SshPool({ maxChannelsPerConnection: 4 });
    try {
      const t2 = { ...target, host: strict.host, port: strict.port };
      await p.exec(t2, 'true'); // the connection is pooled
      const first = p.exec(t2, 'sleep 0.8; echo first');
      await new Promise((r) => setTimeout(r, 200));
      const second = p.exec(t2, 'echo second'); // sshd refuses this session while the first runs
      expect((await first).stdout).toBe('first\n'); // not dropped under it
      expect((await second).stdout).toBe('second\n');
      // (Not asserted: that one connection served all three. sshd may still count the first
      // `true`'s session when `first` asks, and with nothing running, a refused session is
      // taken for a stale connection and retried on a fresh one.)
    } finally {
      await p.close();
      await strict.stop();
    }
  });

  it('closes idle connections after idleMs', async () => {
    const p = new SshPool({ idleMs: 200 });
    try {
      await p.exec(target, 'true');
      expect(p.stats().open).toBe(1);
      await until(() => p.stats().open === 0, 3000);
      await p.exec(target, 'true'); // reconnects
      expect(p.stats().opened).toBe(2);
    } finally {
      await p.close();
    }
  });

  it('a session killed mid-run gives SSH_UNREACHABLE naming the host; the pool recovers', async () => {
    const p = new SshPool();
    try {
      const run = p.exec(target, 'sleep 379');
      const caught = catchErr(run);
      await until(() => pidsWithCmdline(/^sleep 379$/).length > 0);
      const conns = sshd.connectionPids();
      expect(conns.length).toBeGreaterThan(0);
      sshd.killSessions('SIGKILL');
      const err = await caught;
      expect(err.code).toBe('SSH_UNREACHABLE');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('127.0.0.1');
      expect(err.details).toMatchObject({ host: '127.0.0.1' });
      expect((await p.exec(target, 'echo back')).stdout).toBe('back\n');
    } finally {
      await p.close();
    }
    // The global pool's connection was killed too; it reconnects on next use.
    expect((await pool.exec(target, 'echo ok')).stdout).toBe('ok\n');
  });
});

describe('upload', () => {
  it('writes the content with the mode (text, binary, awkward path names)', async () => {
    const path = join(scratch, "dir with space/it's a file.txt");
    mkdirSync(join(scratch, 'dir with space'), { recursive: true });
    await pool.upload(target, path, 'hello\n$HOME `x`\n', 0o640);
    expect(readFileSync(path, 'utf8')).toBe('hello\n$HOME `x`\n');
    expect(statSync(path).mode & 0o7777).toBe(0o640);

    const bin = randomBytes(100_000);
    const p2 = join(scratch, 'blob');
    await pool.upload(target, p2, bin, 0o600, { sudo: true });
    expect(readFileSync(p2).equals(bin)).toBe(true);
    expect(statSync(p2).mode & 0o7777).toBe(0o600);

    await pool.upload(target, p2, 'replaced'); // default 0644, overwrite
    expect(readFileSync(p2, 'utf8')).toBe('replaced');
    expect(statSync(p2).mode & 0o7777).toBe(0o644);
    expect(readdirSync(scratch).filter((f) => f.includes('formwork-tmp'))).toEqual([]);
  });

  it('fails with RUN_FAILED when the directory does not exist', async () => {
    const err = await catchErr(pool.upload(target, join(scratch, 'missing/dir/file'), 'x'));
    expect(err.code).toBe('RUN_FAILED');
    expect(err.details).toMatchObject({ path: join(scratch, 'missing/dir/file') });
  });
});

describe('waitForPort', () => {
  it('returns when the port answers', async () => {
    await waitForPort(sshd.host, sshd.port, 2000);
  });

  it('retries until a late listener appears', async () => {
    const port = await freePort();
    const srv = createServer((s) => s.destroy());
    const t = setTimeout(() => srv.listen(port, '127.0.0.1'), 400);
    try {
      await waitForPort('127.0.0.1', port, Date.now() + 5000, { intervalMs: 100 });
    } finally {
      clearTimeout(t);
      srv.close();
    }
  });

  it('gives SSH_UNREACHABLE at the deadline', async () => {
    const port = await freePort();
    const start = Date.now();
    const err = await catchErr(waitForPort('127.0.0.1', port, 600, { intervalMs: 100 }));
    expect(err.code).toBe('SSH_UNREACHABLE');
    expect(err.details).toMatchObject({ port });
    const took = Date.now() - start;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(2000);
  });
});
