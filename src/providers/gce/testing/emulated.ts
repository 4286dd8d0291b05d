/**
 * Test helpers of the gce driver: an emulator on the memory backend, quick (no operation or
 * boot delay), and a provider context pointing at it.
 *
 * @example
 *   const { emu, backend, ctx } = await emulatedGce('gce1');
 *   await gceDriver.createMachine(spec, ctx);
 */
import { MemoryBackend } from '../../emulation/hosts.js';
import { parseFaults } from '../../emulation/faults.js';
import type { ProviderContext } from '../../provider.js';
import { startGceEmulator, type GceEmulator } from '../emulator/index.js';

/** A running emulator, its backend, and a context for a provider named `providerName`. */
export interface EmulatedGce {
  emu: GceEmulator;
  backend: MemoryBackend;
  ctx: ProviderContext;
}

const quiet = { info: () => undefined, warn: () => undefined };

/**
 * Starts an emulator on a MemoryBackend and makes a context from its documents.
 *
 * @example
 *   const { ctx } = await emulatedGce('gce1', { faults: 'throttle=20%' });
 */
export async function emulatedGce(providerName: string, opts: { backend?: MemoryBackend; faults?: string; settings?: Record<string, unknown>; operationDelayMs?: number; bootDelayMs?: number } = {}): Promise<EmulatedGce> {
  const backend = opts.backend ?? new MemoryBackend();
  const emu = await startGceEmulator({ backend, bootDelayMs: opts.bootDelayMs ?? 0, operationDelayMs: opts.operationDelayMs ?? 0, faults: parseFaults(opts.faults) });
  const [secret, provider] = emu.documents(providerName) as [{ data: Record<string, string> }, { settings: Record<string, unknown> }];
  const ctx: ProviderContext = { dataDir: '/nonexistent', providerName, settings: { ...provider.settings, rateLimit: { requestsPerSecond: 1000, concurrency: 8 }, ...opts.settings }, credentials: secret.data, publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q formwork', log: quiet };
  return { emu, backend, ctx };
}
