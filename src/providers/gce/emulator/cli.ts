/**
 * What `formwork emulate gce` starts: the emulator on the backend the command asked for
 * (real lab hosts of a lab provider `gce-emulator-<subnet index>`, or in memory), listening
 * where it asked, with its faults.
 *
 * @example
 *   const { emulator } = await startGceForCli({ backend: 'memory', listen: '127.0.0.1:0', subnetIndex: 54, dataDir, log });
 */
import { FormworkError } from '../../../core/errors.js';
import { parseListen } from '../../../core/listen.js';
import { parseFaults } from '../../emulation/faults.js';
import { MemoryBackend, type HostBackend } from '../../emulation/hosts.js';
import { LabBackend } from '../../emulation/lab-hosts.js';
import type { ProviderLogger } from '../../provider.js';
import { EMULATED_PROJECT, EMULATED_ZONE, startGceEmulator, type GceEmulator } from './index.js';

/** What the command asked for. */
export interface GceCliOptions {
  backend: 'lab' | 'memory';
  listen: string;
  subnetIndex: number;
  dataDir: string;
  baseDir?: string;
  faults?: string;
  log: ProviderLogger;
}

/**
 * Starts the emulator for the command.
 *
 * @example
 *   (await startGceForCli(opts)).emulator.endpoint; // 'http://127.0.0.1:…/compute/v1'
 */
export async function startGceForCli(o: GceCliOptions): Promise<{ emulator: GceEmulator; project: string; zone: string }> {
  if (!Number.isInteger(o.subnetIndex) || o.subnetIndex < 0 || o.subnetIndex > 255) throw new FormworkError('VALIDATION', `--subnet-index must be an integer from 0 to 255 (got ${o.subnetIndex})`);
  const faults = parseFaults(o.faults);
  const { host, port } = parseListen(o.listen);
  const backend: HostBackend = o.backend === 'lab' ? new LabBackend({ emulator: 'gce', dataDir: o.dataDir, subnetIndex: o.subnetIndex, baseDir: o.baseDir, log: o.log }) : new MemoryBackend();
  const emulator = await startGceEmulator({ backend, host, port, faults, log: o.log });
  return { emulator, project: EMULATED_PROJECT, zone: EMULATED_ZONE };
}
