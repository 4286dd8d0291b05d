/**
 * Convergence: a change of inputs is never lost whatever its timing (written while the
 * node-role runs, or behind the annealer's back), and a blocked node-role always names the
 * failure that blocks it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredObject } from '../core/kinds.js';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer, type AnnealerOptions } from './annealer.js';
import { role, seed, settled, waitFor } from './testing/fixtures.js';

const FAST: AnnealerOptions = { tickMs: 20, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined };

describe.each(STORE_ENGINES)('convergence on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let annealers: Annealer[];
  let dir: string;

  beforeEach(async () => {
    t = await engine.open();
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    annealers = [];
    dir = fs.mkdtempSync(path.join(t.dataDir, 'work-'));
  });
  afterEach(async () => {
    await Promise.all(annealers.map((a) => a.stop()));
    await t.cleanup();
  });

  const start = async (opts: AnnealerOptions = {}): Promise<Annealer> => {
    const a = new Annealer(services, { ...FAST, ...opts });
    annealers.push(a);
    await a.start();
    return a;
  };
  const nr = (name: string): Promise<StoredObject> => t.store.objects('noderoles').get(name);
  const succeeded = async (name: string): Promise<StoredObject[]> =>
    (await t.store.objects('runs').all({ filters: { noderole: name, state: 'succeeded' } })).sort((x, y) => String(x.startedAt).localeCompare(String(y.startedAt)));

  /** Role `say` echoes its input `greeting` (from the deployment's attribs) as its output; `after` requires it. */
  const seedSay = async (script: string): Promise<void> => {
    await seed(t.store, {
      roles: [
        role('say', { kind: 'local', file: 'say.sh' }, { inputs: { greeting: { schema: { type: 'string' } } }, outputs: { said: { schema: { type: 'string' } } } }),
        role('after', { kind: 'builtin', handler: 'engine.noop' }),
      ],
      files: { 'say.sh': `${script}\necho "{\\"said\\": \\"$FW_INPUT_GREETING\\"}" > "$FW_OUTPUTS"` },
      deploymentAttribs: { greeting: 'old' },
      nodes: ['n1'],
      bind: [
        { node: 'n1', role: 'say' },
        { node: 'n1', role: 'after', parents: ['n1:say'] },
      ],
    });
  };

  it('a change applied while a node-role runs re-runs it when the run ends: the deployment ends active on the new input', async () => {
    const started = path.join(dir, 'started');
    const go = path.join(dir, 'go');
    await seedSay(`echo "$FW_INPUT_GREETING" >> ${started}\nwhile [ ! -f ${go} ]; do sleep 0.02; done`);
    await start();
    await waitFor(async () => fs.existsSync(started));
    expect((await nr('demo:n1:say')).state).toBe('running');
    // A re-apply writes the deployment's attribs (an event the annealer reads while the run goes on).
    await t.store.objects('deployments').update('demo', { attribs: { greeting: 'new' } });
    // Let the annealer see that event while the node-role still runs (it polls every 250 ms).
    await new Promise((r) => setTimeout(r, 700));
    fs.writeFileSync(go, '');

    expect(await settled(t.store)).toEqual({ 'demo:n1:say': 'active', 'demo:n1:after': 'active' });
    expect((await nr('demo:n1:say')).outputs).toEqual({ said: 'new' });
    expect(fs.readFileSync(started, 'utf8').trim().split('\n')).toEqual(['old', 'new']);
    const runs = await succeeded('demo:n1:say');
    expect(runs.map((r) => (r.inputs as { greeting: string }).greeting)).toEqual(['old', 'new']);
    // The first run's outputs never reached the child: it ran once, after the re-run.
    const child = await succeeded('demo:n1:after');
    expect(child).toHaveLength(1);
    expect(String(child[0].startedAt) > String(runs[1].endedAt)).toBe(true);
  });

  it('the periodic input sweep catches a change written behind the annealer’s back (no event)', async () => {
    await seedSay('true');
    await start({ inputSweepMs: 500 });
    expect(await settled(t.store)).toEqual({ 'demo:n1:say': 'active', 'demo:n1:after': 'active' });
    expect((await nr('demo:n1:say')).outputs).toEqual({ said: 'old' });
    const seqBefore = await t.store.events.latestSeq();

    // Straight into the table: no event, so only the sweep can see it.
    await t.store.db.updateTable('deployments').set({ attribs: JSON.stringify({ greeting: 'new' }) }).where('name', '=', 'demo').execute();
    expect(await t.store.events.latestSeq()).toBe(seqBefore);

    await waitFor(async () => ((await nr('demo:n1:say')).outputs as { said?: string }).said === 'new', 5000);
    expect(await settled(t.store)).toEqual({ 'demo:n1:say': 'active', 'demo:n1:after': 'active' });
    expect((await succeeded('demo:n1:say')).map((r) => (r.inputs as { greeting: string }).greeting)).toEqual(['old', 'new']);
  });

  it('a failure stays named on every waiting descendant when a sibling branch finishes later', async () => {
    const release = path.join(dir, 'release');
    // a fails for good; d waits for b (below a) and for c, which finishes only after a failed.
    await seed(t.store, {
      roles: [
        role('a', { kind: 'local', file: 'fail.sh' }, { retries: 0 }),
        role('b', { kind: 'builtin', handler: 'engine.noop' }),
        role('c', { kind: 'local', file: 'wait.sh' }),
        role('d', { kind: 'builtin', handler: 'engine.noop' }),
        role('e', { kind: 'builtin', handler: 'engine.noop' }),
      ],
      files: { 'fail.sh': 'echo "disk full" >&2; exit 1', 'wait.sh': `while [ ! -f ${release} ]; do sleep 0.02; done` },
      nodes: ['n1', 'n2'],
      bind: [
        { node: 'n1', role: 'a' },
        { node: 'n1', role: 'b', parents: ['n1:a'] },
        { node: 'n2', role: 'c' },
        { node: 'n2', role: 'd', parents: ['n1:b', 'n2:c'] },
        { node: 'n2', role: 'e', parents: ['n2:d'] },
      ],
    });
    await start();
    await waitFor(async () => (await nr('demo:n1:a')).state === 'error');
    expect((await nr('demo:n2:c')).state).toBe('running');
    fs.writeFileSync(release, '');
    await waitFor(async () => (await nr('demo:n2:c')).state === 'active');
    await annealers[0].stop(); // nothing else may change what we read now
    const aMessage = ((await nr('demo:n1:a')).lastError as { message: string }).message;
    expect(aMessage).toMatch(/exited with 1/);
    for (const name of ['demo:n1:b', 'demo:n2:d', 'demo:n2:e']) {
      expect(await nr(name)).toMatchObject({ name, state: 'blocked', blockedReason: `parent demo:n1:a failed: ${aMessage}` });
    }
  });
});
