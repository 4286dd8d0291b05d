/**
 * What every public-cloud emulator (aws, gce, equinix) is, so that `formwork emulate`, the
 * clouds e2e suite and `bench:clouds` drive each the same way: started on a host backend
 * with faults, it serves its cloud's wire format at `endpoint`, hands out the documents
 * (a Secret with the credentials it accepts, a Provider using it) that point Formwork at it,
 * and lists what it holds (instances, addresses, keys, groups) for leak checks.
 *
 * @example
 *   const emu = await startAwsEmulator({ backend: new MemoryBackend(), faults: parseFaults('throttle=20%') });
 *   const docs = emu.documents('aws-emu'); // [{ kind: 'Secret', … }, { kind: 'Provider', type: 'aws', … }]
 *   emu.resources().filter((r) => r.kind === 'instance'); // what is left
 *   await emu.close();
 */
import type { ProviderLogger } from '../provider.js';
import type { FaultSpec, Faults, EmulatedResource } from './faults.js';
import type { HostBackend } from './hosts.js';

/** How to start a cloud emulator. */
export interface CloudEmulatorOptions {
  backend: HostBackend;
  /** Where to listen (default 127.0.0.1, port 0: a free one). */
  host?: string;
  port?: number;
  faults?: FaultSpec;
  /** How long an instance stays pending before it runs (default: a cloud-like second or two; tests set 0). */
  bootDelayMs?: number;
  log?: ProviderLogger;
}

/** A running cloud emulator (see the file's comment). */
export interface CloudEmulator {
  /** The provider type it emulates: `aws`, `gce`, `equinix`. */
  readonly cloud: string;
  /** Its API's base URL (what `settings.endpoint`/`apiEndpoint`/`baseUrl` is set to). */
  readonly endpoint: string;
  readonly faults: Faults;
  /**
   * The documents that point Formwork at it: a Secret holding the credentials it accepts
   * (named `<providerName>-credentials`), then the Provider named `providerName`.
   */
  documents(providerName: string): Record<string, unknown>[];
  /** Everything it holds now (also served at EMULATOR_STATE_PATH). */
  resources(): EmulatedResource[];
  /** Stops serving and deletes every host it made. */
  close(): Promise<void>;
}

/** Starts an emulator of one cloud. */
export type StartCloudEmulator = (options: CloudEmulatorOptions) => Promise<CloudEmulator>;
