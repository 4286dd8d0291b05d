/**
 * The region's catalog in the normalized shapes the catalog (../catalog/) chooses among:
 * instance types as sizes (DescribeInstanceTypes: vCPUs, MiB; x86_64 only; EBS-backed, so
 * any disk request is met), the images of the official owners (Debian 136693071363, Canonical
 * 099720109477, Amazon) and of `settings.imageOwners`, with the OS family and version read
 * from their name (`debian-12-amd64-*`, `ubuntu-jammy-22.04-*`, `al2023-ami-*`), the zones
 * and the subnets (with MapPublicIpOnLaunch as evidence); and what a create boots when it
 * comes without the catalog's choice (`small` and `debian-12`).
 *
 * @example
 *   const sizes = await listSizes(ctx); // [{ nativeId: 't3.small', cpus: 2, ramMiB: 2048 }, …]
 */
import {
  DescribeAvailabilityZonesCommand, DescribeImagesCommand, DescribeInstanceTypesCommand, DescribeSubnetsCommand,
  type DescribeAvailabilityZonesCommandOutput, type DescribeImagesCommandOutput, type DescribeInstanceTypesCommandOutput, type DescribeSubnetsCommandOutput, type Filter, type Image,
} from '@aws-sdk/client-ec2';
import { bootChoice as sharedBootChoice, type BootChoice } from '../catalog/index.js';
import type { CatalogImage, CatalogNetwork, CatalogSize, CatalogZone, MachineSpec, ProviderContext } from '../provider.js';
import { ec2Call } from './client.js';
import { tagRecord } from './tags.js';

/** The official image owners and the names of their images worth listing. @example OFFICIAL_OWNERS.map((o) => o.owner); // ['136693071363', '099720109477', 'amazon'] */
export const OFFICIAL_OWNERS: readonly { owner: string; name: string; names: string[] }[] = [
  { owner: '136693071363', name: 'Debian', names: ['debian-*'] },
  { owner: '099720109477', name: 'Canonical', names: ['ubuntu/images/hvm-ssd*/ubuntu-*'] },
  { owner: 'amazon', name: 'Amazon', names: ['al2023-ami-*', 'amzn2-ami-hvm-*'] },
];

const UBUNTU_CODENAMES: Record<string, string> = { focal: '20.04', jammy: '22.04', noble: '24.04' };

/**
 * The OS family and version an official image's name says.
 *
 * @example
 *   osFromName('debian-12-amd64-20240717-1811'); // { osFamily: 'debian', osVersion: '12' }
 *   osFromName('al2023-ami-2023.5.20240701.0-kernel-6.1-x86_64'); // { osFamily: 'amazon', osVersion: '2023' }
 */
export function osFromName(name: string): { osFamily?: string; osVersion?: string } {
  let m = /^debian-(\d+)-/.exec(name);
  if (m) return { osFamily: 'debian', osVersion: m[1] };
  m = /ubuntu-([a-z]+)-(\d+\.\d+)-/.exec(name);
  if (m) return { osFamily: 'ubuntu', osVersion: m[2] };
  m = /ubuntu-([a-z]+)-/.exec(name);
  if (m && UBUNTU_CODENAMES[m[1]]) return { osFamily: 'ubuntu', osVersion: UBUNTU_CODENAMES[m[1]] };
  m = /^al(\d{4})-ami-/.exec(name);
  if (m) return { osFamily: 'amazon', osVersion: m[1] };
  if (/^amzn2-ami-/.test(name)) return { osFamily: 'amazon', osVersion: '2' };
  m = /^RHEL-(\d+(?:\.\d+)?)/.exec(name);
  if (m) return { osFamily: 'rhel', osVersion: m[1] };
  m = /^Rocky-(\d+)/.exec(name);
  if (m) return { osFamily: 'rocky', osVersion: m[1] };
  return {};
}

/**
 * Every x86_64 instance type as a size, page by page.
 *
 * @example
 *   (await listSizes(ctx)).find((s) => s.nativeId === 't3.small'); // { nativeId: 't3.small', cpus: 2, ramMiB: 2048 }
 */
export async function listSizes(ctx: ProviderContext): Promise<CatalogSize[]> {
  const out: CatalogSize[] = [];
  let token: string | undefined;
  do {
    const page = await ec2Call<DescribeInstanceTypesCommandOutput>(ctx, new DescribeInstanceTypesCommand({ Filters: [{ Name: 'processor-info.supported-architecture', Values: ['x86_64'] }], MaxResults: 100, ...(token ? { NextToken: token } : {}) }));
    for (const t of page.InstanceTypes ?? []) {
      if (t.InstanceType && t.VCpuInfo?.DefaultVCpus && t.MemoryInfo?.SizeInMiB) out.push({ nativeId: t.InstanceType, cpus: t.VCpuInfo.DefaultVCpus, ramMiB: t.MemoryInfo.SizeInMiB });
    }
    token = page.NextToken;
  } while (token);
  return out;
}

