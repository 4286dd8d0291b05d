import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePlatformKeyPair } from './keys.js';
import { findLoginUser } from './login.js';
import { catchErr } from './testing/assertions.js';
import { freePort, startSshd, type SshdHandle } from './testing/sshd.js';

const kp = generatePlatformKeyPair();
const otherKp = generatePlatformKeyPair();
let sshd: SshdHandle;

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [kp.publicKey] });
});

afterAll(async () => {
  await sshd?.stop();
});

describe('findLoginUser', () => {
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
