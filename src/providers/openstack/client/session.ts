/**
 * An authenticated session with one cloud: it holds the Keystone token (renewed a few
 * minutes before it expires, and once more when a call gets a 401), finds each service's
 * endpoint in the catalog (region, interface, overrides), discovers the version to call on
 * it, and sends calls with `X-Auth-Token` (and Nova's microversion header). The APIs
 * (nova.ts, neutron.ts, glance.ts) are thin layers on `request`.
 *
 * @example
 *   const session = new OpenStackSession({ auth, region: 'RegionOne' });
 *   const res = await session.request('network', 'GET', '/networks');
 */
import { FormworkError } from '../../../core/errors.js';
import type { CallPolicy } from '../../api-calls.js';
import { selectEndpoint } from './catalog.js';
import { negotiateMicroversion, parseVersions, pickVersion, unversionedRoot, versionedBase, type ApiVersion } from './discovery.js';
import { sendRequest, type HttpResponse } from './http.js';
import { authenticate, authSecrets, type AuthOptions, type KeystoneToken } from './keystone.js';

/**
 * The services the client calls, with the major version it speaks and the path segment to use when discovery gives nothing.
 *
 * @example
 *   SERVICES.network.fallback; // 'v2.0'
 */
export const SERVICES = {
  compute: { major: 2, fallback: 'v2.1' },
  network: { major: 2, fallback: 'v2.0' },
  image: { major: 2, fallback: 'v2' },
} as const;

/** A service the client calls. */
export type ServiceType = keyof typeof SERVICES;

/**
 * The compute microversions Formwork works with: 2.47 embeds the flavor (with `original_name`) in a server.
 *
 * @example
 *   new OpenStackSession({ auth, computeMicroversions: { ...COMPUTE_MICROVERSIONS, max: '2.90' } });
 */
export const COMPUTE_MICROVERSIONS = { min: '2.1', max: '2.79' } as const;

/** How a session is made: the credentials, where in the cloud, and test hooks. */
export interface SessionOptions {
  auth: AuthOptions;
  region?: string;
  interface?: 'public' | 'internal' | 'admin';
  /** URLs by service type, as clouds.yaml's `<service>_endpoint_override`. */
  endpointOverrides?: Partial<Record<string, string>>;
  /** The compute microversion range to negotiate within (default COMPUTE_MICROVERSIONS). */
  computeMicroversions?: { min: string; max: string };
  fetch?: typeof fetch;
  timeoutMs?: number;
  /**
   * The provider's call policy (rate, concurrency, retries of throttled and failed calls);
   * none: every call is tried once and its error goes to the caller.
   */
  calls?: CallPolicy;
  /** Renew the token when it expires within this many ms (default 5 minutes). */
  refreshMarginMs?: number;
  now?: () => number;
}

/** A service's endpoint as discovered: the versioned base URL and, for compute, the microversion to send. */
export interface ServiceEndpoint {
  baseUrl: string;
  version?: ApiVersion;
  microversion?: string;
}

/** Options of one call: a JSON body, extra headers, a query, and statuses to answer with instead of throwing. */
export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
  alsoOk?: readonly number[];
}

/**
 * `path?query` with the defined query values encoded.
 *
 * @example
 *   withQuery('/ports', { device_id: 'x', limit: 50, marker: undefined }); // '/ports?device_id=x&limit=50'
 */
export function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const q = params.toString();
  return q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path;
}

/**
 * A session with one cloud (see the file's comment).
 *
 * @example
 *   const session = new OpenStackSession({ auth, region: 'RegionOne', interface: 'internal' });
 */
export class OpenStackSession {
  private token: KeystoneToken | undefined;
  private pendingToken: Promise<KeystoneToken> | undefined;
  private readonly endpoints = new Map<ServiceType, Promise<ServiceEndpoint>>();
  private readonly secrets: string[];

  constructor(readonly options: SessionOptions) {
    this.secrets = authSecrets(options.auth);
  }

