/**
 * The `lab` host backend: each server is a real lab host (src/providers/lab) of a lab
 * provider of the emulator's own (`openstack-emulator-<subnetIndex>`), so its hosts,
 * bridges and package proxy stay apart from every other lab provider's.
 *
 * How a host is reachable, with the lab's two networks (public 198.18.(2N).0/24, with the
 * control host at .1; private 198.18.(2N+1).0/24, which the control host has no address on):
 * - a server on a `public`-side network keeps its public address: reachable on its fixed IP;
 * - a server on a `private`-side network loses its public address (eth0 is flushed once the
 *   host has booted), so it answers on nothing the control plane can reach; its fixed IP
 *   is its private address;
 * - attaching a floating IP adds that address (from .200–.250 of the public /24) to eth0
 *   with a default route through .1, so the host answers on the floating IP only;
 *   detaching removes it again.
 * The scenario's host faults are made on the host itself: `halfProvisioned` sets its
 * hostname back to `localhost`; `onlyLoginUser` removes every other user's authorized keys.
 * Closing deletes every host and tears the lab provider down (its bridges and proxy).
 *
 * @example
 *   const backend = new LabBackend({ dataDir, subnetIndex: 40, log });
 *   const emu = await startEmulator({ scenario, backend });
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProviderContext, ProviderLogger } from '../../provider.js';
import { labConfig } from '../../lab/config.js';
import { labDriver } from '../../lab/driver.js';
import { childrenOf, run, tryRun } from '../../lab/exec.js';
import type { BackendHost, HostBackend, HostRequest } from './backend.js';
import { generateSshKeypair } from './nova.js';

/** How the lab backend is set up. */
export interface LabBackendOptions {
  dataDir: string;
  /** The lab subnet index (0–255) of the emulator's lab provider. */
  subnetIndex: number;
  log: ProviderLogger;
  /** A prebuilt lab base root filesystem (the lab setting `baseDir`). */
  baseDir?: string;
  bootTimeoutMs?: number;
}

interface LabHost extends BackendHost {
  netns: string;
  root: string;
  floating?: string;
}

/**
 * The lab backend (see the file's comment).
 *
 * @example
 *   await new LabBackend({ dataDir, subnetIndex: 41, log }).close();
 */
export class LabBackend implements HostBackend {
  readonly kind = 'lab' as const;
  readonly publicPrefix: string;
  readonly privatePrefix: string;
  readonly publicGateway: string;
  readonly providerName: string;
  private readonly hosts = new Map<string, LabHost>();
  /** A key for servers booted without a keypair (the lab wants one; nobody holds its private half). */
  private readonly spareKey = generateSshKeypair().publicKey;

  constructor(private readonly options: LabBackendOptions) {
    this.providerName = `openstack-emulator-${options.subnetIndex}`;
    const c = labConfig(this.context(''));
    this.publicPrefix = c.publicPrefix;
    this.privatePrefix = c.privatePrefix;
    this.publicGateway = c.publicGateway;
  }

  /** The lab settings of the emulator's provider (for labLeftovers and the lab driver). */
  get settings(): Record<string, unknown> {
    return { subnetIndex: this.options.subnetIndex, ...(this.options.baseDir ? { baseDir: this.options.baseDir } : {}), ...(this.options.bootTimeoutMs ? { bootTimeoutMs: this.options.bootTimeoutMs } : {}) };
  }

  private context(publicKey: string, signal?: AbortSignal): ProviderContext {
    return { dataDir: this.options.dataDir, providerName: this.providerName, settings: this.settings, publicKey, log: this.options.log, signal };
  }

  async create(req: HostRequest, signal?: AbortSignal): Promise<BackendHost> {
    const name = `os-${req.serverId.replace(/[^a-z0-9]/g, '').slice(0, 12)}`;
    const m = await labDriver.createMachine({ name, nodeId: req.serverId, idempotencyToken: req.serverId, tags: { 'openstack-emulator/server': req.serverId }, image: 'debian-12' }, this.context(req.publicKey ?? this.spareKey, signal));
    const address = (role: string) => m.addresses.find((a) => a.role === role)?.address ?? '';
    const host: LabHost = { hostId: name, publicAddress: address('public'), privateAddress: address('private'), netns: String(m.inventory?.netns), root: String(m.inventory?.rootDir) };
    this.hosts.set(name, host);
    try {
      if (req.side === 'private') await run('ip', ['-n', host.netns, 'addr', 'flush', 'dev', 'eth0']);
      if (req.onlyLoginUser !== 'root' && req.onlyLoginUser) await rm(join(host.root, 'root/.ssh/authorized_keys'), { force: true });
      if (req.halfProvisioned) await this.undoHostname(host, m.inventory?.nspawn);
    } catch (e) {
      await this.delete(name);
      throw e;
    }
    this.options.log.info('openstack emulator: lab host made', { server: req.serverId, host: name, side: req.side });
    return { hostId: name, publicAddress: host.publicAddress, privateAddress: host.privateAddress };
  }

  /** The hostname post-provisioning would have set, undone: `localhost`, in the file and in the running host. */
  private async undoHostname(host: LabHost, nspawnPid: unknown): Promise<void> {
    await writeFile(join(host.root, 'etc/hostname'), 'localhost\n');
    const [init] = typeof nspawnPid === 'number' ? await childrenOf(nspawnPid) : [];
    if (init) await run('nsenter', ['-t', String(init), '-u', 'hostname', 'localhost']);
  }

  async delete(hostId: string): Promise<void> {
    this.hosts.delete(hostId);
    await labDriver.deleteMachine(hostId, this.context(''));
  }

  async addresses(hostId: string): Promise<{ public: string; private: string } | undefined> {
    const m = await labDriver.getMachine(hostId, this.context(''));
    if (!m) return undefined;
    return { public: m.addresses.find((a) => a.role === 'public')?.address ?? '', private: m.addresses.find((a) => a.role === 'private')?.address ?? '' };
  }

  async setFloatingAddress(hostId: string, address: string | undefined): Promise<void> {
    const host = this.hosts.get(hostId);
    if (!host || host.floating === address) return;
    if (host.floating) await tryRun('ip', ['-n', host.netns, 'addr', 'del', `${host.floating}/24`, 'dev', 'eth0']);
    host.floating = undefined;
    if (!address) return;
    await run('ip', ['-n', host.netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', host.netns, 'route', 'replace', 'default', 'via', this.publicGateway, 'dev', 'eth0']);
    host.floating = address;
  }

  async close(): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.delete(id).catch((e: unknown) => this.options.log.warn('openstack emulator: could not delete a lab host', { host: id, error: e instanceof Error ? e.message : String(e) }));
    // Nothing to tear down when no host was ever made (the lab provider's folder is made with its first host).
    if (existsSync(labConfig(this.context('')).providerDir)) await labDriver.teardown?.(this.context(''));
  }
}
