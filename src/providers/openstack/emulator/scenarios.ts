/**
 * The emulator's clouds: one scenario per snowflake of issue 13, and a vendor profile's
 * behaviour (`requires_floating_ip`, `floating_ip_source: None`, per-network flags) made into
 * a scenario. A scenario says which networks exist and on which side of the host backend
 * each lies (`tenant-public`: fixed addresses reachable from the control plane;
 * `tenant-private`: reachable only through a floating IP; `external`: a floating IP pool,
 * `routed` when a router joins it to every private tenant subnet), the flavors and images,
 * and the misbehaviours to show.
 *
 * @example
 *   const s = scenarioNamed('several-externals');
 *   s.networks.filter((n) => n.kind === 'external').length; // 2
 */
import { FormworkError } from '../../../core/errors.js';
import type { NetworkSetting } from '../config/cloud-config.js';
import { requireVendorProfile } from '../config/vendors.js';

/** A network of a scenario. */
export interface NetworkSeed {
  name: string;
  kind: 'tenant-public' | 'tenant-private' | 'external';
  /** An external network with a router to every private tenant subnet (floating IPs from it attach). */
  routed?: boolean;
  /** Where the routed external networks' routers attach (all private tenant networks when none says so). */
  natDestination?: boolean;
  /** `router:external` as shown (default: true for `external` networks). */
  routerExternal?: boolean;
  shared?: boolean;
}

/** A flavor of a scenario. */
export interface FlavorSeed {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
}

/** An image of a scenario: its name and properties (os_distro, os_version, os_admin_user…). */
export interface ImageSeed {
  id: string;
  name: string;
  properties: Record<string, string>;
}

/** A cloud the emulator plays. */
export interface Scenario {
  name: string;
  summary: string;
  region: string;
  networks: NetworkSeed[];
  flavors: FlavorSeed[];
  images: ImageSeed[];
  /** Neutron's L3 (routers and floating IPs): false for `floating_ip_source: None` clouds. */
  l3: boolean;
  /** Whether server addresses carry `OS-EXT-IPS:type` (false: a cloud without the extension). */
  addressTypes: boolean;
  /** How many of the first boots fail late (BUILD for `lateErrorMs`, then ERROR). */
  failingBoots: number;
  lateErrorMs: number;
  /** Hosts come up with post-provisioning undone (hostname `localhost`). */
  halfProvisioned: boolean;
  /** Only this user logs in on the hosts (the others are refused). */
  onlyLoginUser?: string;
  /** The vendor profile the printed clouds.yaml names (`--profile`). */
  profile?: string;
}

/** The usual flavors (m1.*). */
const FLAVORS: FlavorSeed[] = [
  { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1 },
  { id: '2', name: 'm1.small', vcpus: 1, ram: 2048, disk: 20 },
  { id: '3', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40 },
  { id: '4', name: 'm1.large', vcpus: 4, ram: 8192, disk: 80 },
];

const DEBIAN = { os_distro: 'debian', os_version: '12', os_admin_user: 'debian', hw_disk_bus: 'scsi' };

/** The usual images, each saying who logs in. */
const IMAGES: ImageSeed[] = [
  { id: '5c6f5a2e-7a61-4b69-9c39-5d0d2d6f0a01', name: 'Debian 12 (bookworm)', properties: DEBIAN },
  { id: '5c6f5a2e-7a61-4b69-9c39-5d0d2d6f0a02', name: 'Ubuntu 22.04 LTS', properties: { os_distro: 'ubuntu', os_version: '22.04', os_admin_user: 'ubuntu' } },
];

const BASE: Omit<Scenario, 'name' | 'summary' | 'networks'> = { region: 'RegionOne', flavors: FLAVORS, images: IMAGES, l3: true, addressTypes: true, failingBoots: 0, lateErrorMs: 0, halfProvisioned: false };

const FIP_NETWORKS: NetworkSeed[] = [
  { name: 'private', kind: 'tenant-private' },
  { name: 'public', kind: 'external', routed: true },
];

/**
 * Every scenario, by name.
 *
 * @example
 *   Object.keys(SCENARIOS); // ['floating-ip-required', 'naming-chaos', …]
 */
