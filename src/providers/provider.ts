/**
 * The Provider interface: what every source of machines implements, whatever its kind.
 *
 * A driver only creates, lists and deletes machines and reports what it knows of them.
 * Everything that makes machines alike (readiness, login user, host key, network roles,
 * hostname) is done afterwards by the yardstick's built-in roles, the same for every kind.
 *
 * @example
 *   const m = await driver.createMachine({ name: 'web-1', size: 'small', image: 'debian-12' }, ctx);
 *   m.addresses.find((a) => a.role === 'public')?.address; // '198.18.0.11'
 */

export type AddressRole = 'public' | 'private' | 'admin' | 'bmc';

export interface NodeAddress {
  address: string;
  family: 4 | 6;
  role: AddressRole;
  /** The provider's name for the network the address is on. */
  network?: string;
}

export interface MachineSpec {
  name: string;
  /** A catalog name (`small`) or an explicit shape. */
  size?: string | { cpus: number; ramMiB: number };
  image?: string;
  labels?: Record<string, string>;
}

export interface ProvisionedMachine {
  /** The provider's own id for the machine (instance id, server uuid, lab host name). */
  nativeId: string;
  name: string;
  state: 'booting' | 'running' | 'stopped' | 'error';
  addresses: NodeAddress[];
  /** Login users to try, most likely first (explicit setting, image metadata, provider table). */
  loginUsers: string[];
  size?: { normalized: string; native: string };
  image?: { normalized: string; native: string };
  zone?: string;
  inventory?: Record<string, unknown>;
}

export interface ProviderLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface ProviderContext {
  /** Formwork's data dir; a driver keeps its local state under `<dataDir>/providers/<provider name>/`. */
  dataDir: string;
  /** The provider object's name (several providers of one kind may coexist). */
  providerName: string;
  /** Driver settings from the provider object. */
  settings: Record<string, unknown>;
  /** Decrypted credentials, if the provider has any. Never log them. */
  credentials?: Record<string, string>;
  /** The platform's SSH public key, one authorized_keys line. */
  publicKey: string;
  log: ProviderLogger;
  signal?: AbortSignal;
}

export interface ProviderDriver {
  readonly kind: string;
  /**
   * Checks a provider object's name and settings before they are stored (apply, create,
   * update): a mistake is refused then, with nothing written, rather than found when the
   * first machine is made (and again each time one is deleted). Throws VALIDATION whose
   * `details.setting` names the setting at fault (`details.field: 'name'` for the name).
   */
  checkSettings?(settings: Record<string, unknown>, providerName: string): void;
  createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine>;
  deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void>;
  listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]>;
  /** Removes provider-wide resources (bridges, caches, security groups) once no machine is left. */
  teardown?(ctx: ProviderContext): Promise<void>;
}
