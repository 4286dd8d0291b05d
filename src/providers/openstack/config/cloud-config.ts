/**
 * One cloud's configuration, resolved as openstacksdk resolves it: the clouds.yaml entry
 * with its secure.yaml counterpart merged in, over its vendor profile (`profile:`), over
 * openstacksdk's defaults; then the region chosen and its per-region values applied, and
 * `{region_name}` filled into URLs. The result is what a session needs (auth, region,
 * interface, endpoint overrides) plus what the driver decides by (floating IP source,
 * per-network flags), and the warnings met on the way.
 *
 * Everything that cannot work is refused here with PROVIDER_INVALID naming the file, the
 * cloud and the fix: an unknown cloud (listing the known ones), a region the profile does
 * not have, no auth_url, a URL without a scheme, an auth type Formwork does not speak.
 * Secrets are never quoted, only the names of their keys.
 *
 * @example
 *   const config = await loadCloudConfig('mycloud', { env: process.env, cwd: process.cwd(), home: os.homedir() });
 *   const client = createOpenStackClient({ auth: config.auth, region: config.region, interface: config.interface, endpointOverrides: config.endpointOverrides });
 */
import { FormworkError } from '../../../core/errors.js';
import type { AuthOptions } from '../client/keystone.js';
import { readConfigFiles, type ConfigLocations } from './files.js';
import { normalizeKeys } from './keys.js';
import { requireVendorProfile, type VendorProfile } from './vendors.js';

/** A network's flags from a profile or clouds.yaml (openstacksdk's `networks:` list). */
export interface NetworkSetting {
  name?: string;
  id?: string;
  routes_externally?: boolean;
  routes_ipv4_externally?: boolean;
  routes_ipv6_externally?: boolean;
  nat_destination?: boolean;
  nat_source?: boolean;
  default_interface?: boolean;
}

/** A resolved cloud. */
export interface CloudConfig {
  cloud: string;
  auth: AuthOptions;
  region?: string;
  interface: 'public' | 'internal' | 'admin';
  endpointOverrides: Record<string, string>;
  vendor?: string;
  floatingIpSource: 'neutron' | 'nova' | 'None';
  requiresFloatingIp: boolean | null;
  secgroupSource: 'neutron' | 'nova' | 'None';
  networks: NetworkSetting[];
  /** Every setting after merging, for what the typed fields leave out. */
  settings: Record<string, unknown>;
  warnings: string[];
}

/** openstacksdk's defaults.json, the parts that matter here. */
const DEFAULTS: Record<string, unknown> = { auth_type: 'password', interface: 'public', floating_ip_source: 'neutron', secgroup_source: 'neutron' };

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * `over` merged onto `base`, nested mappings merged key by key (lists replaced).
 *
 * @example
 *   deepMerge({ auth: { auth_url: 'u' } }, { auth: { username: 'me' } }); // { auth: { auth_url: 'u', username: 'me' } }
 */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

function invalid(where: string, message: string, details: Record<string, unknown> = {}): FormworkError {
  return new FormworkError('PROVIDER_INVALID', `${where}: ${message}`, details);
}