  private get http() {
    return { fetch: this.options.fetch, timeoutMs: this.options.timeoutMs, secrets: this.secrets };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /**
   * A valid token: the cached one, or a new one when it is missing, expires within the
   * refresh margin, or `force` says the cloud refused it. Concurrent callers share one login.
   *
   * @example
   *   const { value, catalog } = await session.currentToken();
   */
  async currentToken(force = false): Promise<KeystoneToken> {
    const margin = this.options.refreshMarginMs ?? 5 * 60_000;
    if (!force && this.token && this.token.expiresAt.getTime() - margin > this.now()) return this.token;
    if (force) this.token = undefined;
    this.pendingToken ??= authenticate(this.options.auth, this.http)
      .then((t) => {
        this.token = t;
        this.secrets.push(t.value);
        return t;
      })
      .finally(() => {
        this.pendingToken = undefined;
      });
    return this.pendingToken;
  }

  /**
   * The service's endpoint: the catalog's URL (or the override), its version discovered on
   * the unversioned root, and for compute the negotiated microversion. Found once per session.
   *
   * @example
   *   (await session.endpoint('compute')).microversion; // '2.79'
   */
  endpoint(service: ServiceType): Promise<ServiceEndpoint> {
    let found = this.endpoints.get(service);
    if (!found) {
      found = this.options.calls ? this.options.calls.run(`${service} discovery`, () => this.discover(service)) : this.discover(service);
      found.catch(() => this.endpoints.delete(service)); // a failed discovery is tried again next call
      this.endpoints.set(service, found);
    }
    return found;
  }

  private async discover(service: ServiceType): Promise<ServiceEndpoint> {
    const token = await this.currentToken();
    const catalogUrl = selectEndpoint(token.catalog, { serviceType: service, interface: this.options.interface, region: this.options.region, override: this.options.endpointOverrides?.[service] }).replace(/\/+$/, '');
    const root = unversionedRoot(catalogUrl);
    let version: ApiVersion | undefined;
    try {
      const res = await sendRequest({ service, method: 'GET', url: root, headers: { 'x-auth-token': token.value }, alsoOk: [300] }, this.http);
      version = pickVersion(parseVersions(res.body), SERVICES[service].major);
    } catch (e) {
      // No discovery document (some proxies answer the root with 404 or 401): use the catalog's URL.
      if (!(e instanceof FormworkError) || !['NOT_FOUND', 'PROVIDER_AUTH', 'PROVIDER_INVALID'].includes(e.code)) throw e;
    }
    if (!version) {
      const versioned = catalogUrl !== root;
      return { baseUrl: versioned ? catalogUrl : `${root}/${SERVICES[service].fallback}` };
    }
    const microversion = service === 'compute' ? negotiateMicroversion(version, this.options.computeMicroversions ?? COMPUTE_MICROVERSIONS) : undefined;
    return { baseUrl: versionedBase(root, version), version, microversion };
  }

  /**
   * One call to a service, `path` relative to its versioned base (or an absolute URL, as
   * pagination links are). A 401 renews the token and tries once more.
   *
   * @example
   *   await session.request('compute', 'POST', '/servers', { body: { server } });
   */
  async request(service: ServiceType, method: string, path: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    const endpoint = await this.endpoint(service);
    const url = /^https?:\/\//.test(path) ? withQuery(path, opts.query) : `${endpoint.baseUrl}${withQuery(path, opts.query)}`;
    const headers: Record<string, string> = { ...opts.headers };
    if (endpoint.microversion) headers['openstack-api-version'] = `compute ${endpoint.microversion}`;
    const send = async (force: boolean) => {
      const token = await this.currentToken(force);
      return sendRequest({ service, method, url, body: opts.body, alsoOk: opts.alsoOk, headers: { ...headers, 'x-auth-token': token.value } }, this.http);
    };
    const once = async () => {
      try {
        return await send(false);
      } catch (e) {
        if (e instanceof FormworkError && e.code === 'PROVIDER_AUTH' && e.details?.status === 401) return send(true);
        throw e;
      }
    };
    // A POST may have made something before its answer was lost: only a throttled one is sent again.
    return this.options.calls ? this.options.calls.run(`${service} ${method}`, once, { idempotent: method !== 'POST' }) : once();
  }

  /**
   * The versioned base URL of a service (for resolving pagination links against).
   *
   * @example
   *   await session.baseUrl('image'); // 'https://image.example.com/v2'
   */
  async baseUrl(service: ServiceType): Promise<string> {
    return (await this.endpoint(service)).baseUrl;
  }
}
