/**
 * Nova v2.1 as the emulator plays it: version documents with the microversion range,
 * the microversion headers (asked in `OpenStack-API-Version` or the older
 * `X-OpenStack-Nova-API-Version`, answered in both; outside the range, 406), servers,
 * flavors and keypairs, paged by `limit`/`marker` with `<resource>_links`. A boot is
 * refused as Nova refuses it: metadata keys outside `^[a-zA-Z0-9-_:. ]{1,255}$` (400), an
 * unknown flavor, image, key or network (400), no network named when several are visible
 * (409, or 400 from microversion 2.37 on, where `networks` is required), an external
 * network (403), a port in use (409); keypairs without a public key from 2.92 on (400).
 *
 * @example
 *   const nova = new Nova(state, 'http://127.0.0.1:5000');
 *   const answer = await nova.handle(req);
 */
import { createHash } from 'node:crypto';
import { generateSshKeypair } from '../../emulation/keys.js';
import { atLeast, newServerRecord, serverView, ServerBuilds } from './nova-servers.js';
import type { Doc, EmulatorState } from './state.js';
import { isoNow, nextQuery, novaError, paginate, type EmuAnswer, type EmuRequest } from './wire.js';

/**
 * The compute microversions the emulator accepts.
 *
 * @example
 *   NOVA_MICROVERSIONS.max; // '2.95'
 */
export const NOVA_MICROVERSIONS = { min: '2.1', max: '2.95' } as const;

const METADATA_KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;
const KEYPAIR_NAME = /^[a-zA-Z0-9 _-]{1,255}$/;


/** Nova's `name` filter is a regular expression; one that does not parse matches nothing. */
function safeRegExp(pattern: string | null): RegExp | undefined {
  if (pattern === null) return undefined;
  try {
    return new RegExp(pattern);
  } catch {
    return /$^/;
  }
}

/**
 * The MD5 fingerprint Nova shows for a public key line, or undefined when it is not one.
 *
 * @example
 *   fingerprint('ssh-ed25519 AAAAC3Nz… me'); // 'a1:b2:…'
 */
export function fingerprint(line: string): string | undefined {
  const [type, data] = line.trim().split(/\s+/);
  if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+)$/.test(type ?? '') || !data || !/^[A-Za-z0-9+/]+=*$/.test(data)) return undefined;
  return createHash('md5').update(Buffer.from(data, 'base64')).digest('hex').replace(/(..)(?!$)/g, '$1:');
}

/**
 * Nova (see the file's comment).
 *
 * @example
 *   await new Nova(state, baseUrl).handle({ method: 'GET', segments: ['v2.1', 'flavors', 'detail'], query, body: undefined, headers });
 */
export class Nova {
  readonly builds: ServerBuilds;

  constructor(
    private readonly state: EmulatorState,
    private readonly baseUrl: string,
  ) {
    this.builds = new ServerBuilds(state);
  }

  private get root(): string {
    return `${this.baseUrl}/compute`;
  }

  private versionDoc(): Record<string, unknown> {
    return { id: 'v2.1', status: 'CURRENT', version: NOVA_MICROVERSIONS.max, min_version: NOVA_MICROVERSIONS.min, updated: '2013-07-23T11:33:21Z', links: [{ rel: 'self', href: `${this.root}/v2.1/` }] };
  }

  /** The microversion asked for, or a 406. */
  private microversion(req: EmuRequest): string | EmuAnswer {
    const header = String(req.headers['openstack-api-version'] ?? '');
    const asked = /compute\s+(\S+)/i.exec(header)?.[1] ?? (req.headers['x-openstack-nova-api-version'] as string | undefined) ?? NOVA_MICROVERSIONS.min;
    const v = asked === 'latest' ? NOVA_MICROVERSIONS.max : asked;
    if (!/^\d+\.\d+$/.test(v) || !atLeast(v, NOVA_MICROVERSIONS.min) || !atLeast(NOVA_MICROVERSIONS.max, v)) {
      return novaError(406, 'computeFault', `Version ${asked} is not supported by the API. Minimum is ${NOVA_MICROVERSIONS.min} and maximum is ${NOVA_MICROVERSIONS.max}.`);
    }
    return v;
  }

