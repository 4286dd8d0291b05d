/**
 * The Google Compute Engine emulator: the Compute REST API (JSON in the shapes of the
 * recorded responses), an OAuth token endpoint for the service account it made, and
 * instances that are hosts of a backend (real lab hosts, or in memory), reachable only once
 * an access config is attached. It implements the cloud emulator shape of
 * ../../emulation/cloud.ts; `formwork emulate gce` runs it.
 *
 * @example
 *   const emu = await startGceEmulator({ backend: new MemoryBackend(), bootDelayMs: 0 });
 *   const [secret, provider] = emu.documents('gce-emu'); // serviceAccountJson whose token_uri is emu's /token
 *   emu.policy.noExternalIp = true; // the organisation policy refusing external addresses
 *   await emu.close();
 */
import type { CloudEmulator, CloudEmulatorOptions, StartCloudEmulator } from '../../emulation/cloud.js';
import { Faults, type EmulatedResource } from '../../emulation/faults.js';
import { EmulatedInstances } from './instances.js';
import { Operations } from './operations.js';
import { API_PREFIX, serveGce } from './server.js';
import { GceState, type GcePolicy } from './state.js';
import { EmulatedOAuth } from './token.js';

export { GceState, IMAGES, MACHINE_TYPES, ZONES, type GcePolicy } from './state.js';

/** The project and zone the emulator plays. */
export const EMULATED_PROJECT = 'formwork-emulated';
export const EMULATED_ZONE = 'us-central1-a';

/** Options beyond the shared ones: how long an operation takes (default 300 ms; tests 0). */
export interface GceEmulatorOptions extends CloudEmulatorOptions {
  operationDelayMs?: number;
}

/** A running GCE emulator: the shared shape, its state and the policies a test can turn on. */
export interface GceEmulator extends CloudEmulator {
  readonly state: GceState;
  readonly policy: GcePolicy;
  /** The service account key file it accepts. */
  readonly serviceAccountJson: string;
  /** Resolves when no operation is running. */
  settled(): Promise<void>;
}

/**
 * Starts the emulator (see the file's comment).
 *
 * @example
 *   const emu = await startGceEmulator({ backend, faults: parseFaults('throttle=20%') });
 */
export async function startGceEmulator(options: GceEmulatorOptions): Promise<GceEmulator> {
  const faults = new Faults(options.faults);
  let state: GceState | undefined;
  let oauth: EmulatedOAuth | undefined;
  let ops: Operations | undefined;
  let instances: EmulatedInstances | undefined;
  const resources = (): EmulatedResource[] => [
    ...[...state!.instances.values()].map((i) => ({ kind: 'instance', id: i.json.name, tags: { ...i.json.labels }, status: i.json.status })),
    ...[...state!.instances.values()].flatMap((i) => i.json.networkInterfaces.flatMap((n) => n.accessConfigs.map((a) => ({ kind: 'access-config', id: a.natIP, tags: { ...i.json.labels }, status: `attached to ${i.json.name}` })))),
    ...[...state!.firewalls.entries()].map(([name, f]) => ({ kind: 'firewall', id: name, tags: {}, status: String(f.description ?? '') })),
  ];
  const server = await serveGce({ state: () => state!, oauth: () => oauth!, instances: () => instances!, ops: () => ops!, faults, backend: options.backend, resources }, options.host ?? '127.0.0.1', options.port ?? 0);
  const endpoint = `${server.url}${API_PREFIX}`;
  state = new GceState(EMULATED_PROJECT, endpoint, options.backend.publicPrefix);
  oauth = new EmulatedOAuth(EMULATED_PROJECT, `${server.url}/token`);
  ops = new Operations(state, oauth.clientEmail, options.operationDelayMs ?? 300);
  instances = new EmulatedInstances(state, options.backend, ops, faults, options.bootDelayMs ?? 1500);
  const serviceAccountJson = JSON.stringify(oauth.keyFile(), null, 2);
  const s = state;
  const o = ops;
  const inst = instances;
  return {
    cloud: 'gce',
    endpoint,
    faults,
    state: s,
    policy: s.policy,
    serviceAccountJson,
    documents: (providerName) => [
      { kind: 'Secret', name: `${providerName}-credentials`, data: { serviceAccountJson } },
      { kind: 'Provider', name: providerName, type: 'gce', credentialsSecret: `${providerName}-credentials`, settings: { project: EMULATED_PROJECT, zone: EMULATED_ZONE, apiEndpoint: endpoint, readinessTimeoutSeconds: 300 } },
    ],
    resources,
    settled: () => o.settled(),
    async close() {
      await server.close();
      await o.settled();
      for (const i of [...s.instances.values()]) await inst.release(i).catch(() => undefined);
      await options.backend.close();
    },
  };
}

/** The emulator as the shared shape's starter. */
export const startEmulator: StartCloudEmulator = startGceEmulator;
