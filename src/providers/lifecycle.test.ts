import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { applyDocuments } from '../services/apply.js';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { prepareProvider } from './lifecycle.js';
import { fakeDriver } from './testing/fake-driver.js';

describe.each(STORE_ENGINES)('provider lifecycle on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
  });
  afterEach(() => t.cleanup());

  it('hands the providers an apply created or changed to prepareProviders, and not the unchanged ones', async () => {
    const seen: string[][] = [];
    services.prepareProviders = (ps) => seen.push(ps.map((p) => p.name));
    const doc = { kind: 'Provider', name: 'own', type: 'static', settings: { machines: [{ name: 'h1', address: '192.0.2.1', user: 'root' }] } };
    await applyDocuments(services, [doc]);
    await applyDocuments(services, [doc]); // unchanged
    await applyDocuments(services, [{ ...doc, settings: { machines: [] } }]);
    expect(seen).toEqual([['own'], ['own']]);
  });

  it('records a failed prepare on the provider with its cause, tries again next time, then records ready', async () => {
    const provider = await t.store.objects('providers').create({ name: 'fk', type: 'fake' });
    const driver = fakeDriver();
    driver.failNext('prepare', new Error('bridge busy'));
    await expect(prepareProvider(services, provider, undefined, driver)).rejects.toMatchObject({ code: 'PROVIDER_ERROR', cause: expect.objectContaining({ message: 'bridge busy' }) });
    expect(await t.store.objects('providers').get('fk')).toMatchObject({ state: 'failed', message: expect.stringContaining('bridge busy') });
    await prepareProvider(services, provider, undefined, driver);
    await prepareProvider(services, provider, undefined, driver); // once per version: not called again
    expect(driver.calls.filter((c) => c === 'prepare')).toHaveLength(2);
    const after = await t.store.objects('providers').get('fk');
    expect(after.state).toBe('ready');
    expect(after.message).toBeUndefined(); // the failure's message is cleared
  });

  it('keeps a registered code a driver chose for its prepare', async () => {
    const provider = await t.store.objects('providers').create({ name: 'fk2', type: 'fake' });
    const driver = fakeDriver();
    driver.failNext('prepare', new FormworkError('PROVIDER_AUTH', 'fake: credentials refused'));
    await expect(prepareProvider(services, provider, undefined, driver)).rejects.toMatchObject({ code: 'PROVIDER_AUTH', retryable: false });
  });
});
