/**
 * The OpenStack client: one session (Keystone, catalog, discovery) and the three APIs on it.
 *
 * @example
 *   const os = createOpenStackClient({ auth: { method: 'password', authUrl, username, password, userDomainName: 'Default', projectName, projectDomainName: 'Default' }, region: 'RegionOne' });
 *   const flavors = await os.compute.listFlavors();
 */
import { GlanceApi } from './glance.js';
import { NeutronApi } from './neutron.js';
import { NovaApi } from './nova.js';
import { OpenStackSession, type SessionOptions } from './session.js';

/** A session with the compute, network and image APIs on it. */
export interface OpenStackClient {
  session: OpenStackSession;
  compute: NovaApi;
  network: NeutronApi;
  image: GlanceApi;
}

/**
 * A client for one cloud. Nothing is sent until the first call (which logs in).
 *
 * @example
 *   const { network } = createOpenStackClient({ auth, region: 'RegionOne', interface: 'public' });
 *   await network.listNetworks({ 'router:external': true });
 */
export function createOpenStackClient(options: SessionOptions): OpenStackClient {
  const session = new OpenStackSession(options);
  return { session, compute: new NovaApi(session), network: new NeutronApi(session), image: new GlanceApi(session) };
}
