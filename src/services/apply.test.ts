import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import { packageRoot } from '../package.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { loadPack, registerPacks } from '../workloads/loader.js';
import { applyDocuments } from './apply.js';
import { registerDeploymentServices } from './deployments.js';
import type { Services } from '../context/services.js';

/** A document's `version`: optimistic concurrency for apply, for generic kinds and kinds with their own applier alike. */

const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as FormworkError).code : 'ok');

describe.each(STORE_ENGINES)('apply with version on $name', (engine) => {
  let t: TestStore;
  let services: Services;

  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    registerDeploymentServices(services);
    await registerPacks(t.store, [loadPack(path.join(packageRoot(), 'workloads', 'core'))]);
    await t.store.objects('providers').create({ name: 'lab', type: 'lab' });
  });
  afterEach(() => t.cleanup());

  const apply = (...docs: Record<string, unknown>[]) => applyDocuments(services, docs, { actor: 'tester' });
  const deployment = (extra: Record<string, unknown> = {}) => ({ kind: 'Deployment', name: 'demo', provider: 'lab', nodes: { count: 1 }, ...extra });

  it('a Deployment document may carry version: the current one applies, a stale one refuses with nothing written', async () => {
    await apply(deployment({ attribs: { a: 1 } }));
    const v = (await t.store.objects('deployments').get('demo')).version;
    const [res] = await apply(deployment({ version: v, attribs: { a: 2 } }));
    expect(res).toMatchObject({ action: 'updated', object: { version: v + 1, attribs: { a: 2 } } });

    const stale = apply({ kind: 'Node', name: 'other', provider: 'lab' }, deployment({ version: v, attribs: { a: 3 } }));
    await expect(stale).rejects.toMatchObject({ code: 'VERSION_MISMATCH', details: { currentVersion: v + 1, expectedVersion: v } });
    expect((await t.store.objects('deployments').get('demo')).attribs).toEqual({ a: 2 });
    expect(await t.store.objects('nodes').find('other')).toBeUndefined();
  });

  it('a version for a Deployment that does not exist refuses it; a version that is not a positive integer is a VALIDATION problem', async () => {
    await expect(apply(deployment({ version: 1 }))).rejects.toMatchObject({ code: 'VERSION_MISMATCH' });
    expect(await t.store.objects('deployments').find('demo')).toBeUndefined();
    expect(await t.store.objects('nodes').find('demo-0')).toBeUndefined();
    await expect(apply(deployment({ version: 'one' }))).rejects.toMatchObject({
      code: 'VALIDATION',
      details: { errors: [{ path: '/documents/0/version' }] },
    });
  });

  for (const kind of ['Node', 'Deployment'] as const) {
    const doc = (extra: Record<string, unknown>) => (kind === 'Node' ? { kind, name: 'demo', provider: 'lab', ...extra } : deployment(extra));
    it(`two concurrent applies of one ${kind} carrying the same version: exactly one wins, and its change is what is stored`, async () => {
      await apply(doc({ labels: { by: 'first' } }));
      const v = (await t.store.objects(kind === 'Node' ? 'nodes' : 'deployments').get('demo')).version;
      const settled = await Promise.allSettled([apply(doc({ version: v, labels: { by: 'a' } })), apply(doc({ version: v, labels: { by: 'b' } }))]);
      expect(settled.map(codeOf).sort()).toEqual(['VERSION_MISMATCH', 'ok']);
      const winner = settled.findIndex((r) => r.status === 'fulfilled') === 0 ? 'a' : 'b';
      const stored = await t.store.objects(kind === 'Node' ? 'nodes' : 'deployments').get('demo');
      expect(stored).toMatchObject({ version: v + 1, labels: { by: winner } });
    });
  }

  it('without version, apply behaves as before: concurrent applies both succeed, one after the other', async () => {
    await apply(deployment());
    const settled = await Promise.allSettled([apply(deployment({ labels: { by: 'a' } })), apply(deployment({ labels: { by: 'b' } }))]);
    expect(settled.map(codeOf)).toEqual(['ok', 'ok']);
  });
});
