/**
 * The `lab` host backend: each instance is a real lab host (src/providers/lab) of a lab
 * provider of the emulator's own (`<emulator>-emulator-<subnetIndex>`, e.g.
 * `aws-emulator-50`), so its hosts, bridges and package proxy stay apart from every other
 * lab provider's.
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
 * The image's host shape is made on the host itself: `halfProvisioned` sets its hostname
 * back to `localhost`; `onlyLoginUser` makes that user (with passwordless sudo) if the
 * base has none, gives it the key and removes every other user's; `rootLoginMessage` leaves
 * root a key whose forced command prints the message and exits.
 * Closing deletes every host and tears the lab provider down (its bridges and proxy).
 *
 * @example
 *   const backend = new LabBackend({ emulator: 'openstack', dataDir, subnetIndex: 40, log });
 *   const emu = await startEmulator({ scenario, backend });
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProviderContext, ProviderLogger } from '../provider.js';
import { labConfig } from '../lab/config.js';
import { labDriver } from '../lab/driver.js';
import { childrenOf, run, tryRun } from '../lab/exec.js';
import type { BackendHost, HostBackend, HostRequest } from './hosts.js';
import { generateSshKeypair } from './keys.js';

/** How the lab backend is set up. */
export interface LabBackendOptions {
  /** The emulated cloud (`openstack`, `aws`…): names the lab provider and the hosts. */
  emulator: string;
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
 *   await new LabBackend({ emulator: 'openstack', dataDir, subnetIndex: 41, log }).close();
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
    this.providerName = `${options.emulator}-emulator-${options.subnetIndex}`;
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
    const name = `${this.options.emulator.slice(0, 3)}-${req.serverId.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 12)}`;
    const key = req.publicKey ?? this.spareKey;
    const m = await labDriver.createMachine({ name, nodeId: req.serverId, idempotencyToken: req.serverId, tags: { [`${this.options.emulator}-emulator/instance`]: req.serverId }, image: 'debian-12' }, this.context(key, signal));
    const address = (role: string) => m.addresses.find((a) => a.role === role)?.address ?? '';
    const host: LabHost = { hostId: name, publicAddress: address('public'), privateAddress: address('private'), netns: String(m.inventory?.netns), root: String(m.inventory?.rootDir) };
    this.hosts.set(name, host);
    try {
      if (req.side === 'private') await run('ip', ['-n', host.netns, 'addr', 'flush', 'dev', 'eth0']);
      if (req.onlyLoginUser) await this.onlyUser(host, req.onlyLoginUser, key, req.rootLoginMessage);
      if (req.halfProvisioned) await this.undoHostname(host, m.inventory?.nspawn);
    } catch (e) {
      await this.delete(name);
      throw e;
    }
    this.options.log.info(`${this.options.emulator} emulator: lab host made`, { instance: req.serverId, host: name, side: req.side });
    const hostPublicKey = readFileSync(join(host.root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').trim();
    return { hostId: name, publicAddress: host.publicAddress, privateAddress: host.privateAddress, hostPublicKey };
  }

  /** The image's one login user: made if missing (sudo, no password), the only one holding the key; root optionally told whom to log in as. */
  private async onlyUser(host: LabHost, user: string, key: string, rootMessage: string | undefined): Promise<void> {
    const home = user === 'root' ? join(host.root, 'root') : join(host.root, 'home', user);
    if (user !== 'root' && !readFileSync(join(host.root, 'etc/passwd'), 'utf8').split('\n').some((l) => l.startsWith(`${user}:`))) {
      await run('chroot', [host.root, 'useradd', '--create-home', '--shell', '/bin/bash', '--user-group', '--groups', 'sudo', user]);
    }
    // As cloud-init gives the image's user sudo without a password (the sudo group alone asks for one).
    if (user !== 'root') await writeFile(join(host.root, 'etc/sudoers.d/90-cloud-init-users'), `${user} ALL=(ALL) NOPASSWD:ALL\n`, { mode: 0o440 });
    // Every other user's keys go: only the image's user logs in.
    for (const other of await readdir(join(host.root, 'home'))) if (other !== user) await rm(join(host.root, 'home', other, '.ssh/authorized_keys'), { force: true });
    if (user !== 'root') {
      const quoted = (rootMessage ?? '').replace(/["\\$`]/g, '');
      const rootKeys = rootMessage ? `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo '${quoted.replace(/'/g, '')}';echo;sleep 1;exit 142" ${key.trim()}\n` : '';
      if (rootKeys) await writeFile(join(host.root, 'root/.ssh/authorized_keys'), rootKeys, { mode: 0o600 });
      else await rm(join(host.root, 'root/.ssh/authorized_keys'), { force: true });
    }
    const sshDir = join(home, '.ssh');
    await mkdir(sshDir, { recursive: true, mode: 0o700 });
    await writeFile(join(sshDir, 'authorized_keys'), key.trim() + '\n', { mode: 0o600 });
    const [uid, gid] = idsOf(host.root, user);
    await chown(sshDir, uid, gid);
    await chmod(sshDir, 0o700);
    await chown(join(sshDir, 'authorized_keys'), uid, gid);
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
    for (const id of [...this.hosts.keys()]) await this.delete(id).catch((e: unknown) => this.options.log.warn(`${this.options.emulator} emulator: could not delete a lab host`, { host: id, error: e instanceof Error ? e.message : String(e) }));
    // Nothing to tear down when no host was ever made (the lab provider's folder is made with its first host).
    if (existsSync(labConfig(this.context('')).providerDir)) await labDriver.teardown?.(this.context(''));
  }
}

/** A user's uid and gid from the host's /etc/passwd. */
function idsOf(root: string, user: string): [number, number] {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const f = line?.split(':') ?? [];
  return [Number(f[2] ?? 0), Number(f[3] ?? 0)];
}
