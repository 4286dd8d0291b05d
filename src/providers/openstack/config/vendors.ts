/**
 * Vendor profiles: openstacksdk's, shipped in ../vendors (see its NOTICE.md), and users'
 * own in the same format (a `clouds-public.yaml`'s `public-clouds`, or files). Each is
 * validated against openstacksdk's vendor-schema.json and checked for what that schema
 * lets through: a profile that only names a URL (`ovh`, `vexxhost`), a misspelled key
 * (`ultimum`'s `region-name`), an `auth_url` without a scheme (`otc-swiss`), a cloud that
 * is deprecated or has shut down. Problems that make a profile unusable are `errors`;
 * the rest are `warnings`, shown with the cloud's config. Nothing here throws on a bad
 * profile: `requireVendorProfile` turns errors into one clear FormworkError.
 *
 * @example
 *   const check = checkVendorProfile(SHIPPED_VENDOR_PROFILES.betacloud, 'betacloud');
 *   check.errors; // ['vendor profile "betacloud": the cloud has shut down (betacloud.de has ceased business); choose another cloud']
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { FormworkError } from '../../../core/errors.js';
import { schemaAjv } from '../../../core/schema.js';
import vendorSchema from '../vendors/vendor-schema.json' with { type: 'json' };
import { SHIPPED_VENDOR_PROFILES } from '../vendors/index.js';
import { normalizeKeys } from './keys.js';

/** A usable vendor profile: its name, settings (keys normalized), status and where it came from. */
export interface VendorProfile {
  name: string;
  profile: Record<string, unknown>;
  status: 'active' | 'deprecated' | 'shutdown';
  message?: string;
  /** Only a URL to fetch the profile from: nothing to merge. */
  partial: boolean;
  source: string;
}

/** The outcome of checking one profile: the profile when it has no errors, and what was found. */
export interface ProfileCheck {
  profile?: VendorProfile;
  errors: string[];
  warnings: string[];
}

// draft-04's `id` and `$schema` are left out: ajv speaks later drafts, and the schema uses nothing draft-04-only.
const { $schema: _draft, id: _id, ...schemaBody } = vendorSchema as Record<string, unknown>;
let validateProfile: ReturnType<ReturnType<typeof schemaAjv>['compile']> | undefined;

/**
 * Checks one profile document (as parsed from its JSON or YAML file).
 *
 * @example
 *   checkVendorProfile({ name: 'mine', profile: { auth: { auth_url: 'https://keystone.example.com/v3' }, regions: ['r1'] } }, 'mine.yaml').errors; // []
 */
export function checkVendorProfile(doc: unknown, source: string): ProfileCheck {
  validateProfile ??= schemaAjv('values').compile(schemaBody);
  const label = `vendor profile "${doc && typeof doc === 'object' && typeof (doc as { name?: unknown }).name === 'string' ? (doc as { name: string }).name : source}"`;
  if (!validateProfile(doc)) {
    const problems = (validateProfile.errors ?? []).map((e) => `${e.instancePath || '(document)'} ${e.message ?? 'is invalid'}`).join('; ');
    return { errors: [`${label} (${source}) does not match openstacksdk's vendor schema: ${problems}`], warnings: [] };
  }
  const d = doc as { name: string; profile: Record<string, unknown> };
  const { value: profile, warnings } = normalizeKeys(d.profile, label);
  const errors: string[] = [];
  const status = (profile.status as VendorProfile['status'] | undefined) ?? 'active';
  const message = typeof profile.message === 'string' && profile.message ? profile.message : undefined;
  const partial = typeof profile.profile === 'string' && Object.keys(profile).every((k) => k === 'profile' || k === 'status' || k === 'message');
  if (status === 'shutdown') errors.push(`${label}: the cloud has shut down${message ? ` (${message})` : ''}; choose another cloud`);
  if (status === 'deprecated') warnings.push(`${label}: the cloud is deprecated${message ? ` (${message})` : ''}; it may stop answering`);
  if (partial) warnings.push(`${label} only points to ${String(profile.profile)}, where openstacksdk fetches the real profile at run time; Formwork does not fetch profiles, so clouds.yaml must give auth.auth_url and region_name (from the cloud's documentation)`);
  const authUrl = (profile.auth as { auth_url?: unknown } | undefined)?.auth_url;
  if (typeof authUrl === 'string' && !/^https?:\/\//.test(authUrl)) warnings.push(`${label}: auth_url "${authUrl}" has no scheme; set auth.auth_url to https://${authUrl} in clouds.yaml`);
  if (typeof profile.identity_api_version === 'string' && profile.identity_api_version.startsWith('2')) warnings.push(`${label}: the cloud speaks Keystone v${profile.identity_api_version}; Formwork speaks v3 only`);
  if (errors.length > 0) return { errors, warnings };
  return { profile: { name: d.name, profile, status, message, partial, source }, errors, warnings };
}

/**
 * The names of the shipped profiles.
 *
 * @example
 *   shippedVendorNames(); // ['auro', 'betacloud', …, 'zetta']
 */
export function shippedVendorNames(): string[] {
  return Object.keys(SHIPPED_VENDOR_PROFILES).sort();
}

/**
 * Reads a user's profile file (JSON or YAML, in the shipped format) and checks it.
 * A file that cannot be read or parsed is an error in the result, not a throw.
 *
 * @example
 *   const { profile, errors } = await loadVendorProfileFile('/etc/openstack/vendors/mycloud.yaml');
 */
export async function loadVendorProfileFile(path: string): Promise<ProfileCheck> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(path, 'utf8')); // YAML reads JSON too
  } catch (e) {
    return { errors: [`vendor profile file ${path} cannot be read: ${e instanceof Error ? e.message : String(e)}`], warnings: [] };
  }
  return checkVendorProfile(doc, path);
}

/**
 * The profile named `name`: a user's (by name, in `userProfiles`: `public-clouds` of
 * clouds-public.yaml, each `{ name?, profile }` or the profile's settings alone) before a
 * shipped one. Unknown names and profiles with errors are refused with PROVIDER_INVALID
 * naming what to do.
 *
 * @example
 *   const { profile, warnings } = requireVendorProfile('auro');
 */
export function requireVendorProfile(name: string, userProfiles: Record<string, unknown> = {}): { profile: VendorProfile; warnings: string[] } {
  let check: ProfileCheck;
  if (name in userProfiles) {
    const raw = userProfiles[name];
    const doc = raw && typeof raw === 'object' && 'profile' in raw && typeof (raw as { profile: unknown }).profile === 'object' ? { name, ...(raw as object) } : { name, profile: raw };
    check = checkVendorProfile(doc, `your profile "${name}"`);
  } else if (name in SHIPPED_VENDOR_PROFILES) {
    check = checkVendorProfile(SHIPPED_VENDOR_PROFILES[name], `openstacksdk's ${name}`);
  } else {
    const known = [...Object.keys(userProfiles), ...shippedVendorNames()].join(', ');
    throw new FormworkError('PROVIDER_INVALID', `no vendor profile is named "${name}"; known profiles: ${known}. Fix \`profile:\` in clouds.yaml, or add your own profile under public-clouds in clouds-public.yaml`, { profile: name });
  }
  if (!check.profile) throw new FormworkError('PROVIDER_INVALID', check.errors.join('; '), { profile: name, errors: check.errors });
  return { profile: check.profile, warnings: check.warnings };
}