function toCatalogImage(i: Image, region: string): CatalogImage | undefined {
  if (!i.ImageId) return undefined;
  const name = i.Name ?? i.ImageId;
  const os = osFromName(name);
  const properties: Record<string, string> = {};
  if (i.Description) properties.description = i.Description;
  if (i.ImageOwnerAlias) properties.owner_alias = i.ImageOwnerAlias;
  if (i.Architecture) properties.architecture = i.Architecture;
  return { nativeId: i.ImageId, name, ...os, properties, ...(i.OwnerId ? { owner: i.OwnerId } : {}), region, ...(i.CreationDate ? { createdAt: i.CreationDate } : {}) };
}

/**
 * The available x86_64 images of the official owners (by their name patterns) and of `settings.imageOwners` (all).
 *
 * @example
 *   (await listImages(ctx)).filter((i) => i.osFamily === 'debian');
 */
export async function listImages(ctx: ProviderContext): Promise<CatalogImage[]> {
  const region = String(ctx.settings.region);
  const base: Filter[] = [{ Name: 'state', Values: ['available'] }, { Name: 'architecture', Values: ['x86_64'] }];
  const extra = Array.isArray(ctx.settings.imageOwners) ? (ctx.settings.imageOwners as string[]) : [];
  const queries = [
    ...OFFICIAL_OWNERS.map((o) => ({ Owners: [o.owner], Filters: [...base, { Name: 'name', Values: o.names }] })),
    ...(extra.length ? [{ Owners: extra, Filters: base }] : []),
  ];
  const pages = await Promise.all(queries.map((q) => ec2Call<DescribeImagesCommandOutput>(ctx, new DescribeImagesCommand(q))));
  const seen = new Set<string>();
  const out: CatalogImage[] = [];
  for (const img of pages.flatMap((p) => p.Images ?? [])) {
    const c = toCatalogImage(img, region);
    if (c && !seen.has(c.nativeId)) {
      seen.add(c.nativeId);
      out.push(c);
    }
  }
  return out;
}

/**
 * The region's zones.
 *
 * @example
 *   await listZones(ctx); // [{ name: 'us-east-1a', region: 'us-east-1', available: true }, …]
 */
export async function listZones(ctx: ProviderContext): Promise<CatalogZone[]> {
  const out = await ec2Call<DescribeAvailabilityZonesCommandOutput>(ctx, new DescribeAvailabilityZonesCommand({}));
  return (out.AvailabilityZones ?? []).filter((z) => z.ZoneName).map((z) => ({ name: z.ZoneName!, ...(z.RegionName ? { region: z.RegionName } : {}), available: z.State === 'available' }));
}

/**
 * The subnets, with the evidence of whether they map public IPs at launch.
 *
 * @example
 *   (await listNetworks(ctx))[0]; // { id: 'subnet-…', name: 'subnet-…', flags: { maps_public_ip: false, default_interface: true }, evidence: ['MapPublicIpOnLaunch=false', 'DefaultForAz=true'] }
 */
export async function listNetworks(ctx: ProviderContext): Promise<CatalogNetwork[]> {
  const out = await ec2Call<DescribeSubnetsCommandOutput>(ctx, new DescribeSubnetsCommand({}));
  return (out.Subnets ?? []).filter((s) => s.SubnetId).map((s) => ({
    id: s.SubnetId!,
    name: tagRecord(s.Tags).Name ?? s.SubnetId!,
    flags: { maps_public_ip: s.MapPublicIpOnLaunch === true, default_interface: s.DefaultForAz === true },
    evidence: [`MapPublicIpOnLaunch=${s.MapPublicIpOnLaunch === true}`, `DefaultForAz=${s.DefaultForAz === true}`, `VpcId=${s.VpcId}`, `AvailabilityZone=${s.AvailabilityZone}`],
  }));
}

/** The size, image and login users a create boots with. @example const { size, image } = await bootChoice(spec, ctx); // size.nativeId 't3.small' */

/** What to boot (catalog/index.ts `bootChoice`, on the region's instance types and images). @example await bootChoice(spec, ctx); */
export function bootChoice(spec: MachineSpec, ctx: ProviderContext): Promise<BootChoice> {
  return sharedBootChoice(spec, ctx, 'aws', { sizes: () => listSizes(ctx), images: () => listImages(ctx), zone: spec.zone });
}
