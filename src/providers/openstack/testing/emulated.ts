/**
 * Shared set-up of the emulator's unit tests: an emulator on the in-memory backend and our
 * client logged in to it.
 *
 * @example
 *   const { emu, client, backend } = await emulate('floating-ip-required');
 *   await emu.close();
 */
import { createOpenStackClient, type OpenStackClient } from '../client/index.js';
import { MemoryBackend } from '../../emulation/hosts.js';
import { scenarioNamed, type Scenario } from '../emulator/scenarios.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../emulator/server.js';

/** An emulator, its backend and a client on it. */
export interface Emulated {
  emu: Emulator;
  backend: MemoryBackend;
  client: OpenStackClient;
}

/**
 * Starts an emulator of `scenario` (a name or a scenario) on a memory backend, with a client.
 *
 * @example
 *   const { client } = await emulate({ ...scenarioNamed('late-error'), lateErrorMs: 20 });
 */
export async function emulate(scenario: string | Scenario, options: Partial<EmulatorOptions> = {}): Promise<Emulated> {
  const backend = new MemoryBackend({ createDelayMs: 5 });
  const emu = await startEmulator({ scenario: typeof scenario === 'string' ? scenarioNamed(scenario) : scenario, backend, ...options });
  return { emu, backend, client: createOpenStackClient({ auth: emu.passwordAuth(), region: emu.region }) };
}

/**
 * Polls `get` until `ok` holds on its value (at most `ms`).
 *
 * @example
 *   await until(() => client.compute.getServer(id), (s) => s?.status === 'ACTIVE');
 */
export async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
