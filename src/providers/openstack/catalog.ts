/**
 * The cloud's catalog in the normalized shapes the catalog (../catalog/) chooses among:
 * flavors as sizes (by resources; a flavor with no local disk boots any disk request), active
 * images with their Glance properties (`os_distro`, `os_version`, `os_admin_user`), and the
 * choice made here when a create comes without the catalog's (a default of `small` and
 * `debian-12`, as the contract's plain creates ask).
 *
 * @example
 *   const sizes = await listSizes(client); // [{ nativeId: '1', name: 'm1.tiny', cpus: 1, ramMiB: 512, diskGiB: 1 }, …]
 */
import { bootChoice as sharedBootChoice, type BootChoice } from '../catalog/index.js';
import type { CatalogImage, CatalogSize, MachineSpec, ProviderContext } from '../provider.js';
import { imageProperties } from './client/glance.js';
import type { OpenStackClient } from './client/index.js';

/**
 * Every flavor as a size.
 *
 * @example
 *   (await listSizes(client)).find((s) => s.ramMiB >= 2048);
 */
export async function listSizes(client: OpenStackClient): Promise<CatalogSize[]> {
  return (await client.compute.listFlavors()).map((f) => ({ nativeId: f.id, name: f.name, cpus: f.vcpus, ramMiB: f.ram, ...(f.disk > 0 ? { diskGiB: f.disk } : {}) }));
}

/**
 * Every active image, with its properties.
 *
 * @example
 *   (await listImages(client)).filter((i) => i.properties.os_distro === 'debian');
 */
export async function listImages(client: OpenStackClient): Promise<CatalogImage[]> {
  return (await client.image.listImages({ status: 'active' })).map((i) => {
    const properties = imageProperties(i);
    return {
      nativeId: i.id,
      name: i.name ?? i.id,
      ...(properties.os_distro ? { osFamily: properties.os_distro.toLowerCase() } : {}),
      ...(properties.os_version ? { osVersion: properties.os_version } : {}),
      properties,
      ...(typeof i.owner === 'string' ? { owner: i.owner } : {}),
      ...(typeof i.created_at === 'string' ? { createdAt: i.created_at } : {}),
    };
  });
}


/** What to boot (catalog/index.ts `bootChoice`, on this cloud's flavors and images). @example await bootChoice(client, spec, ctx); */
export function bootChoice(client: OpenStackClient, spec: MachineSpec, ctx: ProviderContext): Promise<BootChoice> {
  return sharedBootChoice(spec, ctx, 'openstack', { sizes: () => listSizes(client), images: () => listImages(client) });
}
