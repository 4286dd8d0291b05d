/**
 * The Metal API's objects, as far as the driver reads them (the recorded shapes in
 * ../shared/fixtures/libcloud/equinixmetal/): devices with their `ip_addresses`, plans,
 * operating systems, metros, projects and SSH keys. Every field may be absent on an
 * API-compatible endpoint that answers less: the driver reads them defensively.
 *
 * @example
 *   const d: MetalDevice = { id: 'd-1', hostname: 'web-1', state: 'active', tags: [], ip_addresses: [] };
 */

/** An address of a device (`ip_addresses[]`). */
export interface MetalIpAddress {
  id?: string;
  address: string;
  address_family?: number;
  public?: boolean;
  management?: boolean;
  cidr?: number;
  gateway?: string;
  network?: string;
  netmask?: string;
}

/** A device (a bare-metal server). */
export interface MetalDevice {
  id: string;
  href?: string;
  hostname?: string;
  state?: string;
  tags?: string[];
  customdata?: Record<string, unknown> | null;
  plan?: { id?: string; slug?: string; name?: string } | null;
  operating_system?: { slug?: string; distro?: string; version?: string; name?: string } | null;
  metro?: { id?: string; code?: string; name?: string } | null;
  facility?: { id?: string; code?: string; name?: string } | null;
  ip_addresses?: MetalIpAddress[];
  user?: string;
  created_at?: string;
}

/** A plan (a size). */
export interface MetalPlan {
  id?: string;
  slug: string;
  name?: string;
  line?: string;
  specs?: { cpus?: { count?: number; type?: string }[]; memory?: { total?: string }; drives?: { count?: number; size?: string; type?: string }[] };
  pricing?: { hour?: number; hourly?: number; monthly?: number };
  available_in_metros?: { href?: string; code?: string }[];
}

/** An operating system (an image). */
export interface MetalOperatingSystem {
  id?: string;
  slug: string;
  name?: string;
  distro?: string;
  version?: string;
  provisionable_on?: string[];
}

/** A metro (where devices are made). */
export interface MetalMetro {
  id?: string;
  code: string;
  name?: string;
  country?: string;
}

/** A project SSH key. */
export interface MetalSshKey {
  id: string;
  label?: string;
  key?: string;
  fingerprint?: string;
  href?: string;
}

/** A project. */
export interface MetalProject {
  id: string;
  name?: string;
}
