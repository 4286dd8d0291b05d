/**
 * The OpenStack emulator with real lab hosts (root only), on lab subnet indexes 40–42 (other
 * lab tests on this machine use other indexes):
 * - floating-ip-required / login-user: a booted server is a real lab host that answers SSH
 *   on nothing until a floating IP is attached, then on the floating IP, as "debian" only;
 *   detaching the floating IP makes it unreachable again;
 * - private-is-public: a server on the network called "private" answers on its fixed address;
 * - half-provisioned: the host's hostname is still "localhost".
 * Closing an emulator deletes its hosts and tears its lab provider down: nothing is left.
 *
 * Runs on its own: `npx vitest run test/e2e/openstack/emulator.test.ts` (it needs no real
 * OpenStack control plane).
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createOpenStackClient, type OpenStackClient } from '../../../src/providers/openstack/client/index.js';
import { LabBackend, scenarioNamed, startEmulator, type Emulator } from '../../../src/providers/openstack/emulator/index.js';
import { ensureBaseImage, labLeftovers, missingTools } from '../../../src/providers/lab/index.js';
import { SshPool } from '../../../src/ssh/client.js';
import { generateKeyPair } from '../../../src/ssh/keys.js';
import { waitForPort } from '../../../src/ssh/probe.js';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skipReason = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.pkg).join(', ')}` : '';
if (skipReason) console.warn(`openstack emulator e2e skipped: ${skipReason}`);
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';
const log = { info: (m: string) => console.log(m), warn: (m: string) => console.warn(m) };
const key = generateKeyPair('emulator-e2e');
const ssh = new SshPool();
const dataDir = fs.mkdtempSync(path.join(tmpdir(), 'fw-osemu-e2e-'));
const made: { emu: Emulator; backend: LabBackend }[] = [];

async function emulate(scenario: string, subnetIndex: number): Promise<{ emu: Emulator; client: OpenStackClient }> {
  const base = await ensureBaseImage(CACHE, log);
  const backend = new LabBackend({ emulator: 'openstack', dataDir, subnetIndex, baseDir: base, log });
  const emu = await startEmulator({ scenario: scenarioNamed(scenario), backend });
  made.push({ emu, backend });
  const client = createOpenStackClient({ auth: emu.passwordAuth(), region: emu.region });
  await client.compute.createKeypair('e2e', key.publicKey);
  return { emu, client };
}

async function bootActive(client: OpenStackClient, network: string, name: string) {
  const net = (await client.network.listNetworks({ name: network }))[0];
  const image = (await client.image.listImages())[0];
  const { id } = await client.compute.createServer({ name, imageRef: image.id, flavorRef: (await client.compute.listFlavors())[0].id, networks: [{ uuid: net.id }], keyName: 'e2e' });
  const deadline = Date.now() + 180_000;
  for (;;) {
    const s = await client.compute.getServer(id);
    if (s?.status === 'ACTIVE') break;
    if (s?.status === 'ERROR' || Date.now() > deadline) throw new Error(`server ${name}: ${JSON.stringify(s?.status)} ${JSON.stringify(s?.fault ?? null)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const port = (await client.network.listPorts({ device_id: id }))[0];
  return { id, port, fixed: port.fixed_ips[0].ip_address };
}

const run = (host: string, username: string, command: string) => ssh.exec({ host, username, privateKey: key.privateKey, connectTimeoutMs: 10_000 }, command);

/**
 * Whether the host logs "debian" in on `host` (waiting up to `ms` for TCP/22 first). An SSH
 * login, not a TCP connect: some networks (this machine's sandbox among them) accept every
 * outbound TCP connection through a transparent proxy, so a bare TCP/22 probe to an address
 * that is not on a local link always "answers". A fresh pool each time: a pooled connection
 * would outlive the address it was made on.
 */
async function answers(host: string, ms = 3000): Promise<boolean> {
  if (!(await waitForPort(host, 22, ms, { attemptTimeoutMs: 1000 }).then(() => true, () => false))) return false;
  const fresh = new SshPool();
  try {
    return (await fresh.exec({ host, username: 'debian', privateKey: key.privateKey, connectTimeoutMs: 5000 }, 'true', { timeoutMs: 10_000 })).exitCode === 0;
  } catch {
    return false;
  } finally {
    await fresh.close();
  }
}

describe.skipIf(!!skipReason)('the OpenStack emulator on real lab hosts', () => {
  afterAll(async () => {
    await ssh.close();
    for (const { emu } of made) await emu.close();
    for (const { backend } of made) {
      const left = await labLeftovers({ dataDir, providerName: backend.providerName, settings: backend.settings });
      expect(left).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [], propagate: [], cgroups: [] });
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }, 300_000);

  it('login-user: a server answers SSH only once its floating IP is attached, and only as "debian"', async () => {
    const { emu, client } = await emulate('login-user', 40);
    const { id, port, fixed } = await bootActive(client, 'private', 'web-1');
    const host = [...emu.state.servers.values()][0].hostId!;
    const lab = await made[0].backend.addresses(host);
    expect(fixed).toBe(lab?.private);
    expect(await answers(fixed)).toBe(false);
    expect(await answers(lab!.public)).toBe(false); // its lab public address is gone too
    const ext = (await client.network.listNetworks({ 'router:external': true }))[0];
    const fip = await client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id });
    expect(await answers(fip.floating_ip_address, 30_000)).toBe(true);
    const r = await run(fip.floating_ip_address, 'debian', 'hostname');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^ope-/); // the lab backend names hosts <emulator prefix>-<server id>
    await expect(run(fip.floating_ip_address, 'root', 'true')).rejects.toMatchObject({ code: 'SSH_AUTH_FAILED' });
    await client.network.deleteFloatingIp(fip.id);
    expect(await answers(fip.floating_ip_address)).toBe(false);
    await client.compute.deleteServer(id);
    await emu.settled();
    expect(await client.compute.getServer(id)).toBeUndefined();
    expect(await made[0].backend.addresses(host)).toBeUndefined();
  }, 300_000);

  it('private-is-public: a server on "private" answers SSH on its fixed address', async () => {
    const { client } = await emulate('private-is-public', 41);
    const { fixed } = await bootActive(client, 'private', 'db-1');
    expect(await answers(fixed, 30_000)).toBe(true);
    expect((await run(fixed, 'debian', 'echo ok')).stdout.trim()).toBe('ok');
  }, 300_000);

  it('half-provisioned: the host comes up with its hostname still "localhost"', async () => {
    const { client } = await emulate('half-provisioned', 42);
    const { port } = await bootActive(client, 'private', 'half-1');
    const ext = (await client.network.listNetworks({ 'router:external': true }))[0];
    const fip = await client.network.createFloatingIp({ floatingNetworkId: ext.id, portId: port.id });
    expect(await answers(fip.floating_ip_address, 30_000)).toBe(true);
    expect((await run(fip.floating_ip_address, 'debian', 'hostname; cat /etc/hostname')).stdout.trim().split('\n')).toEqual(['localhost', 'localhost']);
  }, 300_000);
});
