import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openHarness, type Harness } from '../../api/testing/harness.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { MemoryBackend } from '../emulation/hosts.js';
import { startEquinixEmulator, type EquinixEmulator } from './emulator/index.js';

/** Issue 14 §6: a wrong token, an unknown project or metro are refused at apply, naming the setting, with nothing written. */
describe.each(STORE_ENGINES)('an equinix provider checked at apply on $name', (engine) => {
  let h: Harness;
  let emu: EquinixEmulator;
  const documents = (over: { token?: string; settings?: Record<string, unknown> } = {}) => {
    const [secret, provider] = emu.documents('metal') as [Record<string, any>, Record<string, any>];
    return [{ ...secret, data: { apiToken: over.token ?? secret.data.apiToken } }, { ...provider, settings: { ...provider.settings, ...over.settings } }];
  };

  beforeEach(async () => {
    h = await openHarness(engine);
    emu = await startEquinixEmulator({ backend: new MemoryBackend(), bootDelayMs: 0 });
  });
  afterEach(async () => {
    await emu.close();
    await h.close();
  });

  it('refuses a wrong token without ever showing it; nothing is written', async () => {
    const res = await h.call('POST', '/api/v1/apply', { body: { documents: documents({ token: 'not-the-token-xyz' }) } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('apiToken');
    expect(res.body).not.toContain('not-the-token-xyz');
    expect((await h.call('GET', '/api/v1/providers/metal')).statusCode).toBe(404);
  });

  it('refuses an unknown project and an unknown metro, naming the setting', async () => {
    const project = await h.call('POST', '/api/v1/apply', { body: { documents: documents({ settings: { project: 'p-nope' } }) } });
    expect(project.statusCode).toBe(400);
    expect(project.body).toContain('settings.project');
    const metro = await h.call('POST', '/api/v1/apply', { body: { documents: documents({ settings: { metro: 'zz' } }) } });
    expect(metro.statusCode).toBe(400);
    expect(metro.body).toContain('settings.metro');
  });

  it('takes the emulator\'s own documents', async () => {
    expect((await h.call('POST', '/api/v1/apply', { body: { documents: documents() } })).statusCode).toBe(200);
  });
});
