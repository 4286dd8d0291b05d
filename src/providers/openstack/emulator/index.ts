/**
 * The OpenStack emulator: Keystone, Nova, Neutron and Glance on one HTTP port, playing one
 * of issue 13's snowflake clouds (a scenario) or a vendor profile's, with instances from a
 * host backend (real lab hosts, or in memory). `formwork emulate openstack` runs it;
 * `runEmulator` is what that command does, apart from its printing.
 *
 * @example
 *   const running = await runEmulator({ scenario: 'floating-ip-required', backend: 'memory', dataDir, listen: '127.0.0.1:0', subnetIndex: 40, log });
 *   running.cloudsFile; // '<dataDir>/openstack-emulator-40/clouds.yaml'
 *   await running.emulator.close();
 */
import { join } from 'node:path';
import { FormworkError } from '../../../core/errors.js';
import { parseListen } from '../../../core/listen.js';
import { parseFaults } from '../../emulation/faults.js';
import type { ProviderLogger } from '../../provider.js';
import { MemoryBackend, type HostBackend } from '../../emulation/hosts.js';
import { providerDocument, writeCloudsYaml } from './clouds.js';
import { LabBackend } from '../../emulation/lab-hosts.js';
import { profileScenario, scenarioNamed, SCENARIOS } from './scenarios.js';
import { startEmulator, type Emulator } from './server.js';

export { MemoryBackend, type HostBackend, type HostRequest, type BackendHost, type NetworkSide } from '../../emulation/hosts.js';
export { LabBackend, type LabBackendOptions } from '../../emulation/lab-hosts.js';
export { SCENARIOS, scenarioNamed, profileScenario, type Scenario } from './scenarios.js';
export { startEmulator, type Emulator, type EmulatorOptions } from './server.js';
export { cloudsDocument, writeCloudsYaml, providerDocument } from './clouds.js';

/** What to run. */
export interface RunOptions {
  scenario?: string;
  profile?: string;
  backend: 'lab' | 'memory';
  dataDir: string;
  /** HOST:PORT (port 0: a free one). */
  listen: string;
  subnetIndex: number;
  baseDir?: string;
  /** A fault spec (emulation/faults.ts), e.g. `throttle=20%,never-boot=1`. */
  faults?: string;
  log: ProviderLogger;
}

/** A running emulator with the files written for it. */
export interface RunningEmulator {
  emulator: Emulator;
  cloudName: string;
  cloudsFile: string;
  provider: ReturnType<typeof providerDocument>;
}


/**
 * Starts the emulator a command asked for and writes its clouds.yaml.
 *
 * @example
 *   const { provider } = await runEmulator({ profile: 'citycloud', backend: 'lab', dataDir, listen: '127.0.0.1:5000', subnetIndex: 40, log });
 */
export async function runEmulator(o: RunOptions): Promise<RunningEmulator> {
  if (o.scenario && o.profile) throw new FormworkError('VALIDATION', 'give --scenario or --profile, not both');
  if (!Number.isInteger(o.subnetIndex) || o.subnetIndex < 0 || o.subnetIndex > 255) throw new FormworkError('VALIDATION', `--subnet-index must be an integer from 0 to 255 (got ${o.subnetIndex})`);
  const scenario = o.profile ? profileScenario(o.profile) : scenarioNamed(o.scenario ?? 'floating-ip-required');
  const { host, port } = parseListen(o.listen);
  const backend: HostBackend = o.backend === 'lab' ? new LabBackend({ emulator: 'openstack', dataDir: o.dataDir, subnetIndex: o.subnetIndex, baseDir: o.baseDir, log: o.log }) : new MemoryBackend();
  const emulator = await startEmulator({ scenario, backend, host, port, faults: parseFaults(o.faults) });
  try {
    const cloudName = `openstack-emulator-${o.subnetIndex}`;
    const cloudsFile = await writeCloudsYaml(emulator, join(o.dataDir, cloudName), cloudName);
    return { emulator, cloudName, cloudsFile, provider: providerDocument(cloudName, cloudName) };
  } catch (e) {
    await emulator.close();
    throw e;
  }
}

/**
 * The scenario names, for help texts.
 *
 * @example
 *   scenarioNames(); // 'floating-ip-required, naming-chaos, …'
 */
export function scenarioNames(): string {
  return Object.keys(SCENARIOS).join(', ');
}
