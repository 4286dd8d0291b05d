/**
 * Compute Engine's catalog in the normalized shapes: machine types of the zone as sizes
 * (`guestCpus`, `memoryMb`; disks are sized at boot, so no disk), the READY and not
 * deprecated images of the public image projects (`debian-cloud`, `ubuntu-os-cloud`, or
 * `settings.imageProjects`) and of the project itself, read by their `family`
 * (`debian-12` → debian 12, `ubuntu-2204-lts` → ubuntu 22.04), zones and networks; and the
 * choice made here when a create comes without the catalog's.
 *
 * An image's native id is its project path (`projects/debian-cloud/global/images/debian-12-bookworm-v20240110`),
 * which the insert takes as `sourceImage`.
 *
 * @example
 *   (await listImages(api, ctx)).find((i) => i.osFamily === 'debian' && i.osVersion === '12');
 */
import { bootChoice as sharedBootChoice, type BootChoice } from '../catalog/index.js';
import type { CatalogImage, CatalogNetwork, CatalogSize, CatalogZone, MachineSpec, ProviderCheckContext } from '../provider.js';
import { lastSegment, type GceApi } from './api.js';

/** The public image projects searched by default. */
export const DEFAULT_IMAGE_PROJECTS = ['debian-cloud', 'ubuntu-os-cloud'];

interface GceImage {
  name: string;
  id?: string;
  family?: string;
  status?: string;
  creationTimestamp?: string;
  description?: string;
  labels?: Record<string, string>;
  deprecated?: { state?: string };
}

/**
 * The zone's machine types as sizes.
 *
 * @example
 *   await listSizes(api); // [{ nativeId: 'e2-small', cpus: 2, ramMiB: 2048, zones: ['us-central1-a'] }, …]
 */
export async function listSizes(api: GceApi): Promise<CatalogSize[]> {
  const types = await api.list<{ name: string; guestCpus: number; memoryMb: number; zone?: string; deprecated?: { state?: string } }>(`zones/${api.zone}/machineTypes`, {}, 'machineTypes.list');
  return types.filter((t) => !t.deprecated?.state || t.deprecated.state === 'ACTIVE').map((t) => ({ nativeId: t.name, cpus: t.guestCpus, ramMiB: t.memoryMb, zones: [api.zone] }));
}

/**
 * OS family and version of an image family: `debian-12` → debian 12, `ubuntu-2204-lts` → ubuntu 22.04.
 *
 * @example
 *   familyOs('ubuntu-2404-lts-amd64'); // { family: 'ubuntu', version: '24.04' }
 */
export function familyOs(family: string | undefined): { family: string; version?: string } | undefined {
  const m = family ? /^([a-z]+(?:-[a-z]+)*?)-(\d+)(?:-|$)/.exec(family) : null;
  if (!m) return undefined;
  const [, fam, ver] = m as unknown as [string, string, string];
  if (fam === 'ubuntu' && /^\d{4}$/.test(ver)) return { family: fam, version: `${ver.slice(0, 2)}.${ver.slice(2)}` };
  return { family: fam, version: ver };
}

/**
 * The images machines can boot from (see the file's comment).
 *
 * @example
 *   (await listImages(api, ctx)).map((i) => i.nativeId);
 */
export async function listImages(api: GceApi, ctx: Pick<ProviderCheckContext, 'settings'>): Promise<CatalogImage[]> {
  const projects = Array.isArray(ctx.settings.imageProjects) ? (ctx.settings.imageProjects as string[]) : DEFAULT_IMAGE_PROJECTS;
  const all = await Promise.all([...new Set([...projects, api.project])].map(async (p) => ({ p, images: await api.list<GceImage>(`projects/${encodeURIComponent(p)}/global/images`, {}, 'images.list').catch(() => [] as GceImage[]) })));
  return all.flatMap(({ p, images }) =>
    images
      .filter((i) => (i.status ?? 'READY') === 'READY' && (!i.deprecated?.state || i.deprecated.state === 'ACTIVE'))
      .map((i) => {
        const os = familyOs(i.family);
        const properties: Record<string, string> = { ...(i.labels ?? {}), ...(i.family ? { family: i.family } : {}) };
        return {
          nativeId: `projects/${p}/global/images/${i.name}`,
          name: i.name,
          ...(os ? { osFamily: os.family, ...(os.version ? { osVersion: os.version } : {}) } : {}),
          properties,
          owner: p,
          ...(i.creationTimestamp ? { createdAt: new Date(i.creationTimestamp).toISOString() } : {}),
        };
      }),
  );
}

/**
 * The zones of the project, the configured zone's region first.
 *
 * @example
 *   await listZones(api); // [{ name: 'us-central1-a', region: 'us-central1', available: true }, …]
 */
export async function listZones(api: GceApi): Promise<CatalogZone[]> {
  const zones = await api.list<{ name: string; region?: string; status?: string }>('zones', {}, 'zones.list');
  return zones.map((z) => ({ name: z.name, ...(z.region ? { region: lastSegment(z.region) } : {}), available: z.status === 'UP' }));
}

/**
 * The project's VPC networks, the one machines boot on flagged `default_interface`.
 *
 * @example
 *   await listNetworks(api, ctx); // [{ id: '123', name: 'default', flags: { default_interface: true }, evidence: ['settings.network (default "default")'] }]
 */
export async function listNetworks(api: GceApi, ctx: Pick<ProviderCheckContext, 'settings'>): Promise<CatalogNetwork[]> {
  const boot = networkName(ctx);
  const nets = await api.list<{ id: string; name: string; autoCreateSubnetworks?: boolean }>('global/networks', {}, 'networks.list');
  return nets.map((n): CatalogNetwork => (n.name === boot ? { id: String(n.id), name: n.name, flags: { default_interface: true }, evidence: [`settings.network${ctx.settings.network ? '' : ' (default "default")'}`] } : { id: String(n.id), name: n.name, flags: {}, evidence: [] }));
}

/**
 * The network machines boot on: `settings.network`, else `default`.
 *
 * @example
 *   networkName({ settings: {} }); // 'default'
 */
export function networkName(ctx: Pick<ProviderCheckContext, 'settings'>): string {
  return typeof ctx.settings.network === 'string' && ctx.settings.network ? ctx.settings.network : 'default';
}


/** What to boot (catalog/index.ts `bootChoice`, on the zone's machine types and the images). @example await bootChoice(api, spec, ctx); */
export function bootChoice(api: GceApi, spec: MachineSpec, ctx: ProviderCheckContext): Promise<BootChoice> {
  return sharedBootChoice(spec, ctx, 'gce', { sizes: () => listSizes(api), images: () => listImages(api, ctx), zone: api.zone });
}