export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  'floating-ip-required': {
    ...BASE,
    name: 'floating-ip-required',
    summary: 'no externally accessible default: the tenant network is private; a floating IP from "public" makes a host reachable',
    networks: FIP_NETWORKS,
  },
  'naming-chaos': {
    ...BASE,
    name: 'naming-chaos',
    summary: 'no consistent naming: odd flavor, image and network names; images found by os_distro/os_version only',
    networks: [
      { name: 'ten-7f3c_int', kind: 'tenant-private' },
      { name: 'net_ext_PROD-01', kind: 'external', routed: true },
    ],
    flavors: [
      { id: 'a1b2', name: 'c1.w1a-STD_1x2', vcpus: 1, ram: 2048, disk: 10 },
      { id: 'c3d4', name: ' GP.Medium ', vcpus: 2, ram: 4096, disk: 40 },
      { id: 'e5f6', name: 'highmem-Ⅱ/8', vcpus: 4, ram: 32768, disk: 80 },
    ],
    images: [
      { id: '0b7e1f6a-1111-4c2e-9d3b-aa00000000c1', name: 'img-2026-11-07T0311Z-golden', properties: DEBIAN },
      { id: '0b7e1f6a-1111-4c2e-9d3b-aa00000000c2', name: 'Debian GNU/Linux 11 [DEPRECATED]', properties: { os_distro: 'debian', os_version: '11', os_admin_user: 'debian' } },
    ],
  },
  'private-is-public': {
    ...BASE,
    name: 'private-is-public',
    summary: 'the network called "private" is the reachable one; "public" is not, and "external" is visible but unusable (no router to it)',
    networks: [
      { name: 'private', kind: 'tenant-public' },
      { name: 'public', kind: 'tenant-private' },
      { name: 'external', kind: 'external', routed: false },
    ],
  },
  'login-user': {
    ...BASE,
    name: 'login-user',
    summary: 'the image does not say who logs in (no os_admin_user); only "debian" does, root is refused',
    networks: FIP_NETWORKS,
    images: [{ id: '5c6f5a2e-7a61-4b69-9c39-5d0d2d6f0b01', name: 'bookworm-cloud', properties: { os_distro: 'debian', os_version: '12' } }],
    onlyLoginUser: 'debian',
  },
  'no-metadata': {
    ...BASE,
    name: 'no-metadata',
    summary: 'no router:external, no routers, no OS-EXT-IPS:type: which network is reachable is found by probing',
    networks: [
      { name: 'net-a', kind: 'tenant-private' },
      { name: 'net-b', kind: 'tenant-public' },
    ],
    l3: false,
    addressTypes: false,
  },
  'half-provisioned': {
    ...BASE,
    name: 'half-provisioned',
    summary: 'hosts come up with post-provisioning undone: the hostname is still "localhost"',
    networks: FIP_NETWORKS,
    halfProvisioned: true,
  },
  'late-error': {
    ...BASE,
    name: 'late-error',
    summary: 'the first boot fails late: BUILD for a while, then ERROR ("No valid host was found"); later boots succeed',
    networks: FIP_NETWORKS,
    failingBoots: 1,
    lateErrorMs: 3000,
  },
  'several-externals': {
    ...BASE,
    name: 'several-externals',
    summary: 'two external networks: floating IPs from "ext-unrouted" cannot attach (no router to it), those from "ext-routed" can',
    networks: [
      { name: 'private', kind: 'tenant-private' },
      { name: 'ext-unrouted', kind: 'external', routed: false },
      { name: 'ext-routed', kind: 'external', routed: true },
    ],
  },
  'no-neutron-fip': {
    ...BASE,
    name: 'no-neutron-fip',
    summary: 'floating_ip_source None: no routers nor floating IPs in Neutron; the tenant network routes externally',
    networks: [{ name: 'public-net', kind: 'tenant-public', shared: true }],
    l3: false,
  },
};

/**
 * The scenario named `name`, or a clear refusal listing the others.
 *
 * @example
 *   scenarioNamed('late-error').failingBoots; // 1
 */
export function scenarioNamed(name: string): Scenario {
  const s = SCENARIOS[name];
  if (!s) throw new FormworkError('VALIDATION', `no emulator scenario is named "${name}"; the scenarios are: ${Object.keys(SCENARIOS).join(', ')}`, { scenario: name });
  return s;
}

function regionOf(profile: Record<string, unknown>): { name: string; networks: NetworkSetting[] } {
  const regions = Array.isArray(profile.regions) ? profile.regions : [];
  const first = regions[0] as unknown;
  const values = first && typeof first === 'object' ? ((first as { values?: { networks?: NetworkSetting[] } }).values ?? {}) : {};
  const name = typeof first === 'string' ? first : first && typeof first === 'object' && typeof (first as { name?: unknown }).name === 'string' ? (first as { name: string }).name : 'RegionOne';
  const networks = values.networks ?? (Array.isArray(profile.networks) ? (profile.networks as NetworkSetting[]) : []);
  return { name, networks };
}

/**
 * The cloud a vendor profile describes: its first region; its networks when it lists them
 * (`routes_externally` → reachable, `nat_source` → a floating IP pool routed to the
 * `nat_destination` networks); no floating IPs with `floating_ip_source: None` (a
 * reachable tenant network instead); a private tenant network and a routed pool otherwise.
 * Shut-down clouds are refused, as the provider would refuse them.
 *
 * @example
 *   profileScenario('limestonenetworks').networks.map((n) => n.name); // ['Public Internet', 'DDoS Protected', …]
 */
export function profileScenario(vendor: string): Scenario {
  const { profile } = requireVendorProfile(vendor);
  const settings = profile.profile;
  const region = regionOf(settings);
  const base = { ...BASE, name: `profile:${vendor}`, region: region.name, profile: vendor };
  const source = String(settings.floating_ip_source ?? 'neutron').toLowerCase();
  if (region.networks.length > 0) {
    const networks: NetworkSeed[] = region.networks.map((n) => {
      const name = n.name ?? n.id ?? 'network';
      if (n.routes_externally && n.nat_source) return { name, kind: 'external', routed: true, shared: true };
      if (n.routes_externally) return { name, kind: 'tenant-public', shared: true };
      return { name, kind: 'tenant-private', shared: true, natDestination: n.nat_destination === true };
    });
    // A nat_source network is also booted on directly (limestone's "Public Internet" is a provider network).
    return { ...base, summary: `vendor profile ${vendor}: the networks its profile lists, with their flags`, networks };
  }
  if (source === 'none' || settings.requires_floating_ip === false) {
    return { ...base, summary: `vendor profile ${vendor}: floating_ip_source ${String(settings.floating_ip_source ?? 'neutron')}, requires_floating_ip ${String(settings.requires_floating_ip ?? 'unset')}: the tenant network routes externally`, networks: [{ name: 'public', kind: 'tenant-public', shared: true }], l3: source !== 'none' };
  }
  return { ...base, summary: `vendor profile ${vendor}: requires_floating_ip ${String(settings.requires_floating_ip ?? 'unset')}: a private tenant network and a routed floating IP pool`, networks: FIP_NETWORKS };
}
