/**
 * The provider's own resources and its checks: `prepare` logs in (wrong credentials, an
 * unknown cloud or region fail here, when the provider is applied, naming what to fix),
 * checks the boot network can be chosen, imports the platform's key as the provider's
 * keypair and makes one security group allowing TCP/22, tagged; `teardown` removes both.
 * `listOwned`/`deleteOwned` see everything carrying the provider's tags (servers, floating
 * IPs, ports, security groups) and its keypair (Nova keypairs carry no tags: it is known by
 * its name).
 *
 * @example
 *   await prepare(ctx); // PROVIDER_AUTH: provider os1: Keystone … refused the credentials …
 */
import { FormworkError, toFormworkError } from '../../core/errors.js';
import { TAG_MANAGED_BY, TAG_PROVIDER, type OwnedResource, type ProviderCheckContext, type ProviderContext } from '../provider.js';
import type { NeutronSecurityGroup } from './client/neutron.js';
import { connect, type Connection } from './connect.js';
import { chooseBootNetwork, loadTopology } from './networks.js';
import { releaseFloatingIp } from './reachable.js';
import { keypairName, neutronTags, providerTags, securityGroupName, tagFilter, tagsFromNeutron, tagsFromNova } from './tags.js';

/** Checks the cloud and makes the provider's keypair and security group (idempotent). */
export async function prepare(ctx: ProviderContext): Promise<void> {
  const conn = await checkCloud(ctx);
  await ensureKeypair(conn, ctx);
  await ensureSecurityGroup(conn, ctx);
}

/** The driver's `check` (run at apply): the cloud resolves, logs in, has compute, network and image, and a boot network can be chosen. */
export async function check(ctx: ProviderCheckContext): Promise<void> {
  await checkCloud(ctx);
}

async function checkCloud(ctx: ProviderCheckContext): Promise<Connection> {
  const conn = await connect(ctx);
  for (const w of conn.config.warnings) ctx.log.warn(w);
  await login(conn, ctx);
  for (const service of ['compute', 'network', 'image'] as const) await conn.client.session.endpoint(service);
  chooseBootNetwork(await loadTopology(conn.client), conn.config, ctx.settings);
  return conn;
}

async function login(conn: Connection, ctx: ProviderCheckContext): Promise<void> {
  try {
    await conn.client.session.currentToken();
  } catch (e) {
    const err = toFormworkError(e);
    if (err.code !== 'PROVIDER_AUTH') throw e;
    const a = conn.config.auth;
    const who = a.method === 'application_credential' ? `application credential ${a.applicationCredentialId ?? a.applicationCredentialName}` : a.method === 'password' ? `user ${a.username ?? a.userId}` : 'the token';
    const fix = ctx.settings.cloud ? `the ${a.method === 'password' ? 'password' : 'secret'} of cloud "${String(ctx.settings.cloud)}" in clouds.yaml or secure.yaml` : `the provider's credentialsSecret (${a.method === 'password' ? 'password' : a.method === 'token' ? 'token' : 'application_credential_secret'})`;
    throw new FormworkError('PROVIDER_AUTH', `provider ${ctx.providerName}: Keystone at ${a.authUrl} refused ${who}: fix ${fix} (${err.message})`, { provider: ctx.providerName, authUrl: a.authUrl }, { cause: e });
  }
}

/**
 * The provider's keypair: the platform's public key, imported once under `keypairName`; replaced when the platform's key changed.
 *
 * @example
 *   await ensureKeypair(conn, ctx); // 'formwork-os1'
 */
export async function ensureKeypair(conn: Connection, ctx: ProviderContext): Promise<string> {
  const name = keypairName(ctx);
  const nova = conn.client.compute;
  const keyBody = (k: string) => k.trim().split(/\s+/).slice(0, 2).join(' ');
  const existing = await nova.getKeypair(name);
  if (existing && keyBody(existing.public_key) === keyBody(ctx.publicKey)) return name;
  if (existing) {
    ctx.log.warn(`keypair ${name} holds another key than the platform's: replacing it`);
    await nova.deleteKeypair(name);
  }
  try {
    await nova.createKeypair(name, ctx.publicKey.trim());
  } catch (e) {
    // Another worker imported it meanwhile.
    if (!(e instanceof FormworkError && e.code === 'CONFLICT')) throw e;
  }
  return name;
}

