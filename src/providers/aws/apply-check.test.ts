import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import type { AwsEmulator } from './emulator/index.js';
import { forgetAll, startTestEmulator } from './testing.js';

/**
 * Issue 14: wrong credentials, an unknown region or a malformed endpoint are refused at
 * apply, naming the setting to fix, with nothing written and no secret echoed; the
 * emulator's own documents apply as they are.
 */
describe.each(STORE_ENGINES)('an aws provider checked at apply on $name', (engine) => {
  let h: Harness;
  let emu: AwsEmulator;
  beforeEach(async () => {
    h = await openHarness(engine);
    emu = await startTestEmulator();
  });
  afterEach(async () => {
    forgetAll();
    await emu.close();
    await h.close();
  });

  it('takes the documents the emulator prints', async () => {
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: emu.documents('aws-emu') } });
    expect(res.statusCode).toBe(200);
  });

  it('refuses wrong credentials naming the credentialsSecret, never echoing the secret; nothing is written', async () => {
    const [secret, provider] = emu.documents('aws-emu') as [{ data: Record<string, string> }, Record<string, unknown>];
    secret.data = { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'never-shown-secret' };
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: [secret, provider] } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain("credentialsSecret");
    expect(res.body).not.toContain('never-shown-secret');
    expect((await h.call('GET', '/api/v1/providers/aws-emu')).statusCode).toBe(404);
  });

  it('refuses a region the endpoint does not know, and a malformed endpoint, naming the setting', async () => {
    const [secret, provider] = emu.documents('aws-emu') as [Record<string, unknown>, { settings: Record<string, unknown> }];
    const region = await h.call('POST', '/api/v1/apply', { body: { documents: [secret, { ...provider, settings: { ...provider.settings, region: 'eu-moon-1' } }] } });
    expect(region.statusCode).toBe(400);
    expect(region.body).toContain('settings.region');
    const endpoint = await h.call('POST', '/api/v1/apply', { body: { documents: [secret, { ...provider, settings: { ...provider.settings, endpoint: 'ftp:/nowhere' } }] } });
    expect(endpoint.statusCode).toBe(400);
    expect(endpoint.body).toContain('settings.endpoint');
  });
});
