import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Annealer } from '../../engine/annealer.js';
import { registerBuiltin } from '../../engine/executors/index.js';
import { role, seed, settled } from '../../engine/testing/fixtures.js';
import { FormworkError } from '../../core/errors.js';
import { STORE_ENGINES } from '../../store/testing/engines.js';
import { openHarness, type Harness } from '../testing/harness.js';

let failing = true;
registerBuiltin('test.api.flaky', async (_job, io) => {
  io.log('working on it\n');
  if (failing) throw new FormworkError('RUN_FAILED', 'broken on purpose', {}, { retryable: false });
  return { exitCode: 0, outputs: {} };
});

describe.each(STORE_ENGINES)('engine routes on $name', (engine) => {
  let h: Harness;
  let annealer: Annealer;
  beforeEach(async () => {
    h = await openHarness(engine);
    failing = true;
    await seed(h.t.store, {
      roles: [role('flaky', { kind: 'builtin', handler: 'test.api.flaky' }), role('next', { kind: 'builtin', handler: 'engine.noop' })],
      nodes: ['n1'],
      bind: [{ node: 'n1', role: 'flaky' }, { node: 'n1', role: 'next', parents: ['n1:flaky'] }],
    });
    annealer = new Annealer(h.services, { tickMs: 20, retryBaseMs: 10, onError: () => undefined });
    h.services.engine = annealer;
    await annealer.start();
  });
  afterEach(async () => {
    await annealer.stop();
    await h.close();
  });

  it('shows the latest run log, retries a node-role and a deployment', async () => {
    expect(await settled(h.t.store)).toEqual({ 'demo:n1:flaky': 'error', 'demo:n1:next': 'blocked' });
    const log = await h.call('GET', '/api/v1/noderoles/demo:n1:flaky/log', { token: h.tokens.viewer });
    expect(log.statusCode).toBe(200);
    expect(log.json()).toMatchObject({ noderole: 'demo:n1:flaky', state: 'failed', noderoleState: 'error', attempt: 1, log: 'working on it\n', error: { code: 'RUN_FAILED' } });
    const byRun = await h.call('GET', `/api/v1/noderoles/demo:n1:flaky/log?run=${log.json().run}`);
    expect(byRun.json().run).toBe(log.json().run);
    expect((await h.call('GET', '/api/v1/noderoles/demo:n1:next/log')).statusCode).toBe(404);

    expect((await h.call('POST', '/api/v1/noderoles/demo:n1:flaky/retry', { token: h.tokens.viewer })).statusCode).toBe(403);
    expect((await h.call('POST', '/api/v1/noderoles/demo:n1:next/retry')).statusCode).toBe(409);
    failing = false;
    const retry = await h.call('POST', '/api/v1/noderoles/demo:n1:flaky/retry', { token: h.tokens.operator });
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual({ retried: ['demo:n1:flaky'] });
    expect(await settled(h.t.store)).toEqual({ 'demo:n1:flaky': 'active', 'demo:n1:next': 'active' });

    const none = await h.call('POST', '/api/v1/deployments/demo/retry', { token: h.tokens.operator });
    expect(none.json()).toEqual({ retried: [] });
    expect((await h.call('POST', '/api/v1/deployments/nope/retry')).statusCode).toBe(404);
  });
});
