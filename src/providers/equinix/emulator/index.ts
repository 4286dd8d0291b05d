/**
 * The Equinix Metal emulator (`formwork emulate equinix`): the Metal API (server.ts) over one
 * project's state (state.ts), its devices real hosts of a host backend (lab hosts, or in
 * memory), with the faults asked for. It implements the shared CloudEmulator shape, so the
 * CLI, the clouds e2e and the bench drive it like the others.
 *
 * @example
 *   const emu = await startEquinixEmulator({ backend: new MemoryBackend(), bootDelayMs: 0 });
 *   const [secret, provider] = emu.documents('metal-emu'); // provider.settings.baseUrl === emu.endpoint
 *   await emu.close();
 */
import { randomBytes } from 'node:crypto';
import type { CloudEmulator, CloudEmulatorOptions, StartCloudEmulator } from '../../emulation/cloud.js';
import { Faults } from '../../emulation/faults.js';
import { serveMetal, resourcesOf } from './server.js';
import { MetalState, type MoveAway } from './state.js';

export { API_PREFIX } from './server.js';
export { EMULATED_METROS, EMULATED_OS, EMULATED_PLANS } from './catalog.js';

/** The Metal emulator: the shared shape, plus its state and test hooks. */
export interface EquinixEmulator extends CloudEmulator {
  /** The API token it accepts. */
  readonly token: string;
  /** The project's id (`settings.project`). */
  readonly projectId: string;
  readonly state: MetalState;
  /** The next `count` devices fail their build (`moveAway`: then answer 404, or 403 with 'forbidden'). */
  failNextBuilds(count: number, moveAway?: MoveAway): void;
  /** The next device never leaves `provisioning`. */
  neverBootNextDevice(): void;
  /** Resolves when every build and host deletion in flight has finished. */
  settled(): Promise<void>;
}

/** The metro the printed Provider document uses. */
export const DEFAULT_METRO = 'da';

/**
 * Starts a Metal emulator.
 *
 * @example
 *   const emu = await startEquinixEmulator({ backend, faults: parseFaults('throttle=20%') });
 */
export async function startEquinixEmulator(options: CloudEmulatorOptions & { token?: string }): Promise<EquinixEmulator> {
  const faults = new Faults(options.faults);
  const token = options.token ?? randomBytes(24).toString('base64url');
  const state = new MetalState(options.backend, faults, { bootDelayMs: options.bootDelayMs ?? 1500 });
  const server = await serveMetal({ state, faults, token, host: options.host, port: options.port });
  let closed = false;
  return {
    cloud: 'equinix',
    endpoint: server.endpoint,
    faults,
    token,
    projectId: state.projectId,
    state,
    documents: (providerName) => [
      { kind: 'Secret', name: `${providerName}-credentials`, data: { apiToken: token } },
      {
        kind: 'Provider',
        name: providerName,
        type: 'equinix',
        credentialsSecret: `${providerName}-credentials`,
        settings: { baseUrl: server.endpoint, project: state.projectId, metro: DEFAULT_METRO, readinessTimeoutSeconds: 300 },
      },
    ],
    resources: () => resourcesOf(state),
    failNextBuilds: (count, moveAway) => state.failNextBuilds(count, moveAway),
    neverBootNextDevice: () => state.neverBootNextDevice(),
    settled: () => state.settled(),
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      await state.settled();
      for (const id of [...state.devices.keys()]) state.deleteDevice(id);
      await state.settled();
      await options.backend.close();
    },
  };
}

/** The emulator as a StartCloudEmulator (for tables of clouds). */
export const startEquinix: StartCloudEmulator = startEquinixEmulator;
