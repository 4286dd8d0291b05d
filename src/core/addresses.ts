/**
 * A machine's addresses and the one rule for which of them the control plane connects to.
 *
 * Roles: `public` is reachable from the control plane (and maybe the internet), `admin` is a
 * management network the control plane sits on (metal's provisioning LAN), `private` joins
 * nodes to each other, `bmc` is the board's management controller (never SSH). The control
 * plane prefers public, then admin, then private: every caller (the yardstick, the executors,
 * conformance) asks `controlAddress`, so they never connect to different addresses.
 *
 * @example
 *   controlAddress([{ address: '10.0.0.5', family: 4, role: 'private' }, { address: '192.0.2.9', family: 4, role: 'admin' }]); // '192.0.2.9'
 */

export type AddressRole = 'public' | 'private' | 'admin' | 'bmc';

export interface NodeAddress {
  address: string;
  family: 4 | 6;
  role: AddressRole;
  /** The provider's name for the network the address is on. */
  network?: string;
  /**
   * Why the address has its role: the API field or probe that decided it (`router:external
   * network`, `TCP/22 answered from the control plane`, `subnet maps public IPs`). Shown by
   * `formwork describe node`; a driver sets it on every address it classifies.
   */
  reason?: string;
}

/** The roles the control plane may connect to, most preferred first. */
export const CONTROL_ROLES: readonly AddressRole[] = ['public', 'admin', 'private'];

/** The address the control plane uses among `addresses` (anything not an array has none). */
export function controlAddress(addresses: unknown): string | undefined {
  const list = Array.isArray(addresses) ? (addresses as Array<Partial<NodeAddress>>) : [];
  for (const role of CONTROL_ROLES) {
    const a = list.find((x) => x?.role === role && typeof x.address === 'string' && x.address);
    if (a) return a.address;
  }
  return undefined;
}
