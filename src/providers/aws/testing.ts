/**
 * What the aws tests share: an emulator on the memory backend, a provider context pointing
 * at it, the control plane's TCP/22 probe answered as the backend says, and the test-time
 * knobs set low (polls, read-backs, EC2's consistency window).
 *
 * @example
 *   const emu = await startTestEmulator();
 *   const ctx = awsContext(emu, 'aws1');
 */
import { forgetCallPolicies } from '../api-calls.js';
import { generateSshKeypair } from '../emulation/keys.js';
import { MemoryBackend, type MemoryBackendOptions } from '../emulation/hosts.js';
import { parseFaults } from '../emulation/faults.js';
import type { ProviderContext } from '../provider.js';
import { bootPoll } from '../readiness.js';
import { forgetClients } from './client.js';
import { deleteConfirm } from './driver.js';
import { startAwsEmulator, type AwsEmulator } from './emulator/index.js';
import { consistency, forgetLaunched } from './machines.js';
import { releaseConfirm } from './reachable.js';

/** Sets the polls and read-backs low, as a unit test wants them. @example fastPolls(); // at the top of a test file */
export function fastPolls(): void {
  bootPoll.ms = 5;
  consistency.pollMs = 5;
  consistency.windowMs = 3000;
  releaseConfirm.ms = 2000;
  deleteConfirm.ms = 2000;
}

/** A memory backend that also reports a host key, as lab hosts do. @example const emu = await startTestEmulator({ backend: new KeyedMemoryBackend() }); */
export class KeyedMemoryBackend extends MemoryBackend {
  readonly hostKey = generateSshKeypair('root@host').publicKey;
  override async create(...args: Parameters<MemoryBackend['create']>) {
    return { ...(await super.create(...args)), hostPublicKey: this.hostKey };
  }
}

/**
 * An AWS emulator on a memory backend (boot delay 20 ms unless said).
 *
 * @example
 *   const emu = await startTestEmulator({ faults: 'throttle=20%' });
 */
export async function startTestEmulator(o: { faults?: string; bootDelayMs?: number; addressQuota?: number; backend?: MemoryBackend; backendOptions?: MemoryBackendOptions } = {}): Promise<AwsEmulator & { backend: MemoryBackend }> {
  const backend = o.backend ?? new MemoryBackend(o.backendOptions);
  const emu = await startAwsEmulator({ backend, bootDelayMs: o.bootDelayMs ?? 20, faults: parseFaults(o.faults), addressQuota: o.addressQuota });
  return Object.assign(emu, { backend });
}

/**
 * The context of a provider using the emulator.
 *
 * @example
 *   awsContext(emu, 'aws1', { publicAddress: 'none' });
 */
export function awsContext(emu: AwsEmulator, providerName: string, settings: Record<string, unknown> = {}, credentials: Record<string, string> = { ...emu.credentials }): ProviderContext {
  return {
    dataDir: '/nonexistent',
    providerName,
    settings: { region: emu.region, endpoint: emu.endpoint, rateLimit: { requestsPerSecond: 1000, concurrency: 16 }, ...settings },
    credentials,
    publicKey: platformKey,
    log: { info: () => undefined, warn: () => undefined },
  };
}

const platformKey = generateSshKeypair('formwork').publicKey;

/** Forgets clients and call policies between tests. @example afterEach(() => forgetAll()); */
export function forgetAll(): void {
  forgetClients();
  forgetCallPolicies();
  forgetLaunched();
}

/**
 * A TCP/22 probe answered as the backend says (throws "connection refused" when it would not answer).
 *
 * @example
 *   readinessProbe.tcp = probeFor(emu.backend);
 */
export function probeFor(backend: MemoryBackend, unreachable: Set<string> = new Set()) {
  return async (host: string): Promise<void> => {
    const h = [...backend.hosts.values()].find((x) => x.floating === host || x.publicAddress === host || x.privateAddress === host);
    if (!backend.reachable(host) || (h && unreachable.has(h.request.serverId))) throw new Error(`${host}: connection refused`);
  };
}
