/**
 * Day two through the real apply and annealer: a run's previous inputs, a binding's removal
 * step, and a consumer following a cluster that grows (issue 11).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REMOVING_KEY } from '../core/attribs.js';
import type { StoredObject } from '../core/kinds.js';
import { registerDeploymentServices } from '../services/deployments.js';
import type { Services } from '../context/services.js';
import { STORE_ENGINES, type TestStore } from '../store/testing/engines.js';
import { Annealer } from './annealer.js';
import { role, settled, waitFor, WORKLOAD } from './testing/fixtures.js';

const NOOP = { kind: 'builtin', handler: 'engine.noop' } as const;

// A cluster member: reports what it was given, of this run and of the previous one (slowly
// once the test has made the file "slow" in its dir).
const member = (dir: string) => `[ ! -f ${dir}/slow ] || sleep 2.5\nprintf '{"url":"u-%s","prev":%s,"step":"%s","tpl":%s}' "$FW_NODE" "$FW_PREVIOUS_INPUTS" "$FW_STEP" "{{ json previousInputs }}" > "$FW_OUTPUTS"`;

describe.each(STORE_ENGINES)('day two on $name', (engine) => {
  let t: TestStore;
  let services: Services;
  let annealer: Annealer | undefined;
  let dir: string;

  const roles = (removal: boolean) => [
    role('provision', NOOP),
    role('node-ready', NOOP, { requires: ['provision'] }),
    role('member', { kind: 'local', file: 'member.sh' }, {
      requires: ['node-ready'],
      flags: ['cluster'],
      inputs: { peers: { schema: { type: 'array' } }, token: { secret: true, default: 's3cret' } },
      outputs: { url: { schema: { type: 'string' } }, prev: {}, step: {}, tpl: {} },
      ...(removal ? { removal: { kind: 'local', file: 'leave.sh' } as const } : {}),
    }),
    role('lb', { kind: 'local', file: 'lb.sh' }, { requires: ['node-ready'], inputs: { backends: { schema: { type: 'array' } } }, outputs: { backends: {} } }),
  ];

  const register = async (removal: boolean) => {
    const fail = path.join(dir, 'fail-once');
    const files = {
      'member.sh': member(dir),
      // Fails once while the flag file exists (a retry must follow), then records what it saw.
      'leave.sh': `if [ -f ${fail} ]; then rm -f ${fail}; echo "not yet" >&2; exit 1; fi\nprintf '%s %s %s\\n' "$FW_NODE" "$FW_STEP" "$FW_INPUT_PEERS" >> ${path.join(dir, 'left')}\necho '{"url":"gone"}' > "$FW_OUTPUTS"`,
      'lb.sh': `printf '{"backends":%s}' "$FW_INPUT_BACKENDS" > "$FW_OUTPUTS"`,
    };
    fs.writeFileSync(fail, '');
    await t.store.objects('workloads').apply({ name: WORKLOAD, workloadVersion: '1.0.0', files, defaults: {} });
    for (const r of roles(removal)) await t.store.objects('roles').apply({ name: r.name, workload: r.workload, spec: r });
  };

  const doc = (members: number[]) => ({
    kind: 'Deployment',
    name: 'demo',
    provider: 'lab',
    nodes: { count: 6 },
    roles: { member: { nodes: members }, lb: { nodes: [5], inputs: { backends: 'outputs(member).url' } } },
  });

  beforeEach(async () => {
    t = await engine.open();
    dir = fs.mkdtempSync(path.join(t.dataDir, 'day2-'));
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    registerDeploymentServices(services);
    await t.store.objects('providers').create({ name: 'lab', type: 'lab' });
    annealer = new Annealer(services, { tickMs: 20, retryBaseMs: 10, leaseMs: 5000, logFlushMs: 50, onError: () => undefined });
    services.engine = annealer;
    await annealer.start();
  });
  afterEach(async () => {
    await annealer?.stop();
    await t.cleanup();
  });

  const apply = (d: Record<string, unknown>) => services.appliers.get('Deployment')!(d, { actor: 'tester' });
  const nr = (name: string): Promise<StoredObject | undefined> => t.store.objects('noderoles').find(name);
  const peersOf = (o: StoredObject | undefined) => ((o?.outputs as { prev?: { peers?: Array<{ node: string }> } }).prev?.peers ?? []).map((p) => p.node);

  it('a run gets the inputs of its previous successful run ({} on a first run), secrets redacted, by environment and template', async () => {
    await register(false);
    await apply(doc([0, 1]));
    await settled(t.store);
    const first = await nr('demo:demo-0:member');
    expect(first?.outputs).toMatchObject({ prev: {}, tpl: {}, step: 'run' });

    await apply(doc([0, 1, 2])); // a new peer: the old members run again
    await waitFor(async () => (await nr('demo:demo-2:member'))?.state === 'active' && peersOf(await nr('demo:demo-0:member')).length > 0);
    await settled(t.store);
    const again = await nr('demo:demo-0:member');
    // What it ran with last time: two peers, the token redacted.
    expect(peersOf(again)).toEqual(['demo-0', 'demo-1']);
    expect((again?.outputs as { prev: Record<string, unknown> }).prev.token).toBe('[redacted]');
    expect((again?.outputs as { tpl: unknown }).tpl).toEqual((again?.outputs as { prev: unknown }).prev);
    // The newcomer's is its first run.
    expect((await nr('demo:demo-2:member'))?.outputs).toMatchObject({ prev: {} });
  });

  it('a consumer of a cluster follows it as it grows (the new members become its parents; it runs again once they are active)', async () => {
    await register(false);
    await apply(doc([0, 1]));
    await settled(t.store);
    expect((await nr('demo:demo-5:lb'))?.outputs).toEqual({ backends: ['u-demo-0', 'u-demo-1'] });
    await apply(doc([0, 1, 2, 3]));
    const lb = await waitFor(async () => {
      const o = await nr('demo:demo-5:lb');
      return o?.state === 'active' && (o.outputs as { backends: string[] }).backends.length === 4 ? o : undefined;
    });
    expect(lb.outputs).toEqual({ backends: ['u-demo-0', 'u-demo-1', 'u-demo-2', 'u-demo-3'] });
  });

  it('a parent whose outputs change re-runs its active child, also once the role cache has expired (no read outside the transaction)', async () => {
    await register(false);
    await apply(doc([0]));
    await settled(t.store);
    const lbRuns = async () => (await t.store.objects('runs').all({ filters: { noderole: 'demo:demo-5:lb', state: 'succeeded' } })).length;
    expect(await lbRuns()).toBe(1);
    // A new token: the member runs again and its outputs change (they echo its previous inputs);
    // lb's inputs do not. The run outlasts the engine's role cache (2 s), filled by apply's input check.
    fs.writeFileSync(path.join(dir, 'slow'), '');
    await apply({ ...doc([0]), roles: { ...doc([0]).roles, member: { nodes: [0], inputs: { token: 'another' } } } });
    await waitFor(async () => (await lbRuns()) === 2, 15_000);
    expect((await nr('demo:demo-0:member'))?.outputs).toMatchObject({ prev: { token: '[redacted]' } });
  });

  it('a removed binding runs its role\'s removal step on its node (retried on failure), then its node-role is deleted; the rest no longer count it', async () => {
    await register(true);
    await apply(doc([0, 1, 2]));
    await settled(t.store);
    await apply(doc([0, 1]));
    // Marked, not deleted: no longer a parent of the consumer, no longer a peer.
    const marked = await nr('demo:demo-2:member');
    expect(marked?.attribs).toMatchObject({ [REMOVING_KEY]: true });
    expect(marked?.parents).toEqual([]);
    await waitFor(async () => !(await nr("demo:demo-2:member")), 20_000);
    await settled(t.store);
    // The step ran once it succeeded (after one failure), on its node, seeing the remaining peers.
    const left = fs.readFileSync(path.join(dir, 'left'), 'utf8').trim().split('\n');
    expect(left).toHaveLength(1);
    const [node, step, peers] = left[0].split(' ');
    expect([node, step]).toEqual(['demo-2', 'removal']);
    expect((JSON.parse(peers) as Array<{ node: string }>).map((p) => p.node)).toEqual(['demo-0', 'demo-1']);
    const runs = await t.store.objects('runs').all({ filters: { noderole: 'demo:demo-2:member' } });
    expect(runs.map((r) => r.state).sort()).toEqual(['failed', 'succeeded', 'succeeded']);
    // The remaining members run again without it (their previous run had it), and the consumer follows.
    await waitFor(async () => peersOf(await nr('demo:demo-0:member')).length === 3);
    await settled(t.store);
    expect(peersOf(await nr('demo:demo-0:member'))).toEqual(['demo-0', 'demo-1', 'demo-2']);
    expect((await nr('demo:demo-5:lb'))?.outputs).toEqual({ backends: ['u-demo-0', 'u-demo-1'] });
  });

  it('without a removal step, or before its first run, a removed binding\'s node-role is deleted at once', async () => {
    await register(false);
    await apply(doc([0, 1, 2]));
    await settled(t.store);
    await apply(doc([0, 1]));
    expect(await nr('demo:demo-2:member')).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'left'))).toBe(false);

    // With one, but never run (the deployment is not committed): nothing to undo.
    await register(true);
    await apply({ ...doc([0, 1, 3]), name: 'other', commit: false, nodes: [{ name: 'o-0' }, { name: 'o-1' }, { name: 'o-2' }, { name: 'o-3' }, { name: 'o-4' }, { name: 'o-5' }] });
    await apply({ ...doc([0, 1]), name: 'other', commit: false, nodes: [{ name: 'o-0' }, { name: 'o-1' }, { name: 'o-2' }, { name: 'o-3' }, { name: 'o-4' }, { name: 'o-5' }] });
    expect(await nr('other:o-3:member')).toBeUndefined();
  });
});