/** The regions a profile or entry lists, each with its per-region values. */
function regionsOf(settings: Record<string, unknown>): { name: string; values: Record<string, unknown> }[] {
  const raw = Array.isArray(settings.regions) ? settings.regions : [];
  return raw.flatMap((r) => (typeof r === 'string' ? [{ name: r, values: {} }] : isObject(r) && typeof r.name === 'string' ? [{ name: r.name, values: isObject(r.values) ? r.values : {} }] : []));
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/**
 * The AuthOptions an `auth` block and `auth_type` describe.
 *
 * @example
 *   authOptions({ auth_url: 'https://k/v3', application_credential_id: 'a', application_credential_secret: 's' }, 'v3applicationcredential', 'cloud "x"');
 */
export function authOptions(auth: Record<string, unknown>, authType: string, where: string): AuthOptions {
  const authUrl = str(auth.auth_url);
  if (!authUrl) throw invalid(where, 'no auth.auth_url: give the Keystone URL of the cloud (its documentation or dashboard names it, often ending in /v3)');
  if (!/^https?:\/\//.test(authUrl)) throw invalid(where, `auth.auth_url "${authUrl}" has no scheme: write https://${authUrl}`, { authUrl });
  const scope = {
    projectId: str(auth.project_id) ?? str(auth.tenant_id),
    projectName: str(auth.project_name) ?? str(auth.tenant_name),
    projectDomainId: str(auth.project_domain_id),
    projectDomainName: str(auth.project_domain_name),
    domainId: str(auth.domain_id),
    domainName: str(auth.domain_name),
    system: auth.system_scope === 'all' ? true : undefined,
  };
  const user = {
    userId: str(auth.user_id),
    username: str(auth.username) ?? str(auth.user_name),
    userDomainId: str(auth.user_domain_id) ?? str(auth.domain_id),
    userDomainName: str(auth.user_domain_name) ?? str(auth.domain_name),
  };
  const type = authType.replace(/^v3/, '').replace(/-/g, '_');
  if (type === 'password') {
    const password = str(auth.password);
    if (!password) throw invalid(where, 'no auth.password: put it in secure.yaml (or the provider\'s Secret), or use an application credential');
    return { method: 'password', authUrl, ...user, ...scope, password };
  }
  if (type === 'applicationcredential' || type === 'application_credential') {
    const secret = str(auth.application_credential_secret);
    if (!secret) throw invalid(where, 'no auth.application_credential_secret: put it in secure.yaml or the provider\'s Secret');
    return { method: 'application_credential', authUrl, ...user, applicationCredentialId: str(auth.application_credential_id), applicationCredentialName: str(auth.application_credential_name), applicationCredentialSecret: secret };
  }
  if (type === 'token') {
    const token = str(auth.token);
    if (!token) throw invalid(where, 'no auth.token');
    return { method: 'token', authUrl, ...scope, token };
  }
  throw invalid(where, `auth_type "${authType}" is not one Formwork speaks: use password, v3applicationcredential or token`, { authType });
}

/** What resolving a cloud entry needs besides the entry itself. */
export interface ResolveOptions {
  /** The region to use, overriding the entry's `region_name`. */
  region?: string;
  /** Users' own profiles by name (clouds-public.yaml's `public-clouds`). */
  userProfiles?: Record<string, unknown>;
  /** Where the entry came from, for messages (default `cloud "<name>"`). */
  where?: string;
}

/**
 * Resolves one cloud entry (a clouds.yaml `clouds.<name>` mapping with secure.yaml merged,
 * or the same block written inline in a provider's settings).
 *
 * @example
 *   resolveCloudEntry('lab', { profile: 'auro', auth: { username: 'me', password: 'pw', project_name: 'p' } }).auth.authUrl; // 'https://api.van2.auro.io:5000/v3'
 */
export function resolveCloudEntry(name: string, entry: Record<string, unknown>, opts: ResolveOptions = {}): CloudConfig {
  const where = opts.where ?? `cloud "${name}"`;
  const { value: own, warnings } = normalizeKeys(entry, where);
  const profileName = str(own.profile) ?? str(own.cloud);
  let vendor: VendorProfile | undefined;
  if (profileName) {
    const found = requireVendorProfile(profileName, opts.userProfiles);
    vendor = found.profile;
    warnings.push(...found.warnings);
  }
  const { profile: _ignored, cloud: _alsoIgnored, ...ownSettings } = own;
  const vendorSettings = vendor && !vendor.partial ? vendor.profile : {};
  let settings = deepMerge(deepMerge(DEFAULTS, vendorSettings), ownSettings);

  const regions = regionsOf(settings);
  let region = opts.region ?? str(own.region_name) ?? str(vendorSettings.region_name);
  if (region && regions.length > 0 && !regions.some((r) => r.name === region)) {
    throw invalid(where, `region "${region}" is not one of the cloud's regions (${regions.map((r) => r.name).join(', ')}); set region_name to one of them`, { region, regions: regions.map((r) => r.name) });
  }
  if (!region && regions.length > 0) {
    region = regions[0].name;
    if (regions.length > 1) warnings.push(`${where}: no region_name given; using "${region}", the first of ${regions.map((r) => r.name).join(', ')}`);
  }
  const regionValues = regions.find((r) => r.name === region)?.values;
  if (regionValues) settings = deepMerge(settings, regionValues);
  const fill = (v: string) => v.replaceAll('{region_name}', region ?? '');
  const auth = isObject(settings.auth) ? { ...settings.auth } : {};
  if (typeof auth.auth_url === 'string') auth.auth_url = fill(auth.auth_url);
  if (!str(auth.auth_url) && vendor?.partial) throw invalid(where, `no auth.auth_url, and vendor profile "${vendor.name}" only points to ${String(vendor.profile.profile)} (Formwork does not fetch profiles): give auth.auth_url and region_name in clouds.yaml`, { profile: vendor.name });
  const identityVersion = str(settings.identity_api_version);
  if (identityVersion?.startsWith('2')) throw invalid(where, `identity_api_version is ${identityVersion}: Formwork speaks Keystone v3 only; use the cloud's v3 endpoint and set identity_api_version: 3`);

  let authType = str(settings.auth_type) ?? 'password';
  if (!str(own.auth_type) && auth.application_credential_secret && !auth.password) authType = 'v3applicationcredential';
  const endpointOverrides: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings)) {
    const m = /^(.+)_endpoint_override$/.exec(k);
    if (m && typeof v === 'string') endpointOverrides[m[1].replaceAll('_', '-')] = fill(v);
  }
  const iface = str(settings.interface) ?? 'public';
  if (!['public', 'internal', 'admin'].includes(iface)) throw invalid(where, `interface "${iface}" must be public, internal or admin`);
  return {
    cloud: name,
    auth: authOptions(auth, authType, where),
    region,
    interface: iface as CloudConfig['interface'],
    endpointOverrides,
    vendor: vendor?.name,
    floatingIpSource: (str(settings.floating_ip_source) ?? 'neutron') as CloudConfig['floatingIpSource'],
    requiresFloatingIp: typeof settings.requires_floating_ip === 'boolean' ? settings.requires_floating_ip : null,
    secgroupSource: (str(settings.secgroup_source) ?? 'neutron') as CloudConfig['secgroupSource'],
    networks: Array.isArray(settings.networks) ? (settings.networks as NetworkSetting[]) : [],
    settings,
    warnings,
  };
}

