/**
 * End-to-end faults on real lab hosts (root only), through the server as users run it:
 * - a host that never answers SSH: its node-ready errors with the reason, the others proceed;
 * - a script that fails: its log is kept, its subtree is blocked with the reason;
 * - a host killed mid-run: its node-role errors (after its retry), nothing else is lost.
 * Then the deployment and provider are deleted and nothing is left on the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StoredObject } from '../../../src/core/kinds.js';
import { ensureBaseImage, labDriver, labLeftovers, missingTools } from '../../../src/providers/lab/index.js';
import { providerContext } from '../../../src/providers/registry.js';
import { startServer, type RunningServer } from '../../../src/server/server.js';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : '';
if (skipReason) console.warn(`lab faults e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';
const PROVIDER = { name: 'flab', type: 'lab', settings: { subnetIndex: 9 } };

const PACK = {
  'workload.yaml': `
name: faults
version: 1.0.0
description: Roles that misbehave on purpose (the lab faults test).
roles:
  - name: faults-ok
    requires: [node-ready]
    implementation: { kind: script, file: ok.sh }
  - name: faults-fail
    requires: [node-ready]
    retries: 0
    implementation: { kind: script, file: fail.sh }
  - name: faults-after-fail
    requires: [faults-fail]
    implementation: { kind: script, file: ok.sh }
  - name: faults-sleep
    requires: [node-ready]
    retries: 1
    timeoutSeconds: 120
    implementation: { kind: script, file: sleep.sh }
`,
  'ok.sh': `#!/bin/sh\necho "all good on $(hostname)"\necho '{}' > "$FW_OUTPUTS"\n`,
  'fail.sh': `#!/bin/sh\necho "step 1 done"\necho "disk full on /dev/imaginary" >&2\nexit 3\n`,
  'sleep.sh': `#!/bin/sh\necho "sleeping on $(hostname)"\nsleep 90\necho '{}' > "$FW_OUTPUTS"\n`,
};

describe.skipIf(!!skipReason)('faults on real lab hosts', () => {
  let dataDir = '';
  let server: RunningServer;
  const nr = (name: string) => server.services.store.objects('noderoles').get(`faults:${name}`);

  async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await diagnosis()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** What a timeout needs to be understood from a CI log alone: every node-role, node and provider, and the server log's tail. */
  async function diagnosis(): Promise<string> {
    const s = server.services.store;
    const lines: string[] = [];
    for (const n of await s.objects('noderoles').all({})) lines.push(`noderole ${n.name}: ${String(n.state)} ${JSON.stringify(n.lastError ?? null)} ${String(n.blockedReason ?? '')}`);
    for (const n of await s.objects('nodes').all({})) lines.push(`node ${n.name}: ${String(n.state)} nativeId=${String(n.nativeId ?? '')}`);
    for (const p of await s.objects('providers').all({})) lines.push(`provider ${p.name}: ${String(p.state)} ${String(p.message ?? '')} affinity=${String(p.affinity ?? '')}`);
    const log = fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8').trim().split('\n').slice(-40);
    return [...lines, '--- server.log (tail)', ...log].join('\n');
  }

  beforeAll(async () => {
    const base = await ensureBaseImage(CACHE, { info: (m) => console.log(m), warn: (m) => console.warn(m) });
    dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-faults-e2e-'));
    const packDir = path.join(dataDir, 'workloads', 'faults');
    fs.mkdirSync(packDir, { recursive: true });
    for (const [f, text] of Object.entries(PACK)) fs.writeFileSync(path.join(packDir, f), text, { mode: 0o755 });
    server = await startServer({ dataDir, listen: '127.0.0.1:0', handleSignals: false, logLevel: 'info', logFile: path.join(dataDir, 'server.log') });
    const s = server.services;
    await s.store.objects('providers').create({ ...PROVIDER, settings: { ...PROVIDER.settings, baseDir: base } });
    // f-1 answers nothing on the port Formwork will use: a host that never answers SSH.
    await s.store.objects('nodes').create({ name: 'f-1', provider: 'flab', inventory: { sshPort: 2 } });
    await s.appliers.get('Deployment')!(
      {
        kind: 'Deployment',
        name: 'faults',
        provider: 'flab',
        nodes: [{ name: 'f-0' }, { name: 'f-1' }, { name: 'f-2' }],
        roles: {
          'faults-ok': { nodes: ['f-0', 'f-1'] },
          'faults-fail': { nodes: ['f-0'] },
          'faults-after-fail': { nodes: ['f-0'] },
          'faults-sleep': { nodes: ['f-2'] },
        },
        attribs: { 'ssh-wait-seconds': 3 },
      },
      { actor: 'test' },
    );
    server.services.engine?.kick();
  }, 900_000);

  afterAll(async () => {
    if (!server) return;
    const s = server.services;
    // A deleter only marks the object; this server's annealer deprovisions it.
    const deleted = (plural: string, name: string) =>
      s.deleters!.get(plural)!(name, {}).then(() => waitFor(async () => !(await s.store.objects(plural).find(name)), 150_000, `${plural}/${name} to be deleted`));
    await deleted('deployments', 'faults').catch((e) => console.error('delete deployment', e));
    await deleted('providers', 'flab').catch((e) => console.error('delete provider', e));
    await server.close();
    const left = await labLeftovers({ dataDir, providerName: 'flab', settings: PROVIDER.settings });
    fs.rmSync(dataDir, { recursive: true, force: true });
    expect(left).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });
  }, 180_000);

  it('a host killed mid-run: its node-role errors, the run is recorded, others carry on', async () => {
    await waitFor(async () => (await nr('f-2:faults-sleep')).state === 'running', 300_000, 'faults-sleep to run');
    await new Promise((r) => setTimeout(r, 1500)); // the script is sleeping on the host now
    const provider = await server.services.store.objects('providers').get('flab');
    await labDriver.deleteMachine('f-2', await providerContext(server.services, provider));
    await waitFor(async () => (await nr('f-2:faults-sleep')).state === 'error', 180_000, 'faults-sleep to error');
    const sleep = await nr('f-2:faults-sleep');
    expect((sleep.lastError as { code: string }).code).toMatch(/SSH_UNREACHABLE|RUN_FAILED/);
    const runs = await server.services.store.objects('runs').all({ filters: { noderole: sleep.name } });
    expect(runs.length).toBeGreaterThanOrEqual(2); // the first attempt and its retry
    expect(runs[0].log).toContain('sleeping on f-2');
  }, 400_000);

  it('a host that never answers SSH: node-ready errors with the reason; its children are blocked; others proceed', async () => {
    await waitFor(async () => (await nr('f-1:node-ready')).state === 'error', 180_000, 'f-1 node-ready to error');
    const ready = await nr('f-1:node-ready');
    expect((ready.lastError as { message: string }).message).toMatch(/TCP\/2 on 198\.18\.18\.\d+ did not answer within 3 s/);
    const child = await nr('f-1:faults-ok');
    expect(child.state).toBe('blocked');
    expect(child.blockedReason).toContain('faults:f-1:node-ready');
    await waitFor(async () => (await nr('f-0:faults-ok')).state === 'active', 120_000, 'f-0 faults-ok');
  }, 300_000);

  it('a failing script: its log is kept, its subtree is blocked with the reason', async () => {
    await waitFor(async () => (await nr('f-0:faults-fail')).state === 'error', 120_000, 'faults-fail to error');
    const failed = await nr('f-0:faults-fail');
    expect(failed.attempts).toBe(1);
    const runs: StoredObject[] = await server.services.store.objects('runs').all({ filters: { noderole: failed.name } });
    expect(runs).toHaveLength(1);
    expect(runs[0].exitCode).toBe(3);
    expect(runs[0].log).toContain('disk full on /dev/imaginary');
    const after = await nr('f-0:faults-after-fail');
    expect(after.state).toBe('blocked');
    expect(after.blockedReason).toMatch(/faults:f-0:faults-fail.*fail/);
    // Everything not downstream of a fault completed.
    for (const name of ['f-0:provision', 'f-0:node-ready', 'f-0:faults-ok', 'f-1:provision', 'f-2:node-ready']) expect((await nr(name)).state).toBe('active');
  }, 200_000);
});
