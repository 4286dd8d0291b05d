/**
 * Glance v2 as the emulator plays it: the versions document, images with their custom
 * properties beside Glance's own fields (`os_distro`, `os_version`, `os_admin_user`), lists
 * filtered by any field or property and paged by `limit`/`marker` with Glance's `next`
 * path (relative, `/v2/images?marker=…`), and its plain-text errors.
 *
 * @example
 *   const answer = handleGlance(state, { method: 'GET', segments: ['v2', 'images'], query: new URLSearchParams('os_distro=debian'), body: undefined, headers: {} }, baseUrl);
 */
import type { EmulatorState } from './state.js';
import { glanceError, matchesQuery, nextQuery, paginate, type EmuAnswer, type EmuRequest } from './wire.js';

/**
 * Answers a call under `/image` (segments after it).
 *
 * @example
 *   handleGlance(state, req, 'http://127.0.0.1:5000').body; // { images: [...], first: '/v2/images', schema: '/v2/schemas/images' }
 */
export function handleGlance(state: EmulatorState, req: EmuRequest, baseUrl: string): EmuAnswer {
  const [version, resource, id] = req.segments;
  const root = `${baseUrl}/image`;
  if (!version) {
    const v = (vid: string, status: string) => ({ id: vid, status, links: [{ rel: 'self', href: `${root}/v2/` }] });
    return { status: 300, body: { versions: [v('v2.9', 'CURRENT'), v('v2.8', 'SUPPORTED'), v('v2.7', 'SUPPORTED'), v('v2.0', 'SUPPORTED')] } };
  }
  if (version !== 'v2' || resource !== 'images') return glanceError(404, 'Not Found', 'The resource could not be found.');
  if (req.method !== 'GET') return glanceError(405, 'Method Not Allowed', 'The method is not allowed for this resource.');
  if (id) {
    const image = state.images.get(id);
    return image ? { body: image } : glanceError(404, 'Not Found', `No image found with ID ${id}`);
  }
  const all = [...state.images.values()].filter((i) => matchesQuery(i, req.query, ['member_status', 'sort']));
  const page = paginate(all, req.query, 1000, 'id', 25);
  if (!page) return glanceError(400, 'Bad Request', `marker could not be found.`);
  const body: Record<string, unknown> = { images: page.items, first: '/v2/images', schema: '/v2/schemas/images' };
  if (page.nextMarker) body.next = `/v2/images?${nextQuery(req.query, page.nextMarker, page.limit ?? 25)}`;
  return { body };
}