/**
 * Resolves the cloud named `name` from clouds.yaml (with secure.yaml and users' profiles
 * in clouds-public.yaml), found where openstacksdk looks.
 *
 * @example
 *   await loadCloudConfig('prod', { env: { OS_CLIENT_CONFIG_FILE: '/etc/formwork/clouds.yaml' } });
 */
export async function loadCloudConfig(name: string, loc: ConfigLocations, opts: Omit<ResolveOptions, 'where'> = {}): Promise<CloudConfig> {
  const files = await readConfigFiles(loc);
  if (!files.clouds) throw new FormworkError('PROVIDER_INVALID', `cloud "${name}": no clouds.yaml found (looked at ${files.searched.join(', ')}); write one, or set OS_CLIENT_CONFIG_FILE to it`, { cloud: name, searched: files.searched });
  const clouds = isObject(files.clouds.doc.clouds) ? files.clouds.doc.clouds : {};
  const entry = clouds[name];
  if (!isObject(entry)) {
    const known = Object.keys(clouds);
    throw new FormworkError('PROVIDER_INVALID', `${files.clouds.path} has no cloud "${name}"${known.length ? `; its clouds are: ${known.join(', ')}` : ' (it lists no clouds under `clouds:`)'}`, { cloud: name, file: files.clouds.path, known });
  }
  const secureClouds = files.secure && isObject(files.secure.doc.clouds) ? files.secure.doc.clouds : {};
  const merged = isObject(secureClouds[name]) ? deepMerge(entry, secureClouds[name] as Record<string, unknown>) : entry;
  const publicClouds = files.publicClouds && isObject(files.publicClouds.doc['public-clouds']) ? (files.publicClouds.doc['public-clouds'] as Record<string, unknown>) : {};
  return resolveCloudEntry(name, merged, { ...opts, userProfiles: { ...publicClouds, ...opts.userProfiles }, where: `cloud "${name}" (${files.clouds.path})` });
}