  /**
   * Answers a call under `/compute` (segments after it).
   *
   * @example
   *   (await nova.handle(req)).headers?.['openstack-api-version']; // 'compute 2.79'
   */
  async handle(req: EmuRequest): Promise<EmuAnswer> {
    const [version, ...rest] = req.segments;
    if (!version) return { body: { versions: [{ id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z', links: [{ rel: 'self', href: `${this.root}/v2/` }] }, this.versionDoc()] } };
    if (version !== 'v2.1') return novaError(404, 'itemNotFound', 'The resource could not be found.');
    const mv = this.microversion(req);
    if (typeof mv !== 'string') return mv;
    const answer = rest.length === 0 ? { body: { version: this.versionDoc() } } : await this.route(req, rest, mv);
    return { ...answer, headers: { ...answer.headers, 'openstack-api-version': `compute ${mv}`, 'x-openstack-nova-api-version': mv, vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version' } };
  }

  private page(items: Doc[], req: EmuRequest, key: string, path: string, by: 'id' | 'name' = 'id'): EmuAnswer {
    const page = paginate(items, req.query, 1000, by);
    if (!page) return novaError(400, 'badRequest', `marker [${String(req.query.get('marker'))}] not found`);
    const body: Record<string, unknown> = { [key]: page.items };
    if (page.nextMarker) body[`${key}_links`] = [{ rel: 'next', href: `${this.root}/v2.1/${path}?${nextQuery(req.query, page.nextMarker, page.limit ?? 1000)}` }];
    return { body };
  }

  private async route(req: EmuRequest, segs: string[], mv: string): Promise<EmuAnswer> {
    const [resource, id, sub] = segs;
    const base = `${this.root}/v2.1`;
    const { state } = this;
    if (resource === 'servers') {
      if (!id && req.method === 'POST') return this.boot(req, mv);
      if ((!id || id === 'detail') && req.method === 'GET') {
        const name = safeRegExp(req.query.get('name'));
        const status = req.query.get('status');
        const all = [...state.servers.values()].filter((r) => (!name || name.test(String(r.doc.name))) && (!status || r.doc.status === status.toUpperCase())).map((r) => serverView(state, r, mv, base) as Doc);
        const answer = this.page(all, req, 'servers', id ? 'servers/detail' : 'servers');
        if (!id && answer.body) (answer.body as { servers: Doc[] }).servers = (answer.body as { servers: Doc[] }).servers.map((s) => ({ id: s.id, name: s.name, links: s.links }));
        return answer;
      }
      const rec = id ? state.servers.get(id) : undefined;
      if (!rec) return novaError(404, 'itemNotFound', `Instance ${id} could not be found.`);
      if (sub === 'metadata' && req.method === 'GET') return { body: { metadata: rec.doc.metadata } };
      if (sub) return novaError(404, 'itemNotFound', 'The resource could not be found.');
      if (req.method === 'GET') return { body: { server: serverView(state, rec, mv, base) } };
      if (req.method === 'DELETE') {
        this.builds.delete(rec);
        return { status: 204 };
      }
    }
    if (resource === 'flavors' && req.method === 'GET') {
      if (!id || id === 'detail') {
        const all: Doc[] = [...state.flavors.values()].map((f) => ({ ...f, links: [{ rel: 'self', href: `${base}/flavors/${f.id}` }, { rel: 'bookmark', href: `${this.root}/flavors/${f.id}` }] }));
        return this.page(id ? all : all.map((f) => ({ id: f.id, name: f.name, description: f.description, links: f.links }) as Doc), req, 'flavors', id ? 'flavors/detail' : 'flavors');
      }
      const flavor = state.flavors.get(id);
      return flavor ? { body: { flavor: { ...flavor, links: [{ rel: 'self', href: `${base}/flavors/${flavor.id}` }] } } } : novaError(404, 'itemNotFound', `Flavor ${id} could not be found.`);
    }
    if (resource === 'os-keypairs') return this.keypairs(req, id, mv);
    return novaError(404, 'itemNotFound', 'The resource could not be found.');
  }

  private keypairs(req: EmuRequest, name: string | undefined, mv: string): EmuAnswer {
    const { state } = this;
    if (!name && req.method === 'GET') {
      const page = paginate([...state.keypairs.values()], req.query, 1000, 'name');
      if (!page) return novaError(400, 'badRequest', `marker [${String(req.query.get('marker'))}] not found`);
      const body: Record<string, unknown> = { keypairs: page.items.map(({ name: n, public_key, fingerprint: fp, type }) => ({ keypair: { name: n, public_key, fingerprint: fp, type } })) };
      if (page.nextMarker) body.keypairs_links = [{ rel: 'next', href: `${this.root}/v2.1/os-keypairs?${nextQuery(req.query, page.nextMarker, page.limit ?? 1000)}` }];
      return { body };
    }
    if (!name && req.method === 'POST') {
      const kp = (req.body as { keypair?: { name?: unknown; public_key?: unknown; type?: unknown } } | undefined)?.keypair;
      if (!kp || typeof kp.name !== 'string') return novaError(400, 'badRequest', "Invalid input for field/attribute keypair. Value: None. 'name' is a required property");
      if (!KEYPAIR_NAME.test(kp.name)) return novaError(400, 'badRequest', 'Keypair data is invalid: Keypair name contains unsafe characters');
      if (state.keypairs.has(kp.name)) return novaError(409, 'conflictingRequest', `Key pair '${kp.name}' already exists.`);
      let publicKey = typeof kp.public_key === 'string' ? kp.public_key : undefined;
      let privateKey: string | undefined;
      if (!publicKey) {
        if (atLeast(mv, '2.92')) return novaError(400, 'badRequest', `Invalid input for field/attribute keypair. Value: ${JSON.stringify(kp)}. 'public_key' is a required property`);
        ({ publicKey, privateKey } = generateSshKeypair());
      }
      const fp = fingerprint(publicKey);
      if (!fp) return novaError(400, 'badRequest', 'Keypair data is invalid: failed to generate fingerprint');
      const doc = { id: name ?? kp.name, name: kp.name, public_key: publicKey, fingerprint: fp, type: typeof kp.type === 'string' ? kp.type : 'ssh', user_id: state.identity.userId, created_at: isoNow(), deleted: false };
      state.keypairs.set(kp.name, { ...doc, id: kp.name });
      return { status: atLeast(mv, '2.2') ? 201 : 200, body: { keypair: { name: doc.name, public_key: doc.public_key, fingerprint: fp, type: doc.type, user_id: doc.user_id, ...(privateKey ? { private_key: privateKey } : {}) } } };
    }
    const kp = name ? state.keypairs.get(name) : undefined;
    if (!kp) return novaError(404, 'itemNotFound', `Keypair ${name} not found for user ${state.identity.userId}`);
    if (req.method === 'GET') return { body: { keypair: { ...kp, id: 1 } } };
    if (req.method === 'DELETE') {
      state.keypairs.delete(kp.name);
      return { status: atLeast(mv, '2.2') ? 204 : 202 };
    }
    return novaError(405, 'badMethod', 'The method is not allowed for this resource.');
  }

  private boot(req: EmuRequest, mv: string): EmuAnswer {
    const { state } = this;
    const s = (req.body as { server?: Record<string, unknown> } | undefined)?.server;
    if (!s || typeof s !== 'object') return novaError(400, 'badRequest', "Invalid input for field/attribute server. Value: None. 'server' is a required property");
    if (typeof s.name !== 'string' || s.name.trim() === '') return novaError(400, 'badRequest', "Invalid input for field/attribute name. Value: None. 'name' is a required property");
    const metadata = (s.metadata ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(metadata)) {
      if (!METADATA_KEY.test(k)) return novaError(400, 'badRequest', `Invalid input for field/attribute metadata. Value: ${JSON.stringify(metadata)}. Additional properties are not allowed ('${k}' was unexpected)`);
      if (typeof v !== 'string' || v.length > 255) return novaError(400, 'badRequest', `Invalid input for field/attribute ${k}. Value: ${JSON.stringify(v)}. ${JSON.stringify(v)} is not of type 'string' or is too long`);
    }
    const flavor = state.flavors.get(String(s.flavorRef ?? ''));
    if (!flavor) return novaError(400, 'badRequest', 'Invalid flavorRef provided.');
    const bdm = Array.isArray(s.block_device_mapping_v2) ? (s.block_device_mapping_v2 as Record<string, unknown>[]) : [];
    const imageId = typeof s.imageRef === 'string' && s.imageRef !== '' ? s.imageRef : undefined;
    if (imageId && !state.images.has(imageId)) return novaError(400, 'badRequest', `Image ${imageId} could not be found.`);
    if (!imageId && !bdm.some((b) => Number(b.boot_index) === 0)) return novaError(400, 'badRequest', 'Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.');
    const keyName = typeof s.key_name === 'string' ? s.key_name : undefined;
    if (keyName && !state.keypairs.has(keyName)) return novaError(400, 'badRequest', 'Invalid key_name provided.');
    if (s.user_data !== undefined && (typeof s.user_data !== 'string' || !/^[A-Za-z0-9+/\n]*=*\n?$/.test(s.user_data))) return novaError(400, 'badRequest', 'User data needs to be valid base 64.');
    const visible = [...state.networks.values()].filter((n) => n['router:external'] !== true || n.shared === true);
    let requested = s.networks as unknown;
    if (requested === undefined) {
      if (atLeast(mv, '2.37')) return novaError(400, 'badRequest', "Invalid input for field/attribute server. Value: {…}. 'networks' is a required property");
      requested = 'auto';
    }
    if (requested === 'none') return novaError(400, 'badRequest', 'The emulator boots servers with a network only: name one in "networks".');
    if (requested === 'auto') {
      if (visible.length !== 1) return novaError(409, 'conflictingRequest', visible.length ? 'Multiple possible networks found, use a Network ID to be more specific.' : `Unable to automatically allocate a network for project ${state.identity.projectId}`);
      requested = [{ uuid: visible[0].id }];
    }
    if (!Array.isArray(requested) || requested.length === 0) return novaError(400, 'badRequest', `Invalid input for field/attribute networks. Value: ${JSON.stringify(requested)}.`);
    const networkIds: string[] = [];
    const givenPorts: string[] = [];
    for (const item of requested as Record<string, unknown>[]) {
      if (typeof item.port === 'string') {
        const port = state.ports.get(item.port);
        if (!port) return novaError(400, 'badRequest', `Port id ${item.port} could not be found.`);
        if (port.device_id) return novaError(409, 'conflictingRequest', `Port ${item.port} is still in use.`);
        givenPorts.push(port.id);
        networkIds.push(String(port.network_id));
        continue;
      }
      const net = state.networks.get(String(item.uuid ?? ''));
      if (!net) return novaError(400, 'badRequest', `Network ${String(item.uuid)} could not be found.`);
      if (net['router:external'] === true && net.shared !== true) return novaError(403, 'forbidden', `It is not allowed to create an interface on external network ${net.id}`);
      networkIds.push(net.id);
    }
    const [networkId, ...extraNetworks] = networkIds;
    const rec = newServerRecord(state, { name: s.name, flavor, imageId, networkId, side: state.sides.get(networkId) ?? 'private', keyName, metadata: metadata as Record<string, string>, givenPorts, extraNetworks: givenPorts.length ? [] : extraNetworks });
    if (typeof s.accessIPv4 === 'string') rec.doc.accessIPv4 = s.accessIPv4;
    this.builds.start(rec, { publicKey: keyName ? String(state.keypairs.get(keyName)?.public_key) : undefined });
    const id = String(rec.doc.id);
    return { status: 202, body: { server: { id, links: [{ rel: 'self', href: `${this.root}/v2.1/servers/${id}` }], 'OS-DCF:diskConfig': 'MANUAL', security_groups: [{ name: 'default' }], adminPass: createHash('sha1').update(id).digest('base64url').slice(0, 12) } } };
  }
}
