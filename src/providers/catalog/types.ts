/**
 * The normalized shapes of a provider's catalog, whatever the cloud: what a driver's
 * `listSizes`, `listImages`, `listNetworks`, `listZones` and `listOwned` return, and what the
 * catalog (sizes.ts, images.ts, login-users.ts) chooses among.
 *
 * @example
 *   const s: CatalogSize = { nativeId: 't3.small', cpus: 2, ramMiB: 2048, price: 0.0208 };
 *   const i: CatalogImage = { nativeId: 'ami-0a1b', name: 'debian-12-amd64-20250101', osFamily: 'debian', osVersion: '12', properties: {}, owner: '136693071363' };
 */

/** A size asked for by shape: at least this many CPUs, MiB of RAM and GiB of disk. @example { cpus: 2, ramMiB: 4096, diskGiB: 20 } */
export interface ShapeRequest {
  cpus: number;
  ramMiB: number;
  diskGiB?: number;
}

/** A native size (instance type, flavor, plan). @example { nativeId: 'm1.small', cpus: 1, ramMiB: 2048, diskGiB: 20 } */
export interface CatalogSize {
  /** The provider's id (`t3.small`, a flavor uuid, `c3.small.x86`). */
  nativeId: string;
  /** Its display name when it differs from the id (a flavor's name). */
  name?: string;
  cpus: number;
  ramMiB: number;
  /**
   * Local disk in GiB. Absent: the disk is block storage sized at boot (EC2, GCE), so any disk
   * request is met.
   */
  diskGiB?: number;
  /** Price per hour in the provider's currency, when the API says. */
  price?: number;
  /** The zones it is offered in; absent: all. */
  zones?: string[];
}

/** An image machines can boot from, with its metadata. @example { nativeId: 'img-1', name: 'Debian 12', properties: { os_distro: 'debian', os_version: '12' } } */
export interface CatalogImage {
  nativeId: string;
  name: string;
  /** Lower case OS family (`debian`, `ubuntu`, `rhel`), when the driver knows it. */
  osFamily?: string;
  /** The OS version as the provider gives it (`12`, `24.04`). */
  osVersion?: string;
  /** The image's metadata (Glance properties `os_distro`, `os_version`, `os_admin_user`; labels). */
  properties: Record<string, string>;
  /** The owning account or project (an AMI owner id, a GCE image project). */
  owner?: string;
  /** The region it lives in, when images are regional. */
  region?: string;
  /** When it was made (ISO 8601): the newest of several matches wins. */
  createdAt?: string;
}

/** A network and the evidence of what it is. @example { id: 'n-1', name: 'ext', flags: { external: true }, evidence: ['router:external=true'] } */
export interface CatalogNetwork {
  id: string;
  name: string;
  /** What the API or the configuration says of it (`external`, `routes_externally`, `nat_destination`, `default_interface`, `maps_public_ip`). */
  flags: Record<string, boolean>;
  /** Where each flag came from (`router:external=true`, `vendor profile routes_externally`). */
  evidence: string[];
}

/** A zone (availability zone, metro). @example { name: 'eu-west-1a', region: 'eu-west-1', available: true } */
export interface CatalogZone {
  name: string;
  region?: string;
  /** False when the provider says it takes no new machines. */
  available: boolean;
}

/** A resource carrying Formwork's ownership tags, whatever its kind. @example { kind: 'address', id: 'eipalloc-0a1b', tags: { 'formwork.io/node-id': 'n-1' } } */
export interface OwnedResource {
  /** `machine`, `address`, `key-pair`, `security-group`, `firewall`, `port`, … */
  kind: string;
  /** The provider's id for it. */
  id: string;
  name?: string;
  /** Its tags, at least `formwork.io/provider`; `formwork.io/node-id` when it was made for one node. */
  tags: Record<string, string>;
}
