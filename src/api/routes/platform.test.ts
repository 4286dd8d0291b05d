import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PLATFORM_SSH_KEY, syncPlatformKey } from '../../engine/executors/target.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { openHarness, type Harness } from '../testing/harness.js';

describe.each(STORE_ENGINES)('GET /api/v1/platform/ssh-key on $name', (engine) => {
  let h: Harness;
  beforeEach(async () => {
    h = await openHarness(engine);
  });
  afterEach(() => h.close());

  it('says how to get a key when none is stored yet', async () => {
    const res = await h.call('GET', '/api/v1/platform/ssh-key', { token: h.tokens.viewer });
    expect(res.statusCode).toBe(404);
    expect(JSON.stringify(res.json())).toContain('--role');
  });

  it('returns the public key and its fingerprint, never the private key', async () => {
    const key = await syncPlatformKey(h.t.store, h.t.dataDir);
    const res = await h.call('GET', '/api/v1/platform/ssh-key', { token: h.tokens.viewer });
    expect(res.statusCode).toBe(200);
    expect(res.json().publicKey).toBe(key.publicKey);
    expect(res.json().fingerprint).toMatch(/^SHA256:/);
    expect(res.body).not.toContain('PRIVATE KEY');
    expect(res.body).not.toContain(key.privateKey.split('\n')[1]!);
    expect(h.log()).not.toContain(key.privateKey.split('\n')[1]!);
    expect(await h.t.store.platformKeys.publicKey(PLATFORM_SSH_KEY)).toBe(key.publicKey);
    expect(fs.existsSync(key.privateKeyPath)).toBe(true);
  });
});
