/**
 * Compute instances as machines: the status mapped to the contract's states, addresses
 * classified by the field that carries them (`networkInterfaces[].networkIP` → private,
 * `accessConfigs[].natIP` → public), and what a create decided read back from the instance's
 * metadata items (the exact tags, the catalog's normalized size and image, the login users,
 * the decisions), so a machine read later says what the one just made said.
 *
 * States: PROVISIONING, STAGING → booting; RUNNING → running; STOPPING, STOPPED, SUSPENDING,
 * SUSPENDED, TERMINATED → stopped; REPAIRING and anything else → error.
 *
 * @example
 *   toMachine(instance).addresses; // [{ address: '10.128.0.5', role: 'private', reason: 'networkInterfaces[0].networkIP on network default' }]
 */
import { isIP } from 'node:net';
import type { NodeDecision } from '../../core/decisions.js';
import type { MachineState, NodeAddress, ProvisionedMachine } from '../provider.js';
import { lastSegment } from './api.js';
import { META } from './labels.js';

/** An instance as the Compute API answers it (the fields the driver reads). */
export interface GceInstance {
  id: string;
  name: string;
  status: string;
  statusMessage?: string;
  zone?: string;
  machineType?: string;
  labels?: Record<string, string>;
  metadata?: { fingerprint?: string; items?: Array<{ key: string; value?: string }> };
  networkInterfaces?: Array<{ name?: string; network?: string; subnetwork?: string; networkIP?: string; accessConfigs?: Array<{ name?: string; type?: string; natIP?: string }> }>;
  disks?: Array<{ boot?: boolean; source?: string }>;
  tags?: { items?: string[] };
  /** The values of predefined metadata keys in effect (instance over project, organisation policies applied). */
  resourceStatus?: { effectiveInstanceMetadata?: { enableOsloginMetadataValue?: boolean } };
}

const STATES: Record<string, MachineState> = {
  PROVISIONING: 'booting', STAGING: 'booting', RUNNING: 'running',
  STOPPING: 'stopped', STOPPED: 'stopped', SUSPENDING: 'stopped', SUSPENDED: 'stopped', TERMINATED: 'stopped',
};

/**
 * The contract state of an instance status.
 *
 * @example
 *   machineState('STAGING'); // 'booting'
 */
export function machineState(status: string): MachineState {
  return STATES[status] ?? 'error';
}

/**
 * One metadata item's value.
 *
 * @example
 *   metadataValue(inst, 'ssh-keys'); // 'formwork:ssh-ed25519 AAAA…'
 */
export function metadataValue(inst: Pick<GceInstance, 'metadata'>, key: string): string | undefined {
  return inst.metadata?.items?.find((i) => i.key === key)?.value;
}

function parsed<T>(v: string | undefined, fallback: T): T {
  try {
    return v ? (JSON.parse(v) as T) : fallback;
  } catch {
    return fallback;
  }
}

/**
 * The addresses of an instance, each with the API field that decided its role.
 *
 * @example
 *   classifyAddresses(inst).find((a) => a.role === 'public')?.reason; // 'networkInterfaces[0].accessConfigs[0].natIP (ONE_TO_ONE_NAT access config "External NAT")'
 */
export function classifyAddresses(inst: Pick<GceInstance, 'networkInterfaces'>): NodeAddress[] {
  const out: NodeAddress[] = [];
  (inst.networkInterfaces ?? []).forEach((nic, i) => {
    const network = lastSegment(nic.network) || undefined;
    for (const [j, ac] of (nic.accessConfigs ?? []).entries()) {
      if (ac.natIP) out.push({ address: ac.natIP, family: isIP(ac.natIP) === 6 ? 6 : 4, role: 'public', ...(network ? { network } : {}), reason: `networkInterfaces[${i}].accessConfigs[${j}].natIP (${ac.type ?? 'ONE_TO_ONE_NAT'} access config "${ac.name ?? ''}")` });
    }
    if (nic.networkIP) out.push({ address: nic.networkIP, family: isIP(nic.networkIP) === 6 ? 6 : 4, role: 'private', ...(network ? { network } : {}), reason: `networkInterfaces[${i}].networkIP on network ${network ?? '?'}${nic.subnetwork ? ` (subnetwork ${lastSegment(nic.subnetwork)})` : ''}: the VPC address` });
  });
  return out;
}

/**
 * The machine an instance is.
 *
 * @example
 *   toMachine(inst).state; // 'running'
 */
export function toMachine(inst: GceInstance): ProvisionedMachine {
  const tags = parsed<Record<string, string>>(metadataValue(inst, META.tags), {});
  const decisions = parsed<NodeDecision[]>(metadataValue(inst, META.decisions), []);
  const machineType = lastSegment(inst.machineType);
  const imageNative = metadataValue(inst, META.imageNative);
  const inventory: Record<string, unknown> = { status: inst.status, id: inst.id };
  if (inst.statusMessage) inventory.statusMessage = inst.statusMessage;
  return {
    nativeId: inst.name,
    name: inst.name,
    state: machineState(inst.status),
    addresses: classifyAddresses(inst),
    loginUsers: (metadataValue(inst, META.loginUsers) ?? 'formwork').split(',').filter(Boolean),
    tags,
    ...(machineType ? { size: { normalized: metadataValue(inst, META.size) ?? machineType, native: machineType } } : {}),
    ...(imageNative ? { image: { normalized: metadataValue(inst, META.image) ?? imageNative, native: imageNative } } : {}),
    ...(inst.zone ? { zone: lastSegment(inst.zone) } : {}),
    inventory,
    decisions,
  };
}
