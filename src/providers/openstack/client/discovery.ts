/**
 * Version discovery and Nova microversions.
 *
 * A service's unversioned endpoint answers with its `versions` document (Keystone nests it
 * as `versions.values`; a versioned endpoint answers `{"version": {...}}`). From it we take
 * the version to call and, for Nova, the microversion range `min_version`–`version`. The
 * version's `self` link is used for its path only: clouds behind proxies advertise their
 * internal host names there (`http://localhost/v2/`), so the host stays the catalog's.
 *
 * @example
 *   const v = pickVersion(parseVersions(doc), 2); // { id: 'v2.1', minMicroversion: '2.10', maxMicroversion: '2.53', ... }
 *   negotiateMicroversion(v, { min: '2.1', max: '2.79' }); // '2.53'
 */
import { FormworkError } from '../../../core/errors.js';

/** One API version a service offers. Microversions are absent when the version has none. */
export interface ApiVersion {
  id: string;
  major: number;
  minor: number;
  status: string;
  selfHref?: string;
  minMicroversion?: string;
  maxMicroversion?: string;
}

const VERSION_ID = /^v(\d+)(?:\.(\d+))?$/;

/**
 * The versions a discovery document lists (empty when it is not one).
 *
 * @example
 *   parseVersions({ versions: { values: [{ id: 'v3.6', status: 'stable', links: [] }] } })[0].major; // 3
 */
export function parseVersions(doc: unknown): ApiVersion[] {
  if (!doc || typeof doc !== 'object') return [];
  const d = doc as { versions?: unknown; version?: unknown };
  let raw: unknown[] = [];
  if (Array.isArray(d.versions)) raw = d.versions;
  else if (d.versions && typeof d.versions === 'object' && Array.isArray((d.versions as { values?: unknown }).values)) raw = (d.versions as { values: unknown[] }).values;
  else if (d.version && typeof d.version === 'object') raw = [d.version];
  const out: ApiVersion[] = [];
  for (const item of raw) {
    if (!item || typeof item !== 'object') continue;
    const v = item as { id?: unknown; status?: unknown; links?: unknown; min_version?: unknown; version?: unknown };
    const m = typeof v.id === 'string' ? VERSION_ID.exec(v.id) : null;
    if (!m) continue;
    const links = Array.isArray(v.links) ? (v.links as { rel?: string; href?: string }[]) : [];
    const micro = (x: unknown) => (typeof x === 'string' && x !== '' ? x : undefined);
    out.push({
      id: v.id as string,
      major: Number(m[1]),
      minor: Number(m[2] ?? 0),
      status: typeof v.status === 'string' ? v.status.toUpperCase() : 'UNKNOWN',
      selfHref: links.find((l) => l.rel === 'self')?.href,
      minMicroversion: micro(v.min_version),
      maxMicroversion: micro(v.version),
    });
  }
  return out;
}

/**
 * The newest usable version of a major (`CURRENT`, `STABLE` or `SUPPORTED`, never
 * `DEPRECATED` when another is there), or undefined.
 *
 * @example
 *   pickVersion(parseVersions(computeDoc), 2)?.id; // 'v2.1'
 */
export function pickVersion(versions: readonly ApiVersion[], major: number): ApiVersion | undefined {
  const ofMajor = versions.filter((v) => v.major === major);
  const usable = ofMajor.filter((v) => v.status !== 'DEPRECATED' && v.status !== 'DELETED');
  const pool = usable.length > 0 ? usable : ofMajor;
  return [...pool].sort((a, b) => b.minor - a.minor)[0];
}

/**
 * The endpoint's root without its version (and project id) path: where the discovery
 * document lives. `http://x:8774/v2.1/abc` → `http://x:8774`; `http://x/image/v2` → `http://x/image`.
 *
 * @example
 *   unversionedRoot('http://192.168.18.100:8774/v2/9c46'); // 'http://192.168.18.100:8774'
 */
export function unversionedRoot(url: string): string {
  const u = new URL(url);
  const parts = u.pathname.split('/').filter(Boolean);
  const at = parts.findIndex((p) => VERSION_ID.test(p));
  const kept = at === -1 ? parts : parts.slice(0, at);
  return `${u.origin}${kept.length ? `/${kept.join('/')}` : ''}`;
}

/**
 * The versioned base URL to call: the root plus the version's path segment taken from its
 * `self` link (or its id), so the host stays the one the catalog named.
 *
 * @example
 *   versionedBase('http://127.0.0.1:9292', { id: 'v2.3', selfHref: 'http://localhost/v2/', ... }); // 'http://127.0.0.1:9292/v2'
 */
export function versionedBase(root: string, version: ApiVersion): string {
  let segment = version.id;
  if (version.selfHref) {
    try {
      const parts = new URL(version.selfHref, `${root}/`).pathname.split('/').filter(Boolean);
      const found = parts.reverse().find((p) => VERSION_ID.test(p));
      if (found) segment = found;
    } catch {
      /* an unparsable link: the id is the segment */
    }
  }
  return `${root.replace(/\/+$/, '')}/${segment}`;
}

/** A microversion as two numbers, for comparison. */
function parseMicroversion(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  if (!m) throw new FormworkError('PROVIDER_INVALID', `"${v}" is not a microversion (MAJOR.MINOR)`, { microversion: v });
  return [Number(m[1]), Number(m[2])];
}

/**
 * Compares two microversions: negative, zero or positive.
 *
 * @example
 *   compareMicroversions('2.9', '2.10'); // < 0
 */
export function compareMicroversions(a: string, b: string): number {
  const [am, an] = parseMicroversion(a);
  const [bm, bn] = parseMicroversion(b);
  return am - bm || an - bn;
}

/**
 * The microversion to send: the highest both the client (`wanted`) and the server accept.
 * Undefined when the server has none (a v2.0 legacy endpoint): send no header then.
 * A server whose range does not meet the client's is refused, naming both ranges.
 *
 * @example
 *   negotiateMicroversion({ minMicroversion: '2.1', maxMicroversion: '2.95' } as ApiVersion, { min: '2.1', max: '2.79' }); // '2.79'
 */
export function negotiateMicroversion(server: Pick<ApiVersion, 'minMicroversion' | 'maxMicroversion'>, wanted: { min: string; max: string }): string | undefined {
  if (!server.maxMicroversion) return undefined;
  const serverMin = server.minMicroversion ?? server.maxMicroversion;
  const high = compareMicroversions(server.maxMicroversion, wanted.max) < 0 ? server.maxMicroversion : wanted.max;
  const low = compareMicroversions(serverMin, wanted.min) > 0 ? serverMin : wanted.min;
  if (compareMicroversions(high, low) < 0) {
    throw new FormworkError('PROVIDER_INVALID', `the cloud's compute API accepts microversions ${serverMin}–${server.maxMicroversion}; Formwork needs ${wanted.min}–${wanted.max}`, { server: [serverMin, server.maxMicroversion], wanted: [wanted.min, wanted.max] });
  }
  return high;
}
