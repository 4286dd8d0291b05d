/**
 * An in-memory provider driver that keeps the contract: what the contract suite runs in
 * every unit run, and what provisioning tests drive. Machines boot over `bootPolls` reads
 * (a cloud's `pending`), and a test can make the next calls fail.
 *
 * @example
 *   const fake = fakeDriver({ bootPolls: 2 });
 *   fake.failNext('createMachine', new Error('socket hang up'));
 */
import { FormworkError } from '../../core/errors.js';
import type { MachineSpec, MachineState, ProviderContext, ProviderDriver, ProvisionedMachine } from '../provider.js';

type Call = 'createMachine' | 'getMachine' | 'listMachines' | 'deleteMachine' | 'prepare' | 'teardown';

interface FakeMachine {
  spec: MachineSpec;
  state: MachineState;
  /** Reads left before a booting machine is running. */
  bootReads: number;
  index: number;
}

export interface FakeDriver extends ProviderDriver {
  /** Every call made, in order: `createMachine web-1`, `deleteMachine fake-1`, … */
  readonly calls: string[];
  readonly machines: Map<string, FakeMachine>;
  prepared: boolean;
  failNext(call: Call, error: unknown): void;
  setState(nativeId: string, state: MachineState): void;
}

export function fakeDriver(opts: { bootPolls?: number } = {}): FakeDriver {
  const machines = new Map<string, FakeMachine>();
  const failures = new Map<Call, unknown>();
  const calls: string[] = [];
  let next = 1;
  const enter = (call: Call, arg = '') => {
    calls.push(`${call}${arg ? ` ${arg}` : ''}`);
    const f = failures.get(call);
    if (f !== undefined) {
      failures.delete(call);
      throw f;
    }
  };
  const read = (id: string, m: FakeMachine): ProvisionedMachine => {
    if (m.state === 'booting' && m.bootReads-- <= 0) m.state = 'running';
    return {
      nativeId: id,
      name: m.spec.name,
      state: m.state,
      addresses: [
        { address: `192.0.2.${m.index}`, family: 4, role: 'public' },
        { address: `10.0.0.${m.index}`, family: 4, role: 'private' },
      ],
      loginUsers: ['debian'],
      tags: { ...m.spec.tags },
      size: { normalized: 'small', native: 'fake.small' },
      image: { normalized: 'debian-12', native: 'fake-debian-12' },
      zone: 'fake-a',
    };
  };
  const driver: FakeDriver = {
    type: 'fake',
    calls,
    machines,
    prepared: false,
    failNext: (call, error) => void failures.set(call, error),
    setState: (id, state) => void (machines.get(id)!.state = state),
    async prepare(_ctx: ProviderContext) {
      enter('prepare');
      driver.prepared = true;
    },
    async createMachine(spec) {
      enter('createMachine', spec.name);
      if (!driver.prepared) throw new FormworkError('PROVIDER_ERROR', 'fake: createMachine before prepare');
      for (const [id, m] of machines) if (m.spec.idempotencyToken === spec.idempotencyToken) return read(id, m);
      const index = next++;
      const id = `fake-${index}`;
      machines.set(id, { spec, state: opts.bootPolls ? 'booting' : 'running', bootReads: opts.bootPolls ?? 0, index });
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
    },
    async teardown() {
      enter('teardown');
      machines.clear();
      driver.prepared = false;
    },
  };
  return driver;
}
