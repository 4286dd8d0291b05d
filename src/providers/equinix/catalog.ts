/**
 * The Metal catalog in the catalog's normalized shapes: plans as sizes (CPUs = the sum of
 * `specs.cpus[].count`; memory from `specs.memory.total` like "32GB"; disk from
 * `specs.drives[]`; the hourly price), operating systems as images (`distro`, `version`),
 * metros as zones; and
 * the choice made here when a create comes without the catalog's.
 *
 * @example
 *   parseMemory('32GB'); // 32768
 *   (await listSizes(api)).find((s) => s.nativeId === 'c3.small.x86');
 */
import { bootChoice as sharedBootChoice, type BootChoice } from '../catalog/index.js';
import type { CatalogImage, CatalogSize, CatalogZone, MachineSpec, ProviderContext } from '../provider.js';
import type { MetalApi } from './api.js';
import type { MetalMetro, MetalOperatingSystem, MetalPlan } from './wire.js';

const UNITS: Record<string, number> = { MB: 1, GB: 1024, TB: 1024 * 1024 };

/**
 * A Metal size text ("32GB", "2TB", "480 GB") in MiB; undefined when unreadable.
 *
 * @example
 *   parseMemory('2TB'); // 2097152
 */
export function parseMemory(text: string | undefined): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([MGT])B?\s*$/i.exec(text ?? '');
  return m ? Math.round(Number(m[1]) * UNITS[`${m[2].toUpperCase()}B`]) : undefined;
}

/**
 * A plan as a size; undefined when it says neither CPUs nor memory.
 *
 * @example
 *   planSize({ slug: 'c3.small.x86', specs: { cpus: [{ count: 1 }], memory: { total: '32GB' } } }); // { nativeId: 'c3.small.x86', cpus: 1, ramMiB: 32768, … }
 */
export function planSize(p: MetalPlan): CatalogSize | undefined {
  const cpus = (p.specs?.cpus ?? []).reduce((n, c) => n + (typeof c.count === 'number' ? c.count : 0), 0);
  const ramMiB = parseMemory(p.specs?.memory?.total);
  if (!p.slug || !cpus || !ramMiB) return undefined;
  const diskMiB = (p.specs?.drives ?? []).reduce((n, d) => n + (d.count ?? 1) * (parseMemory(d.size) ?? 0), 0);
  const price = p.pricing?.hour ?? p.pricing?.hourly;
  const metros = (p.available_in_metros ?? []).map((m) => m.code).filter((c): c is string => !!c);
  return {
    nativeId: p.slug,
    ...(p.name ? { name: p.name } : {}),
    cpus,
    ramMiB,
    ...(diskMiB ? { diskGiB: Math.floor(diskMiB / 1024) } : {}),
    ...(typeof price === 'number' ? { price } : {}),
    ...(metros.length ? { zones: metros } : {}),
  };
}

/**
 * Every plan as a size.
 *
 * @example
 *   await listSizes(api);
 */
export async function listSizes(api: MetalApi): Promise<CatalogSize[]> {
  const body = await api.get<{ plans?: MetalPlan[] }>('/plans', 'ListPlans');
  return (body?.plans ?? []).map(planSize).filter((s): s is CatalogSize => !!s);
}

/**
 * An operating system as an image (family = distro, version = version).
 *
 * @example
 *   osImage({ slug: 'debian_12', distro: 'debian', version: '12', name: 'Debian 12' }).osFamily; // 'debian'
 */
export function osImage(os: MetalOperatingSystem): CatalogImage {
  return {
    nativeId: os.slug,
    name: os.name ?? os.slug,
    ...(os.distro ? { osFamily: os.distro.toLowerCase() } : {}),
    ...(os.version ? { osVersion: os.version } : {}),
    properties: { ...(os.distro ? { os_distro: os.distro.toLowerCase() } : {}), ...(os.version ? { os_version: os.version } : {}) },
  };
}

/**
 * Every operating system as an image.
 *
 * @example
 *   (await listImages(api)).filter((i) => i.osFamily === 'debian');
 */
export async function listImages(api: MetalApi): Promise<CatalogImage[]> {
  const body = await api.get<{ operating_systems?: MetalOperatingSystem[] }>('/operating-systems', 'ListOperatingSystems');
  return (body?.operating_systems ?? []).filter((o) => typeof o?.slug === 'string').map(osImage);
}

/**
 * The metros (`/locations/metros`, else the older `/metros`).
 *
 * @example
 *   (await listMetros(api)).map((m) => m.code); // ['da', 'sv', …]
 */
export async function listMetros(api: MetalApi): Promise<MetalMetro[]> {
  const body = (await api.get<{ metros?: MetalMetro[] }>('/locations/metros', 'ListMetros')) ?? (await api.get<{ metros?: MetalMetro[] }>('/metros', 'ListMetros'));
  return (body?.metros ?? []).filter((m) => typeof m?.code === 'string');
}

/**
 * The metros as zones.
 *
 * @example
 *   await listZones(api); // [{ name: 'da', available: true }, …]
 */
export async function listZones(api: MetalApi): Promise<CatalogZone[]> {
  return (await listMetros(api)).map((m) => ({ name: m.code, available: true }));
}


/** What to make (catalog/index.ts `bootChoice`, on Metal's plans and operating systems). @example await bootChoice(api, spec, ctx); */
export function bootChoice(api: MetalApi, spec: MachineSpec, ctx: ProviderContext): Promise<BootChoice> {
  return sharedBootChoice(spec, ctx, 'equinix', { sizes: () => listSizes(api), images: () => listImages(api) });
}
