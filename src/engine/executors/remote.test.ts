import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StoredObject } from '../../core/kinds.js';
import type { Services } from '../../context/services.js';
import { startSshd, type SshdHandle } from '../../ssh/testing/sshd.js';
import { STORE_ENGINES, type TestStore } from '../../store/testing/engines.js';
import { Annealer } from '../annealer.js';
import { role, seed, settled, waitFor } from '../testing/fixtures.js';
import { ensurePlatformKey } from './target.js';

const PLAYBOOK = `
- hosts: all
  gather_facts: false
  tasks:
    - name: write a file on the node
      ansible.builtin.copy:
        content: "{{ inputs.message }} from {{ fw_node }}\\n"
        dest: "{{ target_file }}"
    - name: outputs
      ansible.builtin.copy:
        content: "{{ {'written': target_file, 'message': message} | to_json }}"
        dest: "{{ fw_outputs }}"
      delegate_to: localhost
`;

describe.each(STORE_ENGINES)('ssh and ansible executors on $name', (engine) => {
  let sshd: SshdHandle;
  let t: TestStore;
  let services: Services;
  let annealers: Annealer[];
  let dir: string;
  // One platform key for the suite: sshd trusts it.
  const keyDir = fs.mkdtempSync('/tmp/formwork-engine-key-');
  const key = ensurePlatformKey(keyDir);

  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  });
  afterAll(async () => {
    await sshd?.stop();
    fs.rmSync(keyDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    t = await engine.open();
    fs.mkdirSync(path.join(t.dataDir, 'ssh'), { recursive: true });
    fs.copyFileSync(key.privateKeyPath, path.join(t.dataDir, 'ssh/id_ed25519'));
    services = { store: t.store, dataDir: t.dataDir, appliers: new Map() };
    annealers = [];
    dir = fs.mkdtempSync(path.join(t.dataDir, 'work-'));
  });
  afterEach(async () => {
    await Promise.all(annealers.map((a) => a.stop()));
    await t.cleanup();
  });

  const node = (hostKey?: string) => ({
    name: 'remote1',
    addresses: [
      { address: '127.0.0.1', family: 4 as const, role: 'public' as const },
      { address: '192.0.2.1', family: 4 as const, role: 'private' as const },
    ],
    loginUser: 'root',
    inventory: { sshPort: sshd.port },
    ...(hostKey ? { hostKey } : {}),
  });
  const start = async () => {
    const a = new Annealer(services, { tickMs: 20, retryBaseMs: 10, leaseMs: 10_000, onError: () => undefined });
    annealers.push(a);
    await a.start();
    return a;
  };
  const nr = (name: string): Promise<StoredObject> => t.store.objects('noderoles').get(name);

  it('runs a script over SSH with inputs, reads its outputs back and records the host key on first contact', async () => {
    await seed(t.store, {
      roles: [role('remote', { kind: 'script', file: 'r.sh', sudo: true }, { inputs: { who: { default: 'world' } }, outputs: { host: { schema: { type: 'string' } } } })],
      files: { 'r.sh': 'echo "hello {{ inputs.who }} from {{ node.name }} as $(id -un)"\nread -r json; echo "stdin: $json"\nprintf \'{"host": "%s", "who": "%s"}\' "$FW_NODE" "$FW_INPUT_WHO" > "$FW_OUTPUTS"' },
      nodes: [node()],
      bind: [{ node: 'remote1', role: 'remote' }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:remote1:remote': 'active' });
    expect((await nr('demo:remote1:remote')).outputs).toEqual({ host: 'remote1', who: 'world' });
    const [run] = await t.store.objects('runs').all({ filters: { noderole: 'demo:remote1:remote' } });
    expect(run.log).toContain('hello world from remote1 as root');
    expect(run.log).toContain('stdin: {"who":"world"}');
    expect((await t.store.objects('nodes').get('remote1')).hostKey).toBe(sshd.hostKeyFingerprint);
  });

  it('refuses a host key that differs from the recorded one (HOST_KEY_MISMATCH, not retried)', async () => {
    await seed(t.store, {
      roles: [role('remote', { kind: 'script', file: 'r.sh' })],
      files: { 'r.sh': 'echo should not run' },
      nodes: [node('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')],
      bind: [{ node: 'remote1', role: 'remote' }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:remote1:remote': 'error' });
    const n = await nr('demo:remote1:remote');
    expect(n).toMatchObject({ attempts: 1, lastError: { code: 'HOST_KEY_MISMATCH' } });
    expect((await t.store.objects('nodes').get('remote1')).hostKey).toBe('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  });

  it('retries when the SSH connection drops mid-run', async () => {
    const flag = path.join(dir, 'first');
    await seed(t.store, {
      roles: [role('remote', { kind: 'script', file: 'r.sh' })],
      files: { 'r.sh': `if [ -f ${flag} ]; then echo second; else touch ${flag}; sleep 20; fi` },
      nodes: [node()],
      bind: [{ node: 'remote1', role: 'remote' }],
    });
    await start();
    await waitFor(async () => fs.existsSync(flag));
    await new Promise((r) => setTimeout(r, 200));
    sshd.killSessions();
    expect(await settled(t.store, 'demo', 30_000)).toEqual({ 'demo:remote1:remote': 'active' });
    expect((await nr('demo:remote1:remote')).attempts).toBe(2);
    const runs = (await t.store.objects('runs').all({ filters: { noderole: 'demo:remote1:remote' } })).sort((a, b) => Number(a.attempt) - Number(b.attempt));
    expect(runs.map((r) => r.state)).toEqual(['failed', 'succeeded']);
    expect(runs[0].error).toMatchObject({ code: 'SSH_UNREACHABLE' });
  });

  it('runs an Ansible playbook against the node, honouring the recorded host key', async () => {
    const target = path.join(dir, 'from-ansible');
    await seed(t.store, {
      roles: [
        role('play', { kind: 'ansible', file: 'play.yml' }, { inputs: { message: { default: 'hi' }, 'target-file': { default: target } }, outputs: { written: { schema: { type: 'string' } } } }),
        role('play2', { kind: 'ansible', file: 'play.yml' }, { inputs: { message: { default: 'again' }, 'target-file': { default: target + '2' } } }),
      ],
      files: { 'play.yml': PLAYBOOK },
      nodes: [node()],
      bind: [{ node: 'remote1', role: 'play' }, { node: 'remote1', role: 'play2', parents: ['remote1:play'] }],
    });
    await start();
    const s = await settled(t.store, 'demo', 60_000);
    if (s['demo:remote1:play'] !== 'active') {
      const [run] = await t.store.objects('runs').all({ filters: { noderole: 'demo:remote1:play' } });
      throw new Error(`play failed: ${JSON.stringify(run.error)}\n${String(run.log).slice(-3000)}`);
    }
    expect(s).toEqual({ 'demo:remote1:play': 'active', 'demo:remote1:play2': 'active' });
    expect(fs.readFileSync(target, 'utf8')).toBe('hi from remote1\n');
    expect(fs.readFileSync(target + '2', 'utf8')).toBe('again from remote1\n');
    expect((await nr('demo:remote1:play')).outputs).toEqual({ written: target, message: 'hi' });
    // The first run recorded the key (TOFU); the second ran with StrictHostKeyChecking against it.
    expect((await t.store.objects('nodes').get('remote1')).hostKey).toBe(sshd.hostKeyFingerprint);
  }, 90_000);

  it('fails a playbook Ansible cannot parse at once, as RUN_FAILED: not retried as an unreachable host (Ansible exits 4 for both)', async () => {
    await seed(t.store, {
      roles: [role('broken', { kind: 'ansible', file: 'broken.yml' }, { retries: 3 })],
      files: { 'broken.yml': '- hosts: all\n  tasks:\n    - name: [unclosed\n' },
      nodes: [node()],
      bind: [{ node: 'remote1', role: 'broken' }],
    });
    await start();
    expect(await settled(t.store, 'demo', 60_000)).toEqual({ 'demo:remote1:broken': 'error' });
    const broken = await nr('demo:remote1:broken');
    expect(broken).toMatchObject({ attempts: 1, lastError: { code: 'RUN_FAILED' } });
    expect((broken.lastError as { message: string }).message).toMatch(/could not load broken\.yml \(exit 4\)/);
  }, 90_000);

  it('refuses an Ansible run when the host key differs from the recorded one', async () => {
    await seed(t.store, {
      roles: [role('play', { kind: 'ansible', file: 'play.yml' })],
      files: { 'play.yml': PLAYBOOK },
      nodes: [node('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')],
      bind: [{ node: 'remote1', role: 'play' }],
    });
    await start();
    expect(await settled(t.store)).toEqual({ 'demo:remote1:play': 'error' });
    expect(await nr('demo:remote1:play')).toMatchObject({ attempts: 1, lastError: { code: 'HOST_KEY_MISMATCH' } });
  });
});
