/**
 * Devices as machines: Metal's device state mapped to the contract's, addresses classified
 * by the API's own flags, and what a create decided read back from the device's customdata.
 *
 * States: queued, provisioning, powering_on, reinstalling → booting; active → running;
 * failed → error (a failed build: provision deletes it and makes another); powering_off,
 * inactive → stopped; deprovisioning and anything unknown → error.
 *
 * Addresses: by each entry's `public` flag, `management` flag and `address_family`, never by
 * its position in `ip_addresses[]` nor by its range (Metal's private addresses are 10.x, but
 * an API-compatible cloud's need not be): public → `public`, else `private`. The public
 * management IPv4 comes first, so it is the control address whatever order the API lists.
 *
 * @example
 *   toMachine(device, 'm1').addresses[0]; // { address: '147.75.102.193', family: 4, role: 'public', reason: 'ip_addresses[].public=true (management IPv4)' }
 */
import type { NodeAddress } from '../../core/addresses.js';
import type { NodeDecision } from '../../core/decisions.js';
import type { MachineState, ProvisionedMachine } from '../provider.js';
import { deviceRecord, ownershipTagsOf } from './tags.js';
import type { MetalDevice, MetalIpAddress } from './wire.js';

const STATES: Record<string, MachineState> = {
  queued: 'booting', provisioning: 'booting', powering_on: 'booting', reinstalling: 'booting',
  active: 'running',
  powering_off: 'stopped', inactive: 'stopped',
  failed: 'error',
};

/**
 * The contract state of a Metal device state.
 *
 * @example
 *   machineState('provisioning'); // 'booting'
 */
export function machineState(state: string | undefined): MachineState {
  return (state && STATES[state]) || 'error';
}

const familyOf = (a: MetalIpAddress): 4 | 6 => (a.address_family === 6 || (a.address_family === undefined && a.address.includes(':')) ? 6 : 4);

/** Lower ranks first: the public management IPv4 (the device's own public path), then other public v4, public v6, private. */
function rank(a: MetalIpAddress): number {
  const v4 = familyOf(a) === 4;
  if (a.public === true) return (v4 ? 0 : 2) + (a.management === false ? 1 : 0);
  return 4 + (v4 ? 0 : 1);
}

/**
 * The addresses of a device, classified by the API's flags, with the reason for each.
 *
 * @example
 *   classifyAddresses([{ address: '10.0.0.5', address_family: 4, public: false, management: true }]);
 *   // [{ address: '10.0.0.5', family: 4, role: 'private', reason: 'ip_addresses[].public=false (management IPv4)', network: '…' }]
 */
export function classifyAddresses(list: readonly MetalIpAddress[] | undefined): NodeAddress[] {
  const usable = (list ?? []).filter((a) => a && typeof a.address === 'string' && a.address);
  return [...usable]
    .sort((a, b) => rank(a) - rank(b))
    .map((a) => {
      const family = familyOf(a);
      const kind = `${a.management === false ? 'additional' : 'management'} IPv${family}`;
      return {
        address: a.address,
        family,
        role: a.public === true ? 'public' : 'private',
        reason: `ip_addresses[].public=${a.public === true} (${kind})`,
        ...(a.network && a.cidr !== undefined ? { network: `${a.network}/${a.cidr}` } : {}),
      } satisfies NodeAddress;
    });
}

/**
 * The machine a device is, for the provider named `providerName`.
 *
 * @example
 *   toMachine(device, 'm1').state; // 'running'
 */
export function toMachine(d: MetalDevice): ProvisionedMachine {
  const rec = deviceRecord(d);
  const addresses = classifyAddresses(d.ip_addresses);
  const state = machineState(d.state);
  const inventory: Record<string, unknown> = { state: d.state ?? 'unknown' };
  if (d.state === 'failed') inventory.fault = 'the device build failed (state failed)';
  const plan = d.plan?.slug;
  const os = d.operating_system?.slug;
  const metro = d.metro?.code ?? d.facility?.code;
  const decisions: NodeDecision[] = [];
  const control = addresses.find((a) => a.role === 'public');
  if (control) decisions.push({ subject: 'address', chosen: control.address, reason: `the device's ${control.reason}: Metal gives every device a public address at build, so no address is attached` });
  else if (state === 'running') decisions.push({ subject: 'address', chosen: 'none', reason: 'the device has no address with ip_addresses[].public=true (deployed private-only?): the control plane must sit on its private network' });
  if (rec?.loginUsers?.length) decisions.push({ subject: 'login-users', chosen: rec.loginUsers.join(','), reason: rec.loginUsersReason ?? '' });
  return {
    nativeId: d.id,
    name: d.hostname ?? d.id,
    state,
    addresses,
    loginUsers: rec?.loginUsers?.length ? rec.loginUsers : ['root'],
    tags: ownershipTagsOf(d),
    ...(plan ? { size: { normalized: rec?.size ?? plan, native: plan } } : {}),
    ...(os ? { image: { normalized: rec?.image ?? os, native: os } } : {}),
    ...(metro ? { zone: metro } : {}),
    inventory,
    decisions,
  };
}
