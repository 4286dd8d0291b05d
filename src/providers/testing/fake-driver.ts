/**
 * An in-memory provider driver that keeps the contract and has every optional capability:
 * what the contract suite runs in every unit run, and what provisioning tests drive. It acts
 * like a small cloud: machines boot over `bootPolls` reads (a cloud's `pending`), each gets
 * a key pair tagged like it, the provider a security group (made by `prepare`), and a machine
 * is reachable from the control plane only once `makeReachable` attaches a floating address
 * to it. An address nobody tagged (`fip-foreign`) sits unattached from the start: taking it
 * would be a bug. Knobs: the next calls fail (`failNext`), the next machine never boots or
 * breaks while booting (`breakNextBoot`).
 *
 * @example
 *   const fake = fakeDriver({ bootPolls: 2 });
 *   fake.failNext('createMachine', new Error('socket hang up'));
 *   fake.breakNextBoot('never'); // the readiness wait times out; what made it reachable must be released
 */
import { FormworkError } from '../../core/errors.js';
import { shapeName } from '../catalog/sizes.js';
import {
  TAG_MANAGED_BY,
  TAG_NODE_ID,
  TAG_PROVIDER,
  type CatalogImage,
  type CatalogNetwork,
  type CatalogSize,
  type MachineSpec,
  type MachineState,
  type NodeAddress,
  type OwnedResource,
  type ProviderContext,
  type ProviderDriver,
  type ProvisionedMachine,
} from '../provider.js';

type Call =
  | 'createMachine' | 'getMachine' | 'listMachines' | 'deleteMachine' | 'prepare' | 'teardown'
  | 'listSizes' | 'listImages' | 'listNetworks' | 'listZones' | 'makeReachable' | 'undoReachable' | 'listOwned' | 'deleteOwned';

interface FakeMachine {
  spec: MachineSpec;
  state: MachineState;
  /** Reads left before a booting machine is running (Infinity: never). */
  bootReads: number;
  /** What a machine whose boot ends goes to (`error`: a build that failed late). */
  bootsTo: MachineState;
  /** Runs, but nothing answers on its addresses. */
  unreachable?: boolean;
  index: number;
}

/** A floating address: `machine` is the id it is attached to. */
interface FakeAddress {
  id: string;
  address: string;
  tags: Record<string, string>;
  machine?: string;
}

export interface FakeDriver extends ProviderDriver {
  /** Every call made, in order: `createMachine web-1`, `deleteMachine fake-1`, … */
  readonly calls: string[];
  readonly machines: Map<string, FakeMachine>;
  readonly addresses: Map<string, FakeAddress>;
  /** Key pairs by id, with their tags (one per machine). */
  readonly keyPairs: Map<string, Record<string, string>>;
  /** The provider's security group (made by prepare), with its tags. */
  securityGroup?: Record<string, string>;
  prepared: boolean;
  failNext(call: Call, error: unknown): void;
  setState(nativeId: string, state: MachineState): void;
  /**
   * The next machine created never leaves `booting` (`never`), goes to `error` once booted
   * (`error`), or runs but never answers on its address (`unreachable`: sshd never starts).
   */
  breakNextBoot(mode: BootFault): void;
  /** Whether TCP/22 would answer on `host`: a floating address attached to a machine that is running and not `unreachable`. */
  answers(host: string): boolean;
}

type BootFault = 'never' | 'error' | 'unreachable';

/** The fake's catalog: priced sizes, and images with Glance-like properties. */
export const FAKE_SIZES: readonly CatalogSize[] = [
  { nativeId: 'fake.nano', cpus: 1, ramMiB: 512, diskGiB: 10, price: 0.005 },
  { nativeId: 'fake.small', cpus: 2, ramMiB: 2048, diskGiB: 20, price: 0.02 },
  { nativeId: 'fake.wide', cpus: 8, ramMiB: 2048, diskGiB: 20, price: 0.019 },
  { nativeId: 'fake.medium', cpus: 2, ramMiB: 4096, diskGiB: 40, price: 0.04 },
  { nativeId: 'fake.large', cpus: 4, ramMiB: 16384, diskGiB: 80, price: 0.16 },
];
export const FAKE_IMAGES: readonly CatalogImage[] = [
  { nativeId: 'fake-debian-12', name: 'Debian 12 (bookworm)', properties: { os_distro: 'debian', os_version: '12' }, owner: 'fake', createdAt: '2025-01-01' },
  { nativeId: 'fake-debian-11', name: 'Debian 11', properties: { os_distro: 'debian', os_version: '11' }, owner: 'fake', createdAt: '2023-01-01' },
  { nativeId: 'fake-ubuntu-2404', name: 'ubuntu-noble-24.04-amd64', properties: { os_admin_user: 'ubuntu' }, owner: 'fake', createdAt: '2025-02-01' },
];

