/**
 * The keys a clouds.yaml entry or a vendor profile may hold, and how misspelled ones are
 * read. openstacksdk reads `-` as `_` in every key (`region-name` is `region_name`), so
 * Formwork does too, and says so; any other unknown key is reported with the closest known
 * one, never silently dropped.
 *
 * @example
 *   normalizeKeys({ 'region-name': 'RegionOne' }, 'vendor profile "ultimum"');
 *   // { value: { region_name: 'RegionOne' }, warnings: ['vendor profile "ultimum": key "region-name" is read as "region_name" …'] }
 */
import vendorSchema from '../vendors/vendor-schema.json' with { type: 'json' };

/** Keys openstacksdk knows beyond those its vendor schema lists. */
const EXTRA_KEYS = [
  'auth', 'auth_type', 'region_name', 'regions', 'profile', 'cloud', 'networks', 'has_network', 'verify', 'cacert', 'cert', 'key',
  'api_timeout', 'identity_interface', 'floating_ip_source', 'requires_floating_ip', 'secgroup_source', 'interface', 'status', 'message',
  'disable_vendor_agent', 'image_format', 'image_api_use_tasks', 'vendor_hook', 'name', 'split_loggers', 'nat_destination',
];

/**
 * Every key a cloud entry or profile may have at its top level.
 *
 * @example
 *   KNOWN_KEYS.has('floating_ip_source'); // true
 */
export const KNOWN_KEYS: ReadonlySet<string> = new Set([...Object.keys((vendorSchema as { properties: { profile: { properties: Record<string, unknown> } } }).properties.profile.properties), ...EXTRA_KEYS]);

/** Per-service keys (`block_storage_endpoint_override`, `compute_api_version`…). */
const SERVICE_KEY = /^[a-z0-9]+(?:_[a-z0-9]+)*_(?:endpoint_override|api_version|service_type|service_name|status_code_retries)$/;

/**
 * Whether `key` is one a cloud entry may have.
 *
 * @example
 *   isKnownKey('network_endpoint_override'); // true
 */
export function isKnownKey(key: string): boolean {
  return KNOWN_KEYS.has(key) || SERVICE_KEY.test(key);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * The known key closest to `key` (at most 3 edits away), for "did you mean".
 *
 * @example
 *   closestKey('regin_name'); // 'region_name'
 */
export function closestKey(key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of KNOWN_KEYS) {
    const d = distance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * The top-level keys with `-` read as `_`, and a warning for each key that needed it or is
 * unknown (`where` names the file or profile in the warning).
 *
 * @example
 *   normalizeKeys({ regin_name: 'x' }, 'cloud "a"').warnings; // ['cloud "a": unknown key "regin_name" is ignored (did you mean "region_name"?)']
 */
export function normalizeKeys(value: Record<string, unknown>, where: string): { value: Record<string, unknown>; warnings: string[] } {
  const out: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const normal = key.replaceAll('-', '_');
    if (normal !== key) warnings.push(`${where}: key "${key}" is read as "${normal}" (as openstacksdk does); write "${normal}"`);
    if (!isKnownKey(normal)) {
      const near = closestKey(normal);
      warnings.push(`${where}: unknown key "${key}" is ignored${near ? ` (did you mean "${near}"?)` : ''}`);
      continue;
    }
    if (!(normal in out) || normal === key) out[normal] = v;
  }
  return { value: out, warnings };
}
