import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generatePlatformKeyPair } from '../../ssh/keys.js';
import { STORE_ENGINES, type TestStore } from '../../store/testing/engines.js';
import { PLATFORM_SSH_KEY, syncPlatformKey } from './target.js';

describe.each(STORE_ENGINES)('the platform SSH key in the store on $name', (engine) => {
  let t: TestStore;
  const dirs: string[] = [];
  const dataDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-pk-'));
    dirs.push(d);
    return d;
  };
  beforeEach(async () => {
    t = await engine.open();
  });
  afterEach(async () => {
    await t.cleanup();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('two workers starting together on two data dirs end with one key', async () => {
    const other = await t.reopen();
    const [a, b] = await Promise.all([syncPlatformKey(t.store, dataDir()), syncPlatformKey(other, dataDir())]);
    expect(a.privateKey).toMatch(/BEGIN OPENSSH PRIVATE KEY/);
    expect(b.privateKey).toBe(a.privateKey);
    expect(b.publicKey).toBe(a.publicKey);
    expect(fs.readFileSync(b.privateKeyPath, 'utf8')).toBe(a.privateKey);
    expect(fs.statSync(b.privateKeyPath).mode & 0o777).toBe(0o600);
    expect(await other.platformKeys.publicKey(PLATFORM_SSH_KEY)).toBe(a.publicKey);
  });

  it('imports an existing data dir key on first start, so nodes it set up stay reachable', async () => {
    const dir = dataDir();
    const old = generatePlatformKeyPair();
    fs.mkdirSync(path.join(dir, 'ssh'));
    fs.writeFileSync(path.join(dir, 'ssh', 'id_ed25519'), old.privateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'ssh', 'id_ed25519.pub'), old.publicKey + '\n');
    const key = await syncPlatformKey(t.store, dir);
    expect(key.privateKey).toBe(old.privateKey);
    expect(key.publicKey).toBe(old.publicKey);
    // A second worker, with a key of its own from before, takes the store's and keeps its own aside.
    const second = dataDir();
    const own = generatePlatformKeyPair();
    fs.mkdirSync(path.join(second, 'ssh'));
    fs.writeFileSync(path.join(second, 'ssh', 'id_ed25519'), own.privateKey, { mode: 0o600 });
    const warnings: string[] = [];
    const got = await syncPlatformKey(await t.reopen(), second, (m) => warnings.push(m));
    expect(got.privateKey).toBe(old.privateKey);
    expect(fs.readFileSync(path.join(second, 'ssh', 'id_ed25519'), 'utf8')).toBe(old.privateKey);
    expect(fs.readFileSync(path.join(second, 'ssh', 'id_ed25519.replaced'), 'utf8')).toBe(own.privateKey);
    expect(warnings.join('\n')).toContain('id_ed25519.replaced');
    expect(warnings.join('\n')).not.toContain('PRIVATE KEY');
  });

  it('stores the private key sealed, and it opens only with the store secret key', async () => {
    const key = await syncPlatformKey(t.store, dataDir());
    const row = await t.store.db.selectFrom('platform_keys').selectAll().where('name', '=', PLATFORM_SSH_KEY).executeTakeFirstOrThrow();
    expect(row.public_key).toBe(key.publicKey);
    const body = key.privateKey.split('\n')[1]!;
    expect(String(row.ciphertext)).not.toContain(body);
    expect(String(row.ciphertext)).toMatch(/^v2:/);
  });
});
