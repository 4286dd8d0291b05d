/**
 * The `type: openstack` driver on the emulator's scenarios, end to end (issue 13 §6; root
 * only): each scenario is an emulator on real lab hosts (lab subnet indexes 43–49, one per
 * scenario; the server itself needs none: the openstack provider has no lab of its own). In
 * a real server whose clouds.yaml (OS_CLIENT_CONFIG_FILE) names every emulator, a Provider
 * `type: openstack, settings: {cloud}` and a Deployment of two nodes with the yardstick only
 * (node-ready) are applied; then every node passes every conformance check and its
 * decisions say why (network, login users, floating IP). Deleting the deployment and the
 * provider leaves the cloud with no server, floating IP, port, keypair or security group of
 * ours, and the lab with nothing behind.
 *
 * Scenarios: floating-ip-required, private-is-public, login-user, several-externals, and the
 * vendor profiles citycloud, rackspace (floating_ip_source None) and limestonenetworks.
 *
 * Runs on its own: `npx vitest run test/e2e/openstack/scenarios.test.ts` (no real OpenStack
 * control plane needed).
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeDecision } from '../../../src/core/decisions.js';
import { ensureBaseImage, labLeftovers, missingTools } from '../../../src/providers/lab/index.js';
import { cloudsDocument, LabBackend, profileScenario, scenarioNamed, startEmulator, type Emulator, type EmulatorOptions, type Scenario } from '../../../src/providers/openstack/emulator/index.js';
import { parseFaults } from '../../../src/providers/emulation/faults.js';
import { runConformance } from '../../../src/providers/conformance.js';
import { applyDocuments } from '../../../src/services/apply.js';
import { startServer, type RunningServer } from '../../../src/server/server.js';
import { deleted as deletedIn, diagnosis as diagnosisOf, waitFor as waitForIn } from '../support.js';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : '';
if (skipReason) console.warn(`openstack scenarios e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';
const log = { info: (m: string) => console.log(m), warn: (m: string) => console.warn(m) };
const NO_LAB_LEFTOVERS = { netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] };

/** What a test may add to an emulator's start (faults). */
type EmulatorOptionsInTest = Pick<EmulatorOptions, 'faults'>;

/** One emulated cloud of the run: its emulator, the lab backend behind it, and its cloud name. */
interface Cloud {
  emu: Emulator;
  backend: LabBackend;
  cloud: string;
}

