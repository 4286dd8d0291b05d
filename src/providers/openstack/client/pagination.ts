/**
 * Lists that span pages. Each API says "there is more" its own way: Nova with
 * `servers_links`/`flavors_links`, Neutron with `<resource>_links` (both a `rel: next`
 * link), Glance with a top-level `next` path. Each page is asked with `limit`, the next one
 * by following the link (its host replaced by the endpoint's, as clouds behind proxies
 * advertise internal ones) or, when a full page came without a link, with `marker` = the
 * last item's id. A link that repeats stops the walk (Glance may answer `next` without a
 * marker), and so does `maxPages`.
 *
 * @example
 *   const ports = await listAll<Port>(session, 'network', '/ports', 'ports', { query: { device_id: id } });
 */
import { withQuery, type OpenStackSession, type ServiceType } from './session.js';

/** How to walk a list: the query of the first page, the page size and the most pages to read. */
export interface ListOptions {
  query?: Record<string, string | number | boolean | undefined>;
  limit?: number;
  maxPages?: number;
}

/**
 * Default page size: big enough that most lists are one page, small enough for any cloud's maximum.
 *
 * @example
 *   await listAll(session, 'network', '/ports', 'ports', { limit: DEFAULT_PAGE_SIZE / 4 });
 */
export const DEFAULT_PAGE_SIZE = 200;

/**
 * The next page's URL a body names, if any: `<key>_links` with `rel: next`, or Glance's `next`.
 *
 * @example
 *   nextLink({ servers: [], servers_links: [{ rel: 'next', href: 'http://x/v2.1/servers?marker=a' }] }, 'servers'); // 'http://x/v2.1/servers?marker=a'
 */
export function nextLink(body: Record<string, unknown>, key: string): string | undefined {
  const links = body[`${key}_links`];
  if (Array.isArray(links)) {
    const next = (links as { rel?: string; href?: string }[]).find((l) => l.rel === 'next');
    if (next?.href) return next.href;
  }
  return typeof body.next === 'string' && body.next !== '' ? body.next : undefined;
}

/**
 * A next link made absolute on the endpoint's own host. A path-only link (Glance's
 * `/v2/images?marker=…`) is relative to the endpoint's root, which may have a prefix
 * (`http://x/image` + `/v2/images`).
 *
 * @example
 *   resolveNext('/v2/images?marker=b', 'http://x/image/v2'); // 'http://x/image/v2/images?marker=b'
 *   resolveNext('http://internal:9696/v2.0/ports?marker=c', 'https://net.example.com/v2.0'); // 'https://net.example.com/v2.0/ports?marker=c'
 */
export function resolveNext(href: string, baseUrl: string): string {
  const base = new URL(baseUrl);
  const link = new URL(href, base);
  const basePath = base.pathname.replace(/\/+$/, '');
  const versionSegment = basePath.split('/').pop() ?? '';
  let path = link.pathname;
  const at = path.indexOf(`/${versionSegment}/`);
  // Keep the endpoint's prefix: the link's path from its version segment on.
  if (versionSegment && at !== -1) path = basePath + path.slice(at + versionSegment.length + 1);
  return `${base.origin}${path}${link.search}`;
}

/**
 * Every item of a list, across its pages.
 *
 * @example
 *   const flavors = await listAll<Flavor>(session, 'compute', '/flavors/detail', 'flavors');
 */
export async function listAll<T>(session: OpenStackSession, service: ServiceType, path: string, key: string, opts: ListOptions = {}): Promise<T[]> {
  const limit = opts.limit ?? DEFAULT_PAGE_SIZE;
  const maxPages = opts.maxPages ?? 1000;
  const items: T[] = [];
  const seen = new Set<string>();
  let res = await session.request(service, 'GET', path, { query: { ...opts.query, limit } });
  for (let page = 1; ; page++) {
    const body = (res.body ?? {}) as Record<string, unknown>;
    const pageItems = Array.isArray(body[key]) ? (body[key] as T[]) : [];
    items.push(...pageItems);
    if (page >= maxPages || pageItems.length === 0) break;
    const link = nextLink(body, key);
    let next: string | undefined;
    if (link) next = resolveNext(link, await session.baseUrl(service));
    else if (pageItems.length >= limit) {
      const last = pageItems[pageItems.length - 1] as { id?: unknown };
      if (typeof last?.id !== 'string') break;
      next = `${await session.baseUrl(service)}${withQuery(path, { ...opts.query, limit, marker: last.id })}`;
    }
    if (!next || seen.has(next)) break;
    seen.add(next);
    res = await session.request(service, 'GET', next);
  }
  return items;
}
