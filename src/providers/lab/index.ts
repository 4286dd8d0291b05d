/**
 * The `lab` provider: real Debian 12 hosts on the control host (debootstrap base, overlayfs,
 * systemd-nspawn --boot in a network namespace per host, two bridges per provider, an
 * apt-cacher-ng for packages). Needs root and: debootstrap, systemd-container, iproute2,
 * apt-cacher-ng (REQUIRED_TOOLS in base.ts).
 *
 * The base boots like a lean server image, not a desktop: units a container has no use for
 * are masked (BASE_MASKED_UNITS in base.ts), including logind, so a login is a plain PAM
 * session with no per-user systemd; the journal is volatile. A host answers SSH about a
 * second after it starts, four at once on two CPUs.
 *
 * Settings (a Provider's `settings`; any other key is refused when the provider is stored):
 *   subnetIndex    0–255 (default 0): the public network is the (2N)th /24 of 198.18.0.0/15
 *                  and the private one the next (N = 0: 198.18.0.0/24 and 198.18.1.0/24)
 *   baseDir        a base root filesystem to use instead of the one built in the data dir
 *   mirror         the Debian mirror debootstrap uses to build the base
 *   bootTimeoutMs  how long a host may take to answer SSH (default 90000)
 *   stopTimeoutMs  how long a host may take to stop (default 15000)
 *
 * @example
 *   import { labDriver, ensureBaseImage } from './providers/lab/index.js';
 *   await ensureBaseImage(dataDir, log);
 *   const m = await labDriver.createMachine({ name: 'db-1' }, { dataDir, providerName: 'lab', settings: { subnetIndex: 0 }, publicKey, log });
 */
export { labDriver, toMachine, ensureProviderNetwork, proxyRunning, LAB_IMAGE, LAB_LOGIN_USERS } from './driver.js';
export {
  ensureBaseImage,
  baseDirFor,
  isBaseReady,
  requiredTools,
  missingTools,
  detectMirror,
  REQUIRED_TOOLS,
  BASE_PACKAGES,
  BASE_SUITE,
  LOGIN_USER,
  GATEWAY_HOSTNAME,
  APT_PROXY_PORT,
  type EnsureBaseOptions,
} from './base.js';
export { labConfig, hostNames, validateHostName, type LabConfig, type HostNames } from './config.js';
export { readAllStates, readState, hostAlive, netnsPids, destroyHost, type HostState } from './host.js';
export { isAlive, procRef, type ProcRef } from './exec.js';
export { labLeftovers, listNetns, listLinks, overlayMountsUnder, processesMatching, type LabLeftovers } from './leftovers.js';