/**
 * The provider's security group allowing TCP/22 (made once, found by its tags), or undefined when the cloud has none (`secgroup_source: None`).
 *
 * @example
 *   (await ensureSecurityGroup(conn, ctx))?.name; // 'formwork-os1-ssh'
 */
export async function ensureSecurityGroup(conn: Connection, ctx: ProviderContext): Promise<NeutronSecurityGroup | undefined> {
  if (conn.config.secgroupSource === 'None') return undefined;
  const net = conn.client.network;
  const [found] = (await net.listSecurityGroups({ tags: tagFilter(ctx) })).sort((a, b) => a.id.localeCompare(b.id));
  if (found) return found;
  const sg = await net.createSecurityGroup(securityGroupName(ctx), `Formwork provider ${ctx.providerName}: SSH from the control plane`);
  try {
    await net.setTags('security-groups', sg.id, neutronTags(providerTags(ctx)));
    for (const [ethertype, prefix] of [['IPv4', '0.0.0.0/0'], ['IPv6', '::/0']]) {
      await net.createSecurityGroupRule({ security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: prefix, ethertype });
    }
  } catch (e) {
    await net.deleteSecurityGroup(sg.id).catch(() => undefined); // nothing half-made or untagged is left
    throw e;
  }
  return sg;
}

/** Removes the provider's security groups and keypair (idempotent). */
export async function teardown(ctx: ProviderContext): Promise<void> {
  const conn = await connect(ctx);
  for (const sg of await conn.client.network.listSecurityGroups({ tags: tagFilter(ctx) })) await conn.client.network.deleteSecurityGroup(sg.id);
  await conn.client.compute.deleteKeypair(keypairName(ctx));
}

/** Every resource carrying the provider's tags, and its keypair. */
export async function listOwned(ctx: ProviderContext): Promise<OwnedResource[]> {
  const conn = await connect(ctx);
  const { compute, network } = conn.client;
  const tags = tagFilter(ctx);
  const [servers, fips, ports, groups, keypair] = await Promise.all([
    compute.listServers({ [TAG_MANAGED_BY]: 'formwork', [TAG_PROVIDER]: ctx.providerName }),
    network.listFloatingIps({ tags }),
    network.listPorts({ tags }),
    network.listSecurityGroups({ tags }),
    compute.getKeypair(keypairName(ctx)),
  ]);
  return [
    ...servers.map((s) => ({ kind: 'machine', id: s.id, name: s.name, tags: tagsFromNova(s.metadata) })),
    ...fips.map((f) => ({ kind: 'address', id: f.id, name: f.floating_ip_address, tags: tagsFromNeutron(f.tags) })),
    ...ports.map((p) => ({ kind: 'port', id: p.id, tags: tagsFromNeutron(p.tags) })),
    ...groups.map((g) => ({ kind: 'security-group', id: g.id, name: g.name, tags: tagsFromNeutron(g.tags) })),
    ...(keypair ? [{ kind: 'key-pair', id: keypair.name, name: keypair.name, tags: providerTags(ctx) }] : []),
  ];
}

/** Deletes one resource `listOwned` returned; gone already is no error. Machines go through `deleteMachine`. */
export async function deleteOwned(resource: OwnedResource, ctx: ProviderContext, deleteMachine: (id: string) => Promise<void>): Promise<void> {
  const conn = await connect(ctx);
  const { compute, network } = conn.client;
  switch (resource.kind) {
    case 'machine':
      return deleteMachine(resource.id);
    case 'address': {
      const f = await network.getFloatingIp(resource.id);
      if (f) await releaseFloatingIp(conn, f);
      return;
    }
    case 'port':
      await network.deletePort(resource.id);
      return;
    case 'security-group':
      await network.deleteSecurityGroup(resource.id);
      return;
    case 'key-pair':
      await compute.deleteKeypair(resource.id);
      return;
    default:
      throw new FormworkError('PROVIDER_INVALID', `openstack provider ${ctx.providerName} owns no resources of kind "${resource.kind}"`, { kind: resource.kind });
  }
}