describe.skipIf(!!skipReason)('the openstack driver on the emulator scenarios', () => {
  let dataDir = '';
  let server: RunningServer;
  let baseDir = '';
  const clouds: Cloud[] = [];
  const cloudsFile = () => path.join(dataDir, 'clouds.yaml');
  const savedConfigFile = process.env.OS_CLIENT_CONFIG_FILE;

  // The shared helpers (test/e2e/support.ts), bound to this file's server and data dir.
  const waitFor = (cond: () => Promise<boolean>, ms: number, what: string) => waitForIn(server, cond, ms, what, dataDir);
  const diagnosis = () => diagnosisOf(server, dataDir);

  /** Starts an emulator on lab hosts and adds its cloud to the server's clouds.yaml. */
  async function emulate(scenario: Scenario, subnetIndex: number, options: EmulatorOptionsInTest = {}): Promise<Cloud> {
    const backend = new LabBackend({ emulator: 'openstack', dataDir, subnetIndex, baseDir, log });
    const emu = await startEmulator({ scenario, backend, ...options });
    const cloud = { emu, backend, cloud: `emu-${subnetIndex}` };
    clouds.push(cloud);
    const all = Object.assign({}, ...clouds.map((c) => cloudsDocument(c.emu, c.cloud).clouds));
    fs.writeFileSync(cloudsFile(), stringify({ clouds: all }), { mode: 0o600 });
    return cloud;
  }

  const deleted = (plural: string, name: string) => deletedIn(server, plural, name, dataDir);

  /** What the cloud still holds of provider `name`: servers, floating IPs, ports, keypairs and security groups. */
  function oursIn(emu: Emulator, name: string) {
    const tagged = (d: Record<string, unknown>) => ((d.tags as string[] | undefined) ?? []).includes(`formwork.io/provider=${name}`);
    const s = emu.state;
    return {
      servers: [...s.servers.values()].map((r) => r.doc.id),
      floatingips: [...s.floatingips.values()].filter((f) => tagged(f) || f.port_id).map((f) => f.id),
      ports: [...s.ports.values()].filter((p) => tagged(p) || String(p.device_owner ?? '').startsWith('compute:')).map((p) => p.id),
      keypairs: [...s.keypairs.values()].map((k) => k.name),
      securityGroups: [...s.securityGroups.values()].filter(tagged).map((g) => g.id),
    };
  }

  /**
   * The whole story on one scenario: provider and 2-node deployment applied, node-ready
   * active on both, conformance green, decisions recorded; then both deleted and nothing left.
   * Answers each node's decisions, by node name.
   */
  async function conforms(scenario: Scenario, subnetIndex: number, settings: Record<string, unknown> = {}, nodeFields: Record<string, unknown> = {}, options: EmulatorOptionsInTest = {}): Promise<Record<string, NodeDecision[]>> {
    const { emu, backend, cloud } = await emulate(scenario, subnetIndex, options);
    const name = `os-${subnetIndex}`;
    const nodes = [`${name}-a`, `${name}-b`];
    const s = server.services;
    await applyDocuments(s, [
      { kind: 'Provider', name, type: 'openstack', settings: { cloud, ...settings } },
      { kind: 'Deployment', name, provider: name, nodes: nodes.map((n) => ({ name: n, ...nodeFields })), roles: {} },
    ], { actor: 'test' });
    s.engine?.kick();
    const decisions: Record<string, NodeDecision[]> = {};
    try {
      for (const n of nodes) {
        await waitFor(async () => {
          const nr = await s.store.objects('noderoles').find(`${name}:${n}:node-ready`);
          const provision = await s.store.objects('noderoles').find(`${name}:${n}:provision`);
          const failed = [provision, nr].find((r) => r?.state === 'error');
          if (failed) throw new Error(`${String(failed.name)}: ${String(failed.state)}: ${JSON.stringify(failed.lastError)}\n${await diagnosis()}`);
          return nr?.state === 'active';
        }, 420_000, `${n} node-ready`);
      }
      const report = await runConformance(s, { provider: name });
      expect(report.nodes.map((r) => r.node).sort()).toEqual(nodes);
      for (const row of report.nodes) expect({ node: row.node, failed: row.results.filter((r) => !r.ok) }).toEqual({ node: row.node, failed: [] });
      expect(report.passed).toBe(true);
      for (const n of nodes) decisions[n] = ((await s.store.objects('nodes').get(n)).decisions ?? []) as NodeDecision[];
      lastRuns = (await s.store.objects('runs').all({})).filter((r) => r.deployment === name);
    } finally {
      await deleted('deployments', name);
      await deleted('providers', name);
      await emu.settled();
      expect(oursIn(emu, name)).toEqual({ servers: [], floatingips: [], ports: [], keypairs: [], securityGroups: [] });
      await emu.close();
      expect(await labLeftovers({ dataDir, providerName: backend.providerName, settings: backend.settings })).toEqual(NO_LAB_LEFTOVERS);
    }
    return decisions;
  }

  const subject = (ds: NodeDecision[], what: string) => ds.find((d) => d.subject === what);
  /** The runs of the last `conforms` deployment (its provision runs tell what was retried, and why). */
  let lastRuns: Record<string, unknown>[] = [];

  beforeAll(async () => {
    baseDir = await ensureBaseImage(CACHE, log);
    dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-osconf-e2e-'));
    fs.writeFileSync(cloudsFile(), 'clouds: {}\n', { mode: 0o600 });
    process.env.OS_CLIENT_CONFIG_FILE = cloudsFile();
    server = await startServer({ dataDir, listen: '127.0.0.1:0', handleSignals: false, logLevel: 'info', logFile: path.join(dataDir, 'server.log') });
  }, 600_000);

  afterAll(async () => {
    await server?.close();
    for (const c of clouds) await c.emu.close().catch(() => undefined);
    if (savedConfigFile === undefined) delete process.env.OS_CLIENT_CONFIG_FILE;
    else process.env.OS_CLIENT_CONFIG_FILE = savedConfigFile;
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 300_000);

  it('floating-ip-required: each node gets a floating IP from "public" and is reached on it', async () => {
    const decisions = await conforms(scenarioNamed('floating-ip-required'), 43);
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'network')?.reason).toBeTruthy();
      expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on public/);
      expect(subject(ds, 'external-network')?.reason).toMatch(/router/);
    }
  }, 900_000);

  it('private-is-public: the network called "private" is chosen and reached on its fixed address, no floating IP', async () => {
    const decisions = await conforms(scenarioNamed('private-is-public'), 44, { network: 'private' });
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'network')?.reason).toBe('settings.network "private"');
      expect(subject(ds, 'floating-ip')?.chosen).toBe('none');
    }
  }, 900_000);

  it('login-user: the image names no login user; "debian" logs in, found among cloud-init\'s defaults', async () => {
    const decisions = await conforms(scenarioNamed('login-user'), 45);
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'login-users')?.chosen).toContain('debian');
      expect(subject(ds, 'login-user')?.chosen).toBe('debian');
      expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on public/);
    }
  }, 900_000);

  it('--profile citycloud: its region, a private network and a routed floating IP pool', async () => {
    const decisions = await conforms(profileScenario('citycloud'), 46);
    for (const ds of Object.values(decisions)) expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on public/);
  }, 900_000);

  it('--profile rackspace: floating_ip_source None, the tenant network routes externally', async () => {
    const decisions = await conforms(profileScenario('rackspace'), 47);
    for (const ds of Object.values(decisions)) expect(subject(ds, 'floating-ip')?.chosen).toBe('none');
  }, 900_000);

  it('--profile limestonenetworks: the networks its profile lists, with their flags', async () => {
    const decisions = await conforms(profileScenario('limestonenetworks'), 48);
    for (const ds of Object.values(decisions)) expect(subject(ds, 'network')?.reason).toBeTruthy();
  }, 900_000);

  // More vendors, each as its profile describes it (indexes reused: each test above closed its emulator and left no lab).
  it('--profile auro: requires_floating_ip, so each node is reached on a floating IP', async () => {
    const decisions = await conforms(profileScenario('auro'), 44);
    for (const ds of Object.values(decisions)) expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on/);
  }, 900_000);

  for (const [vendor, index] of [['catalyst', 45], ['dreamcompute', 46]] as const) {
    it(`--profile ${vendor}: conforms as its profile describes it`, async () => {
      const decisions = await conforms(profileScenario(vendor), index);
      for (const ds of Object.values(decisions)) expect(subject(ds, 'network')?.reason).toBeTruthy();
    }, 900_000);
  }

  it('several-externals: the floating IP comes from the external network a router joins, not the unrouted one', async () => {
    const decisions = await conforms(scenarioNamed('several-externals'), 49);
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'external-network')?.reason).toMatch(/router .* connects subnet/);
      expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on ext-routed/);
    }
  }, 900_000);

  it('naming-chaos: "small" and "debian-12" are found among odd flavor and image names by resources and os_distro/os_version', async () => {
    const decisions = await conforms(scenarioNamed('naming-chaos'), 43, { network: 'ten-7f3c_int' }, { size: 'small', image: 'debian-12' });
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'size')).toMatchObject({ chosen: 'c3d4', reason: expect.stringMatching(/the smallest of 2 sizes meeting small/) });
      expect(subject(ds, 'image')?.chosen).toBe('0b7e1f6a-1111-4c2e-9d3b-aa00000000c1');
      expect(subject(ds, 'image')?.reason).toMatch(/os_distro|debian/);
      expect(subject(ds, 'floating-ip')?.reason).toMatch(/allocated on net_ext_PROD-01/);
    }
  }, 900_000);

  it('no-metadata: no router:external, routers or address types; the reachable network is told by a TCP/22 probe', async () => {
    const decisions = await conforms(scenarioNamed('no-metadata'), 44, { network: 'net-b' });
    for (const ds of Object.values(decisions)) {
      expect(subject(ds, 'floating-ip')?.chosen).toBe('none');
      expect(subject(ds, 'address')?.reason).toMatch(/TCP\/22/);
    }
  }, 900_000);

  it('half-provisioned: hosts come up named "localhost"; the yardstick finishes post-provisioning and every check passes', async () => {
    await conforms(scenarioNamed('half-provisioned'), 45);
  }, 900_000);

  it('late-error: the first boot goes ERROR after a while; it is deleted and made again, the reason kept in the run', async () => {
    await conforms(scenarioNamed('late-error'), 46);
    const provisionRuns = lastRuns.filter((r) => r.role === 'provision');
    expect(provisionRuns.some((r) => `${JSON.stringify(r.error ?? '')} ${String(r.log ?? '')}`.includes('No valid host was found'))).toBe(true);
  }, 900_000);

  it('no-neutron-fip: Neutron has no routers or floating IPs; the shared tenant network is reached on its fixed address', async () => {
    const decisions = await conforms(scenarioNamed('no-neutron-fip'), 47);
    for (const ds of Object.values(decisions)) expect(subject(ds, 'floating-ip')?.chosen).toBe('none');
  }, 900_000);

  it('faults during the readiness wait (20 % of calls throttled or failing, a server that never boots, a floating IP that never reaches its host): every node ends ready, and deleting leaves no server, floating IP, port, keypair or group', async () => {
    await conforms(scenarioNamed('floating-ip-required'), 48, { readinessTimeoutSeconds: 45 }, {}, { faults: parseFaults('throttle=10%,error=10%,never-boot=1,unreachable=1,retry-after=1') });
    const failedProvisions = lastRuns.filter((r) => r.role === 'provision' && r.state !== 'succeeded');
    expect(failedProvisions.map((r) => String(r.log ?? '')).join('\n')).toMatch(/still booting after 45 s|did not answer within 45 s/);
  }, 900_000);

  // The second emulator on index 43 hands out the floating IPs the first one released (as real
  // Neutron does): the SSH pool must not give a new machine its predecessor's connection
  // (it keys connections by machine too: SshTarget.machine); this failed with HOST_KEY_MISMATCH before.
  it('the etcd + haproxy deployment of examples/ runs unchanged on floating-ip-required (only provider: differs)', async () => {
    // Index 43 again: its first emulator is closed, and its lab left nothing behind.
    const { emu, backend, cloud } = await emulate(scenarioNamed('floating-ip-required'), 43);
    const docs = parseAllDocuments(fs.readFileSync(path.join(import.meta.dirname, '../../../examples/lab-demo.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
    const deployment: Record<string, unknown> = { ...docs.find((d) => d.kind === 'Deployment')!, provider: 'demo-os' };
    const s = server.services;
    await applyDocuments(s, [{ kind: 'Provider', name: 'demo-os', type: 'openstack', settings: { cloud } }, deployment], { actor: 'test' });
    s.engine?.kick();
    const name = String(deployment.name);
    try {
      await waitFor(async () => {
        const roles = (await s.store.objects('noderoles').all({})).filter((r) => String(r.name).startsWith(`${name}:`));
        const failed = roles.find((r) => r.state === 'error');
        if (failed) throw new Error(`${String(failed.name)}: ${JSON.stringify(failed.lastError)}\n${await diagnosis()}`);
        return roles.length > 0 && roles.every((r) => r.state === 'active');
      }, 900_000, 'every node-role of the etcd + haproxy deployment');
      expect((await runConformance(s, { provider: 'demo-os' })).passed).toBe(true);
    } finally {
      await deleted('deployments', name);
      await deleted('providers', 'demo-os');
      await emu.settled();
      expect(oursIn(emu, 'demo-os')).toEqual({ servers: [], floatingips: [], ports: [], keypairs: [], securityGroups: [] });
      await emu.close();
      expect(await labLeftovers({ dataDir, providerName: backend.providerName, settings: backend.settings })).toEqual(NO_LAB_LEFTOVERS);
    }
  }, 1_200_000);
});
