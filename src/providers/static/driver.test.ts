import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controlAddress } from '../../core/addresses.js';
import { findLoginUser } from '../../ssh/login.js';
import { generateKeyPair } from '../../ssh/keys.js';
import { startSshd, type SshdHandle } from '../../ssh/testing/sshd.js';
import type { ProviderContext } from '../provider.js';
import { contractSpec } from '../testing/contract-suite.js';
import { staticDriver } from './driver.js';

const isRoot = process.getuid?.() === 0;
const quiet = { info: () => undefined, warn: () => undefined };

describe.skipIf(!isRoot)('the static driver against a real sshd', () => {
  const key = generateKeyPair('static-test');
  let sshd: SshdHandle;
  let dir: string;
  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  }, 20_000);
  afterAll(async () => sshd?.stop());
  afterEach(async () => dir && rm(dir, { recursive: true, force: true }));

  const ctxWith = async (hostKey?: string): Promise<ProviderContext> => {
    dir = await mkdtemp(join(tmpdir(), 'fw-static-'));
    const machine = { name: 'own-1', address: sshd.host, port: sshd.port, user: 'root', ...(hostKey ? { hostKey } : {}) };
    return { dataDir: dir, providerName: 'byo', settings: { machines: [machine] }, publicKey: key.publicKey, log: quiet };
  };

  it('adopts a listed machine that the platform key logs in to, with the host key it was given', async () => {
    const ctx = await ctxWith(sshd.hostKeyFingerprint);
    const m = await staticDriver.createMachine(contractSpec('db'), ctx);
    expect(m).toMatchObject({ nativeId: 'own-1', state: 'running', loginUsers: ['root'], hostKey: sshd.hostKeyFingerprint, inventory: { sshPort: sshd.port } });
    const login = await findLoginUser(controlAddress(m.addresses)!, m.loginUsers, key.privateKey, { port: sshd.port, knownHostKey: m.hostKey, connectTimeoutMs: 5_000 });
    expect(login.username).toBe('root');
    // Released, never touched: the claim goes, the host still answers.
    await staticDriver.deleteMachine(m.nativeId, ctx);
    expect(await staticDriver.listMachines(ctx)).toEqual([]);
    expect((await findLoginUser(sshd.host, ['root'], key.privateKey, { port: sshd.port, connectTimeoutMs: 5_000 })).username).toBe('root');
    await staticDriver.teardown!(ctx);
    expect(await readdir(join(dir, 'providers'))).toEqual([]); // its dir is gone
  }, 20_000);

  it('a wrong known host key refuses the login', async () => {
    const other = generateKeyPair('impostor');
    const ctx = await ctxWith(other.publicKey);
    const m = await staticDriver.createMachine(contractSpec('db'), ctx);
    await expect(findLoginUser(sshd.host, m.loginUsers, key.privateKey, { port: sshd.port, knownHostKey: m.hostKey, connectTimeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'HOST_KEY_MISMATCH',
    });
  }, 20_000);

  it('gives each node its own machine, and says so when none is free', async () => {
    const ctx = await ctxWith();
    await staticDriver.createMachine(contractSpec('a'), ctx);
    await expect(staticDriver.createMachine(contractSpec('b'), ctx)).rejects.toMatchObject({ code: 'PROVIDER_QUOTA', retryable: false });
  });
});
