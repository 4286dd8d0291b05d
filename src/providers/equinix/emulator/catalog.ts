/**
 * What the Equinix Metal emulator offers, in the API's shapes: a few current plans (specs
 * and hourly prices as Metal listed them), operating systems with how each one's hosts are
 * shaped (Metal logs in as root on every image; a custom image may leave the hostname
 * unset), and metros.
 *
 * @example
 *   EMULATED_OS.find((o) => o.slug === 'debian_12')?.distro; // 'debian'
 */
import type { MetalMetro, MetalOperatingSystem, MetalPlan } from '../wire.js';

/** An operating system and the shape of the hosts it makes. */
export interface EmulatedOs extends MetalOperatingSystem {
  slug: string;
  /** Post-provisioning left half done (the hostname stays `localhost`). */
  halfProvisioned?: boolean;
}

const plan = (slug: string, name: string, cpus: number, memory: string, drive: string, hourly: number, metros: string[]): MetalPlan => ({
  id: `plan-${slug}`,
  slug,
  name,
  line: 'baremetal',
  specs: { cpus: [{ count: cpus, type: 'x86 CPU' }], memory: { total: memory }, drives: [{ count: 2, size: drive, type: 'SSD' }] },
  pricing: { hour: hourly },
  available_in_metros: metros.map((code) => ({ href: `/locations/metros/${code}`, code })),
});

/** The plans. */
export const EMULATED_PLANS: readonly MetalPlan[] = [
  plan('c3.small.x86', 'c3.small.x86', 8, '32GB', '480GB', 0.5, ['da', 'sv', 'am']),
  plan('m3.small.x86', 'm3.small.x86', 8, '64GB', '480GB', 1.05, ['da', 'sv', 'am']),
  plan('c3.medium.x86', 'c3.medium.x86', 24, '64GB', '480GB', 1.5, ['da', 'sv']),
  plan('m3.large.x86', 'm3.large.x86', 32, '256GB', '3.8TB', 3.1, ['da']),
];

/** The operating systems (every one logs in as root). */
export const EMULATED_OS: readonly EmulatedOs[] = [
  { id: 'os-debian-12', slug: 'debian_12', name: 'Debian 12', distro: 'debian', version: '12' },
  { id: 'os-debian-11', slug: 'debian_11', name: 'Debian 11', distro: 'debian', version: '11' },
  { id: 'os-ubuntu-24-04', slug: 'ubuntu_24_04', name: 'Ubuntu 24.04 LTS', distro: 'ubuntu', version: '24.04' },
  { id: 'os-ubuntu-22-04', slug: 'ubuntu_22_04', name: 'Ubuntu 22.04 LTS', distro: 'ubuntu', version: '22.04' },
  { id: 'os-rocky-9', slug: 'rocky_9', name: 'Rocky Linux 9', distro: 'rocky', version: '9' },
  // A custom iPXE-style install that leaves the hostname to the user.
  { id: 'os-custom-ipxe', slug: 'custom_ipxe', name: 'Custom iPXE', distro: 'custom_ipxe', version: '', halfProvisioned: true },
];

/** The metros. */
export const EMULATED_METROS: readonly MetalMetro[] = [
  { id: 'metro-da', code: 'da', name: 'Dallas', country: 'US' },
  { id: 'metro-sv', code: 'sv', name: 'Silicon Valley', country: 'US' },
  { id: 'metro-am', code: 'am', name: 'Amsterdam', country: 'NL' },
];
