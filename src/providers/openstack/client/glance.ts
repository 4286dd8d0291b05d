/**
 * Glance v2: images and their properties. Glance puts an image's custom properties
 * (`os_distro`, `os_version`, `os_admin_user`…) beside its own fields; `imageProperties`
 * takes them apart, so the catalog matches images by properties rather than by names,
 * which no two clouds share.
 *
 * @example
 *   const glance = new GlanceApi(session);
 *   const debian = (await glance.listImages({ status: 'active' })).filter((i) => imageProperties(i).os_distro === 'debian');
 */
import { orUndefined } from './not-found.js';
import { listAll } from './pagination.js';
import type { OpenStackSession } from './session.js';

/** A Glance v2 image: its own fields, and its custom properties as further keys. */
export interface GlanceImage {
  id: string;
  name: string | null;
  status: string;
  visibility?: string;
  min_disk?: number;
  min_ram?: number;
  tags?: string[];
  [field: string]: unknown;
}

/** Glance's own image fields: everything else on an image is a property. */
const CORE_FIELDS = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size',
  'virtual_size', 'min_ram', 'min_disk', 'container_format', 'disk_format', 'created_at', 'updated_at', 'tags',
  'direct_url', 'self', 'file', 'schema', 'locations', 'os_hidden', 'stores',
]);

/**
 * An image's custom properties (as strings, the way Glance stores them).
 *
 * @example
 *   imageProperties({ id: 'i', name: 'Debian 12', status: 'active', os_distro: 'debian', os_version: '12' }); // { os_distro: 'debian', os_version: '12' }
 */
export function imageProperties(image: GlanceImage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(image)) if (!CORE_FIELDS.has(k) && v !== null && v !== undefined) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/**
 * Glance's API (see the file's comment).
 *
 * @example
 *   const image = await new GlanceApi(session).getImage(id);
 */
export class GlanceApi {
  constructor(private readonly session: OpenStackSession) {}

  /**
   * Images, filtered server-side by any field or property (`{ os_distro: 'debian' }`).
   *
   * @example
   *   await glance.listImages({ status: 'active' });
   */
  listImages(query?: Record<string, string | number | undefined>): Promise<GlanceImage[]> {
    return listAll<GlanceImage>(this.session, 'image', '/images', 'images', { query });
  }

  /**
   * One image, or `undefined`.
   *
   * @example
   *   await glance.getImage(id);
   */
  async getImage(id: string): Promise<GlanceImage | undefined> {
    const res = await orUndefined(this.session.request('image', 'GET', `/images/${encodeURIComponent(id)}`));
    return res?.body as GlanceImage | undefined;
  }
}
