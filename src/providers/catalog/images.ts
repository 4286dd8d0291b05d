/**
 * Choosing a native image for a normalized request: an OS family and version (`debian-12`,
 * `ubuntu-24.04`) or a native id. `settings.images` maps a request to a native id (or, per
 * region, `{region: id}`) and wins; then a native id or exact name; then, among the images of
 * the region and of the allowed owners (`settings.imageOwners`), those whose metadata says
 * the family and version (`os_distro`/`os_version`, or what the driver read into
 * `osFamily`/`osVersion`), else those whose name matches the family and version (or its
 * codename). The newest match wins; the reason says which rule decided.
 *
 * @example
 *   chooseImage('debian-12', [{ nativeId: 'img-1', name: 'Debian 12', properties: { os_distro: 'debian', os_version: '12' } }], { providerName: 'os' });
 *   // { nativeId: 'img-1', normalized: 'debian-12', reason: 'properties os_distro=debian, os_version=12 (1 of 1 images)', image: {...} }
 */
import { FormworkError } from '../../core/errors.js';
import type { CatalogImage } from './types.js';

/** A chosen image and why. @example { nativeId: 'ami-0a1b', normalized: 'debian-12', reason: 'its name matches debian-12, owner 136693071363 (…)' } */
export interface ImageChoice {
  nativeId: string;
  normalized: string;
  reason: string;
  /** The image itself, when it was listed (its properties inform the login user). */
  image?: CatalogImage;
}

/** Where the image is chosen. @example { providerName: 'aws-eu', region: 'eu-west-1', owners: ['136693071363'] } */
export interface ChooseImageOptions {
  providerName: string;
  /** `settings.images`: request → native id, or → {region: native id}. */
  overrides?: Record<string, string | Record<string, string>>;
  region?: string;
  /** `settings.imageOwners`: only images of these owners (account ids, projects). */
  owners?: readonly string[];
}

/** Release codenames that image names use instead of versions. */
const CODENAMES: Readonly<Record<string, Record<string, string>>> = {
  debian: { '11': 'bullseye', '12': 'bookworm', '13': 'trixie' },
  ubuntu: { '20.04': 'focal', '22.04': 'jammy', '24.04': 'noble' },
};

/** Other spellings of a family in `os_distro` and image names. */
const FAMILY_ALIASES: Readonly<Record<string, string[]>> = {
  rhel: ['rhel', 'redhat', 'red-hat'],
  amazon: ['amazon', 'amzn', 'al'],
  opensuse: ['opensuse', 'suse', 'sles'],
};

/** Splits `debian-12` into family and version (`fedora-coreos-40` → fedora-coreos, 40); undefined when it is not that form. @example parseOsRequest('ubuntu-24.04'); // { family: 'ubuntu', version: '24.04' } */
export function parseOsRequest(request: string): { family: string; version?: string } | undefined {
  const m = /^([a-z][a-z-]*?)(?:-(\d[\w.]*))?$/i.exec(request.trim());
  return m ? { family: m[1]!.toLowerCase(), version: m[2] } : undefined;
}

/** Chooses the native image for `request` among `images`, or throws PROVIDER_INVALID naming what was asked, where it looked and the setting that fixes it. */
export function chooseImage(request: string, images: readonly CatalogImage[], opts: ChooseImageOptions): ImageChoice {
  const override = opts.overrides?.[request];
  const overrideId = typeof override === 'string' ? override : opts.region ? override?.[opts.region] : undefined;
  if (overrideId) {
    return { nativeId: overrideId, normalized: request, reason: `settings.images.${request}${typeof override === 'string' ? '' : `.${opts.region}`} of provider ${opts.providerName}`, image: images.find((i) => i.nativeId === overrideId) };
  }
  const native = images.find((i) => i.nativeId === request) ?? images.find((i) => i.name === request);
  if (native) return { nativeId: native.nativeId, normalized: request, reason: `the native image ${native.nativeId === request ? 'with id' : 'named'} ${request}`, image: native };

  const os = parseOsRequest(request);
  const inRegion = images.filter((i) => !opts.region || !i.region || i.region === opts.region);
  const candidates = opts.owners?.length ? inRegion.filter((i) => i.owner !== undefined && opts.owners!.includes(i.owner)) : inRegion;
  const tiers: Array<[string, (i: CatalogImage) => boolean]> = os
    ? [
        [`properties os_distro=${os.family}${os.version ? `, os_version=${os.version}` : ''}`, (i) => familyIs(i.properties.os_distro, os.family) && versionIs(i.properties.os_version, os.version)],
        [`the driver's OS family ${os.family}${os.version ? ` and version ${os.version}` : ''}`, (i) => familyIs(i.osFamily, os.family) && versionIs(i.osVersion, os.version)],
        [`its name matches ${request}`, (i) => nameMatches(i.name, os.family, os.version)],
      ]
    : [];
  for (const [rule, match] of tiers) {
    const found = candidates.filter(match);
    if (!found.length) continue;
    const newest = [...found].sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || b.name.localeCompare(a.name))[0]!;
    const owner = opts.owners?.length ? `, owner ${newest.owner}` : '';
    return { nativeId: newest.nativeId, normalized: request, reason: `${rule}${owner} (the newest of ${found.length} matching, among ${candidates.length} images)`, image: newest };
  }
  const where = [`${images.length} images of provider ${opts.providerName}`, opts.region ? `${inRegion.length} in region ${opts.region}` : '', opts.owners?.length ? `${candidates.length} of owners ${opts.owners.join(', ')}` : '']
    .filter(Boolean)
    .join(', ');
  const how = os ? 'by properties os_distro/os_version, OS family and name' : 'as a native id or name (it is not an OS family-version such as debian-12)';
  throw new FormworkError('PROVIDER_INVALID', `no image matches "${request}" ${how} among the ${where}; name a native image id, or map it in settings.images.${request}`, {
    image: request,
    provider: opts.providerName,
    candidates: candidates.length,
    setting: `settings.images.${request}`,
  }, { retryable: false });
}

function familyIs(value: string | undefined, family: string): boolean {
  if (!value) return false;
  const v = value.toLowerCase();
  return v === family || (FAMILY_ALIASES[family] ?? []).includes(v);
}

function versionIs(value: string | undefined, version: string | undefined): boolean {
  if (!version) return true;
  if (!value) return false;
  return value === version || value.startsWith(`${version}.`);
}

function nameMatches(name: string, family: string, version: string | undefined): boolean {
  const n = name.toLowerCase();
  const families = [family, ...(FAMILY_ALIASES[family] ?? [])].map(escape);
  const versions = version ? [escape(version), ...(CODENAMES[family]?.[version] ? [CODENAMES[family]![version]!] : [])] : [];
  // The family as a word, then (when asked) the version or codename as a word after it: `debian-12-amd64`, `Debian 12.4`, `ubuntu/images/hvm-ssd/ubuntu-noble-24.04`.
  const re = new RegExp(`(?<![a-z])(${families.join('|')})(?![a-z])${versions.length ? `.*?(?<![a-z0-9.])(${versions.join('|')})(?![0-9])` : ''}`);
  return re.test(n);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
