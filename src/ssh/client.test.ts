import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshPool } from './client.js';
import type { SshTarget } from './connection.js';
import { generatePlatformKeyPair } from './keys.js';
import { catchErr, pidsWithCmdline, until } from './testing/assertions.js';
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
});

describe('pool', () => {
  it('keeps connections per machine: another machine on the same address and user gets a connection of its own', async () => {
    const p = new SshPool();
    try {
      await p.exec({ ...target, machine: 'nd_a/m-1' }, 'true');
      await p.exec({ ...target, machine: 'nd_a/m-1' }, 'true');
      expect(p.stats()).toEqual({ open: 1, opened: 1 });
      // A cloud reissued the address to another machine: never its predecessor's connection (nor host key).
      await p.exec({ ...target, machine: 'nd_b/m-2' }, 'true');
      expect(p.stats()).toEqual({ open: 2, opened: 2 });
    } finally {
      await p.close();
    }
  });

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
