/**
 * Where a cloud emulator's instances come from: a host backend, shared by every emulator
 * (OpenStack, AWS, GCE, Equinix Metal). The emulator asks it for a host when an instance
 * builds and gives it back on delete, and tells it when a public address (a floating IP, an
 * Elastic IP, an access config) is attached to or detached from a host, so that the host is
 * reachable the way the cloud's network says. Two backends: `lab` (real lab hosts,
 * lab-hosts.ts) and the in-memory one here, for unit tests, which answers
 * `reachable(address)` as a TCP/22 probe from the control plane would.
 *
 * Reachability, the same in both: a host on the `public` side answers on its fixed address
 * (a provider network that routes externally, a subnet that maps public addresses); a host
 * on the `private` side answers only on a floating address attached to it.
 *
 * @example
 *   const backend = new MemoryBackend();
 *   const host = await backend.create({ name: 'web-1', side: 'private' });
 *   backend.reachable(host.privateAddress); // false
 */

/** Which of the backend's two networks a tenant network is: reachable from the control plane (`public`) or not (`private`). */
export type NetworkSide = 'public' | 'private';

/** A host to make. */
export interface HostRequest {
  /** The server's id: unique, for names the backend derives. */
  serverId: string;
  name: string;
  side: NetworkSide;
  /** The key to authorize for the login users (the Nova keypair's public key). */
  publicKey?: string;
  /** Post-provisioning left undone: the hostname stays `localhost`. */
  halfProvisioned?: boolean;
  /**
   * Only this user logs in with the key (the image's login user: `admin` on Debian's cloud
   * images, `ubuntu`, `ec2-user`…), made with passwordless sudo when the host has no such
   * user; the keys of every other user are removed. Unset: the lab's own users (`debian`, `root`).
   */
  onlyLoginUser?: string;
  /**
   * What a login as root prints before it closes (EC2's `Please login as the user "admin"
   * rather than the user "root".`): root's key is kept with a forced command, so the login
   * "succeeds" and then exits. Only with `onlyLoginUser`.
   */
  rootLoginMessage?: string;
}

/** A host made: its id in the backend, its address on each side, and its SSH host key when it has a real one. */
export interface BackendHost {
  hostId: string;
  publicAddress: string;
  privateAddress: string;
  /** The host's SSH public host key (`ssh-ed25519 AAAA…`), which a cloud may print in its console output. */
  hostPublicKey?: string;
}

/** A host backend (see the file's comment). */
export interface HostBackend {
  readonly kind: 'memory' | 'lab';
  /** The first three octets of the public and private /24 (`198.18.80`). */
  readonly publicPrefix: string;
  readonly privatePrefix: string;
  /** The gateway of the public /24 (the control plane's side). */
  readonly publicGateway: string;
  create(req: HostRequest, signal?: AbortSignal): Promise<BackendHost>;
  delete(hostId: string): Promise<void>;
  /** The host's addresses, or undefined when it is gone. */
  addresses(hostId: string): Promise<{ public: string; private: string } | undefined>;
  /** Attaches a floating address to the host (undefined: detaches it). */
  setFloatingAddress(hostId: string, address: string | undefined): Promise<void>;
  /** Deletes every host it made. */
  close(): Promise<void>;
}

/** A host of the memory backend. */
export interface MemoryHost extends BackendHost {
  request: HostRequest;
  floating?: string;
}

/** Options of the memory backend: a delay per create, and a hook that may make a create fail. */
export interface MemoryBackendOptions {
  createDelayMs?: number;
  failCreate?: (req: HostRequest) => string | undefined;
}

/**
 * The in-memory backend: addresses from 203.0.113.0/24 (public) and 10.20.0.0/24 (private), no machines.
 *
 * @example
 *   const backend = new MemoryBackend({ createDelayMs: 5 });
 *   const emu = await startEmulator({ backend, scenario: 'floating-ip-required' });
 */
export class MemoryBackend implements HostBackend {
  readonly kind = 'memory' as const;
  readonly publicPrefix = '203.0.113';
  readonly privatePrefix = '10.20.0';
  readonly publicGateway = '203.0.113.1';
  /** Every host made and not deleted, by id. */
  readonly hosts = new Map<string, MemoryHost>();
  private next = 11;

  constructor(private readonly options: MemoryBackendOptions = {}) {}

  async create(req: HostRequest): Promise<BackendHost> {
    if (this.options.createDelayMs) await new Promise((r) => setTimeout(r, this.options.createDelayMs));
    const failure = this.options.failCreate?.(req);
    if (failure) throw new Error(failure);
    const index = this.next++;
    const host: MemoryHost = { hostId: `mem-${index}`, publicAddress: `${this.publicPrefix}.${index}`, privateAddress: `${this.privatePrefix}.${index}`, request: req };
    this.hosts.set(host.hostId, host);
    return { hostId: host.hostId, publicAddress: host.publicAddress, privateAddress: host.privateAddress };
  }

  async delete(hostId: string): Promise<void> {
    this.hosts.delete(hostId);
  }

  async addresses(hostId: string): Promise<{ public: string; private: string } | undefined> {
    const h = this.hosts.get(hostId);
    return h && { public: h.publicAddress, private: h.privateAddress };
  }

  async setFloatingAddress(hostId: string, address: string | undefined): Promise<void> {
    const h = this.hosts.get(hostId);
    if (h) h.floating = address;
  }

  /**
   * Whether a TCP/22 probe from the control plane would answer on `address`.
   *
   * @example
   *   backend.reachable(fip.floating_ip_address); // true once attached
   */
  reachable(address: string): boolean {
    for (const h of this.hosts.values()) {
      if (h.floating === address) return true;
      if (h.request.side === 'public' && h.publicAddress === address) return true;
    }
    return false;
  }

  async close(): Promise<void> {
    this.hosts.clear();
  }
}
