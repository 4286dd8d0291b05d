/**
 * The AWS emulator (`formwork emulate aws`): the EC2 Query API of one region, whose
 * instances are hosts of a host backend (real lab hosts, or in memory), reachable only
 * through an Elastic IP (its default subnets map no public address). It implements the
 * shared `CloudEmulator` (../../emulation/cloud.ts).
 *
 * @example
 *   const emu = await startAwsEmulator({ backend: new MemoryBackend(), faults: parseFaults('throttle=20%'), bootDelayMs: 0 });
 *   emu.documents('aws-emu'); // [Secret aws-emu-credentials, Provider aws-emu]
 *   await emu.close();
 */
import { randomBytes } from 'node:crypto';
import type { CloudEmulator, CloudEmulatorOptions } from '../../emulation/cloud.js';
import { Faults, NO_FAULTS, type EmulatedResource, type Fault } from '../../emulation/faults.js';
import { serveEc2, type EmulatorCredentials } from './server.js';
import { Ec2State } from './state.js';

export { EMULATED_IMAGES, EMULATED_INSTANCE_TYPES } from './catalog.js';
export { Ec2State } from './state.js';

/** The AWS emulator, with what tests look at besides the shared interface. @example const emu: AwsEmulator = await startAwsEmulator({ backend }); emu.credentials.accessKeyId; // 'AKIA…' */
export interface AwsEmulator extends CloudEmulator {
  readonly region: string;
  readonly credentials: EmulatorCredentials;
  readonly state: Ec2State;
  /** Waits for host deletions and address moves under way. */
  settled(): Promise<void>;
  /** Faults the next `times` calls of `action` (tests: a lost RunInstances answer). */
  failNext(action: string, fault: Fault, times?: number): void;
}

/** AWS-only options: the region (default us-east-1), the Elastic IP quota (default 5). @example await startAwsEmulator({ backend, region: 'eu-west-1', addressQuota: 1 }); */
export interface AwsEmulatorOptions extends CloudEmulatorOptions {
  region?: string;
  addressQuota?: number;
}

const upper = (n: number) => Array.from(randomBytes(n), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b % 32]).join('');

/**
 * Starts the AWS emulator (see the file's comment).
 *
 * @example
 *   const emu = await startAwsEmulator({ backend, port: 4566 });
 */
export async function startAwsEmulator(options: AwsEmulatorOptions): Promise<AwsEmulator> {
  const region = options.region ?? 'us-east-1';
  const faults = new Faults(options.faults ?? NO_FAULTS);
  const credentials: EmulatorCredentials = { accessKeyId: `AKIA${upper(16)}`, secretAccessKey: randomBytes(30).toString('base64') };
  const state = new Ec2State({ backend: options.backend, faults, region, bootDelayMs: options.bootDelayMs ?? 1500, log: options.log, addressQuota: options.addressQuota });
  const server = await serveEc2({ state, faults, credentials, region, host: options.host, port: options.port });
  return {
    cloud: 'aws',
    endpoint: server.url,
    region,
    credentials,
    faults,
    state,
    documents: (providerName: string) => [
      { kind: 'Secret', name: `${providerName}-credentials`, data: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey } },
      { kind: 'Provider', name: providerName, type: 'aws', credentialsSecret: `${providerName}-credentials`, settings: { region, endpoint: server.url, readinessTimeoutSeconds: 300 } },
    ],
    resources: (): EmulatedResource[] => state.resources(),
    settled: () => state.settled(),
    failNext: server.failNext,
    async close() {
      await server.close();
      await state.close();
      await options.backend.close();
    },
  };
}
