/**
 * The catalog: maps a node's normalized request (size, image) to what its provider offers,
 * with the reason for each choice, before the machine is made. Only for drivers that list
 * their catalog (`listSizes`, `listImages`); the others get the request as it was written.
 * Settings read (every driver's schema may allow them): `sizes`, `images`, `imageOwners`,
 * `region`, `zone`, `loginUser`, `loginUsers`.
 *
 * @example
 *   const { chosen, decisions } = await resolveCatalog(driver, spec, ctx, 'aws');
 *   chosen.size; // { nativeId: 't3.small', normalized: 'small', reason: 'the cheapest (0.0208/h) of 9 sizes meeting small (…)' }
 */
import type { NodeDecision } from '../../core/decisions.js';
import type { CatalogChoice, CatalogImage, CatalogSize, MachineSpec, ProviderCheckContext, ProviderContext, ProviderDriver } from '../provider.js';
import { chooseImage, parseOsRequest } from './images.js';
import { chooseLoginUsers } from './login-users.js';
import { chooseSize } from './sizes.js';

export { CATALOG_SIZES, chooseSize, shapeName, type SizeChoice } from './sizes.js';
export { chooseImage, parseOsRequest, type ImageChoice } from './images.js';
export { chooseLoginUsers, FALLBACK_LOGIN_USERS, LOGIN_USER_TABLES } from './login-users.js';

/** The catalog's choices for one machine. @example { chosen: { size: { nativeId: 't3.small', normalized: 'small', reason: '…' } }, decisions: [{ subject: 'size', chosen: 't3.small', reason: '…' }] } */
export interface CatalogResolution {
  chosen: CatalogChoice;
  /** The choices as node decisions (size, image), in that order. */
  decisions: NodeDecision[];
}

/** Chooses the native size and image for `spec` among what `driver` lists, and the login users to try. */
export async function resolveCatalog(driver: ProviderDriver, spec: MachineSpec, ctx: ProviderContext, providerType: string): Promise<CatalogResolution> {
  const s = ctx.settings;
  const chosen: CatalogChoice = {};
  const decisions: NodeDecision[] = [];
  const region = typeof s.region === 'string' ? s.region : undefined;
  const zone = spec.zone ?? (typeof s.zone === 'string' ? s.zone : undefined);
  if (spec.size !== undefined && driver.listSizes) {
    const size = chooseSize(spec.size, await driver.listSizes(ctx), { providerName: ctx.providerName, overrides: record(s.sizes) as Record<string, string>, zone });
    chosen.size = size;
    decisions.push({ subject: 'size', chosen: size.nativeId, reason: size.reason });
  }
  let image;
  if (spec.image !== undefined && driver.listImages) {
    image = chooseImage(spec.image, await driver.listImages(ctx), {
      providerName: ctx.providerName,
      overrides: record(s.images) as Record<string, string | Record<string, string>>,
      region,
      owners: Array.isArray(s.imageOwners) ? (s.imageOwners as string[]) : undefined,
    });
    chosen.image = { nativeId: image.nativeId, normalized: image.normalized, reason: image.reason };
    decisions.push({ subject: 'image', chosen: image.nativeId, reason: image.reason });
  }
  if (spec.image !== undefined || image) {
    const os = spec.image ? parseOsRequest(spec.image) : undefined;
    chosen.loginUsers = chooseLoginUsers({ providerType, image: image?.image, osFamily: os?.family, osVersion: os?.version, settings: s });
  }
  return { chosen, decisions };
}

/** The size, image and login users a driver's create boots with. */
export interface BootChoice {
  size: NonNullable<CatalogChoice['size']>;
  image: NonNullable<CatalogChoice['image']>;
  loginUsers: NonNullable<CatalogChoice['loginUsers']>;
}

/** Where a driver's `bootChoice` looks: its listings (called only when needed) and its zone. */
export interface BootListings {
  sizes(): Promise<CatalogSize[]>;
  images(): Promise<CatalogImage[]>;
  zone?: string;
}

/**
 * What a driver's create boots: the catalog's choice when provision made it (`spec.chosen`),
 * else chosen here the same way, from the request or `small` and `debian-12` when the spec
 * names none — so a create called directly (the contract suite, a bench) boots what
 * provision would have.
 *
 * @example
 *   const { size, image, loginUsers } = await bootChoice(spec, ctx, 'gce', { sizes: () => listSizes(api), images: () => listImages(api, ctx), zone: api.zone });
 */
export async function bootChoice(spec: MachineSpec, ctx: Pick<ProviderCheckContext, 'providerName' | 'settings'>, providerType: string, listings: BootListings): Promise<BootChoice> {
  const s = ctx.settings;
  const size = spec.chosen?.size ?? chooseSize(spec.size ?? 'small', await listings.sizes(), { providerName: ctx.providerName, overrides: record(s.sizes) as Record<string, string>, zone: listings.zone });
  let image = spec.chosen?.image;
  let listed: CatalogImage | undefined;
  if (!image) {
    const found = chooseImage(spec.image ?? 'debian-12', await listings.images(), {
      providerName: ctx.providerName,
      overrides: record(s.images) as Record<string, string | Record<string, string>>,
      region: typeof s.region === 'string' ? s.region : undefined,
      owners: Array.isArray(s.imageOwners) ? (s.imageOwners as string[]) : undefined,
    });
    image = { nativeId: found.nativeId, normalized: found.normalized, reason: found.reason };
    listed = found.image;
  }
  const loginUsers = spec.chosen?.loginUsers ?? chooseLoginUsers({ providerType, image: listed, settings: s });
  return { size, image, loginUsers };
}

/**
 * The settings the catalog and the readiness wait read, as JSON Schema properties: a cloud
 * driver's descriptor spreads them into its own settings schema, so every cloud is configured
 * alike (its own `region`, `zone`, endpoints beside them).
 *
 * @example
 *   settingsSchema: { type: 'object', additionalProperties: false, required: ['region'], properties: { region: { type: 'string' }, ...CATALOG_SETTINGS_PROPERTIES } }
 */
export const CATALOG_SETTINGS_PROPERTIES: Readonly<Record<string, Record<string, unknown>>> = {
  sizes: { type: 'object', additionalProperties: { type: 'string', minLength: 1 }, description: 'Catalog size name (small, medium, large, xlarge) → native size id; wins over the catalog' },
  images: {
    type: 'object',
    additionalProperties: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'object', additionalProperties: { type: 'string', minLength: 1 } }] },
    description: 'Image request (debian-12) → native image id, or → {region: native image id}; wins over the catalog',
  },
  imageOwners: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Only images of these owners (account ids, projects) are matched by OS family and version' },
  loginUser: { type: 'string', minLength: 1, description: 'The login user of every machine: tried first, before the image and the tables' },
  loginUsers: { type: 'object', additionalProperties: { type: 'string', minLength: 1 }, description: 'OS family (debian) → login user, over the provider type\'s table' },
  readinessTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, description: 'How long provision waits for a machine to boot and answer on TCP/22 once made reachable (default 900)' },
};

const record = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
