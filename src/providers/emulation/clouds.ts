/**
 * The public-cloud emulators Formwork ships, by provider type, each loaded on first use (its
 * cloud's wire format and state stay out of processes that do not emulate it). What the
 * clouds e2e suite and `bench:clouds` iterate over.
 *
 * @example
 *   const start = await loadCloudEmulator('aws');
 *   const emu = await start({ backend: new MemoryBackend() });
 */
import { FormworkError } from '../../core/errors.js';
import type { StartCloudEmulator } from './cloud.js';

const EMULATORS: Readonly<Record<string, () => Promise<StartCloudEmulator>>> = {
  aws: async () => (await import('../aws/emulator/index.js')).startAwsEmulator,
  equinix: async () => (await import('../equinix/emulator/index.js')).startEquinixEmulator,
  gce: async () => (await import('../gce/emulator/index.js')).startGceEmulator,
};

/**
 * The provider types with an emulator, sorted.
 *
 * @example
 *   cloudEmulatorTypes(); // ['aws', 'equinix', 'gce']
 */
export function cloudEmulatorTypes(): string[] {
  return Object.keys(EMULATORS).sort();
}

/**
 * The start function of a cloud's emulator; VALIDATION naming the known ones when there is none.
 *
 * @example
 *   await loadCloudEmulator('gce');
 */
export async function loadCloudEmulator(type: string): Promise<StartCloudEmulator> {
  const load = EMULATORS[type];
  if (!load) throw new FormworkError('VALIDATION', `no emulator for provider type "${type}"; emulated clouds: ${cloudEmulatorTypes().join(', ') || 'none'}`, { type });
  return load();
}