export function fakeDriver(opts: { bootPolls?: number } = {}): FakeDriver {
  const machines = new Map<string, FakeMachine>();
  const addresses = new Map<string, FakeAddress>([['fip-foreign', { id: 'fip-foreign', address: '203.0.113.250', tags: {} }]]);
  const keyPairs = new Map<string, Record<string, string>>();
  const failures = new Map<Call, unknown>();
  const calls: string[] = [];
  let next = 1;
  let nextAddress = 1;
  let broken: BootFault | undefined;
  const enter = (call: Call, arg = '') => {
    calls.push(`${call}${arg ? ` ${arg}` : ''}`);
    const f = failures.get(call);
    if (f !== undefined) {
      failures.delete(call);
      throw f;
    }
  };
  const attachedTo = (id: string) => [...addresses.values()].filter((a) => a.machine === id);
  const read = (id: string, m: FakeMachine): ProvisionedMachine => {
    if (m.state === 'booting' && m.bootReads-- <= 0) m.state = m.bootsTo;
    const chosen = m.spec.chosen;
    const addrs: NodeAddress[] = [
      ...attachedTo(id).map((a): NodeAddress => ({ address: a.address, family: 4, role: 'public', network: 'fake-public', reason: `floating address ${a.id} on fake-public (external: true), attached to the machine` })),
      { address: `10.0.0.${m.index}`, family: 4, role: 'private', network: 'fake-private', reason: 'fixed address on fake-private (no route from outside)' },
    ];
    return {
      nativeId: id,
      name: m.spec.name,
      state: m.state,
      addresses: addrs,
      loginUsers: chosen?.loginUsers?.users ?? ['debian'],
      tags: { ...m.spec.tags },
      size: chosen?.size ? { normalized: chosen.size.normalized, native: chosen.size.nativeId } : { normalized: typeof m.spec.size === 'object' ? shapeName(m.spec.size) : (m.spec.size ?? 'small'), native: 'fake.small' },
      image: chosen?.image ? { normalized: chosen.image.normalized, native: chosen.image.nativeId } : { normalized: m.spec.image ?? 'debian-12', native: 'fake-debian-12' },
      zone: m.spec.zone ?? 'fake-a',
      decisions: [{ subject: 'network', chosen: 'fake-private', reason: 'the only tenant network (fake-public is external)' }],
    };
  };
  const nodeOf = (tags: Record<string, string>) => tags[TAG_NODE_ID];
  const driver: FakeDriver = {
    type: 'fake',
    calls,
    machines,
    addresses,
    keyPairs,
    prepared: false,
    failNext: (call, error) => void failures.set(call, error),
    setState: (id, state) => void (machines.get(id)!.state = state),
    breakNextBoot: (mode) => void (broken = mode),
    answers: (host) =>
      [...addresses.values()].some((a) => {
        const m = a.machine ? machines.get(a.machine) : undefined;
        return a.address === host && !!m && m.state === 'running' && !m.unreachable;
      }),
    async prepare(ctx: ProviderContext) {
      enter('prepare');
      driver.securityGroup ??= { [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx?.providerName ?? 'fake' };
      driver.prepared = true;
    },
    async createMachine(spec) {
      enter('createMachine', spec.name);
      if (!driver.prepared) throw new FormworkError('PROVIDER_ERROR', 'fake: createMachine before prepare');
      if (!spec.name) throw new FormworkError('PROVIDER_INVALID', 'fake: a machine needs a name', { name: spec.name });
      for (const [id, m] of machines) if (m.spec.idempotencyToken === spec.idempotencyToken) return read(id, m);
      const index = next++;
      const id = `fake-${index}`;
      // A build that fails does so after at least one read (late, as clouds' do).
      const bootReads = broken === 'never' ? Infinity : Math.max(opts.bootPolls ?? 0, broken === 'error' ? 1 : 0);
      machines.set(id, { spec, state: bootReads > 0 ? 'booting' : 'running', bootReads, bootsTo: broken === 'error' ? 'error' : 'running', index, unreachable: broken === 'unreachable' });
      broken = undefined;
      keyPairs.set(`key-${id}`, { ...spec.tags });
      return read(id, machines.get(id)!);
    },
    async getMachine(id) {
      enter('getMachine', id);
      const m = machines.get(id);
      return m ? read(id, m) : undefined;
    },
    async listMachines() {
      enter('listMachines');
      return [...machines].map(([id, m]) => read(id, m));
    },
    async deleteMachine(id) {
      enter('deleteMachine', id);
      machines.delete(id);
      keyPairs.delete(`key-${id}`);
      // Like a cloud, deleting a machine detaches its addresses but does not release them.
      for (const a of attachedTo(id)) a.machine = undefined;
    },
    async teardown() {
      enter('teardown');
      machines.clear();
      keyPairs.clear();
      driver.securityGroup = undefined;
      driver.prepared = false;
    },
    async listSizes() {
      enter('listSizes');
      return FAKE_SIZES.map((s) => ({ ...s }));
    },
    async listImages() {
      enter('listImages');
      return FAKE_IMAGES.map((i) => ({ ...i, properties: { ...i.properties } }));
    },
    async listNetworks() {
      enter('listNetworks');
      const networks: CatalogNetwork[] = [
        { id: 'fake-public', name: 'public', flags: { external: true }, evidence: ['router:external=true'] },
        { id: 'fake-private', name: 'private', flags: { external: false, default_interface: true }, evidence: ['router:external=false', 'the only tenant network'] },
      ];
      return networks;
    },
    async listZones() {
      enter('listZones');
      return [{ name: 'fake-a', available: true }, { name: 'fake-b', available: false }];
    },
    async makeReachable(machine) {
      enter('makeReachable', machine.nativeId);
      const m = machines.get(machine.nativeId);
      if (!m) throw new FormworkError('MACHINE_FAILED', `fake: machine ${machine.nativeId} is gone`, { nativeId: machine.nativeId });
      // Idempotent: the address made for this machine is found by its tags, never "any unattached one".
      const mine = [...addresses.values()].find((a) => nodeOf(a.tags) === nodeOf(m.spec.tags) && a.tags['fake/machine'] === machine.nativeId);
      if (!mine) {
        const id = `fip-${nextAddress++}`;
        addresses.set(id, { id, address: `192.0.2.${m.index}`, tags: { ...m.spec.tags, 'fake/machine': machine.nativeId }, machine: machine.nativeId });
      } else mine.machine = machine.nativeId;
      return read(machine.nativeId, m);
    },
    async undoReachable(machine) {
      enter('undoReachable', machine.nativeId);
      for (const a of [...addresses.values()]) {
        if (a.tags['fake/machine'] === machine.nativeId && nodeOf(a.tags) === nodeOf(machine.tags)) addresses.delete(a.id);
      }
    },
    async listOwned() {
      enter('listOwned');
      // One fake is one cloud account: everything Formwork-tagged in it (whose provider it is, the caller compares).
      const ours = (tags: Record<string, string>) => tags[TAG_MANAGED_BY] === 'formwork';
      const owned: OwnedResource[] = [];
      for (const [id, m] of machines) if (ours(m.spec.tags)) owned.push({ kind: 'machine', id, name: m.spec.name, tags: { ...m.spec.tags } });
      for (const [id, tags] of keyPairs) if (ours(tags)) owned.push({ kind: 'key-pair', id, tags: { ...tags } });
      for (const a of addresses.values()) if (ours(a.tags)) owned.push({ kind: 'address', id: a.id, name: a.address, tags: { ...a.tags } });
      if (driver.securityGroup) owned.push({ kind: 'security-group', id: 'sg-formwork', tags: { ...driver.securityGroup } });
      return owned;
    },
    async deleteOwned(resource, ctx) {
      enter('deleteOwned', `${resource.kind} ${resource.id}`);
      if (resource.kind === 'machine') {
        const m = machines.get(resource.id);
        if (m) await driver.undoReachable!(read(resource.id, m), ctx);
        machines.delete(resource.id);
        keyPairs.delete(`key-${resource.id}`);
      } else if (resource.kind === 'key-pair') keyPairs.delete(resource.id);
      else if (resource.kind === 'address') addresses.delete(resource.id);
      else if (resource.kind === 'security-group') driver.securityGroup = undefined;
    },
  };
  return driver;
}
