/**
 * The provider's own resources and its checks. `check` (at apply) logs in with the service
 * account, then reads the project and the zone: a wrong key, an unknown project or zone, a
 * malformed endpoint are refused naming the setting to fix. `prepare` checks the same and
 * makes the firewall rule `formwork-<provider>-ssh` allowing TCP/22 from settings.sshSourceRanges
 * (default 0.0.0.0/0; a changed setting patches the rule) to instances with the
 * network tag `formwork-ssh` (firewalls carry no labels: known by name, the exact tags in its
 * description); `teardown` deletes it. `listOwned`/`deleteOwned` see the instances carrying the
 * provider's labels and the firewall rule.
 *
 * @example
 *   await check(ctx); // PROVIDER_INVALID: provider gce1: settings.zone "moon-1a" is not a zone of project p1 …
 */
import { FormworkError, isFormworkError } from '../../core/errors.js';
import type { OwnedResource, ProviderCheckContext, ProviderContext } from '../provider.js';
import { gceApi, type GceApi, type GceOperation } from './api.js';
import { networkName } from './catalog.js';
import { isNotFound } from './errors.js';
import { filterLabels, firewallName, labelFilter, providerTags, SSH_NETWORK_TAG } from './labels.js';
import { toMachine, type GceInstance } from './machines.js';

/** The driver's `check`: the key logs in, the project and the zone exist. */
export async function check(ctx: ProviderCheckContext): Promise<void> {
  await checkProject(gceApi(ctx), ctx);
}

/**
 * Reads the project and the zone, mapping a 404 (or a 403 on the project, as Google answers
 * for a project that does not exist or is not the key's) to the setting to fix.
 *
 * @example
 *   const project = await checkProject(api, ctx);
 */
export async function checkProject(api: GceApi, ctx: ProviderCheckContext): Promise<{ commonInstanceMetadata?: { items?: Array<{ key: string; value?: string }> } }> {
  let project;
  try {
    project = await api.get<{ commonInstanceMetadata?: { items?: Array<{ key: string; value?: string }> } }>('', 'projects.get');
  } catch (e) {
    if (isFormworkError(e) && e.code === 'PROVIDER_AUTH' && e.details?.status === 403) {
      throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: project "${api.project}" (settings.project) does not exist or the service account may not use it: fix settings.project, or grant the service account a Compute role there (${e.message})`, { setting: 'settings.project', project: api.project });
    }
    throw e;
  }
  if (!project) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: there is no project "${api.project}": fix settings.project`, { setting: 'settings.project', project: api.project });
  const zone = await api.get<{ status?: string }>(`zones/${encodeURIComponent(api.zone)}`, 'zones.get');
  if (!zone) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.zone "${api.zone}" is not a zone of project ${api.project} (e.g. us-central1-a): fix settings.zone`, { setting: 'settings.zone', zone: api.zone });
  if (zone.status && zone.status !== 'UP') ctx.log.warn(`zone ${api.zone} is ${zone.status}: machines may not be made there`);
  if (project.commonInstanceMetadata?.items?.find((i) => i.key === 'enable-oslogin')?.value?.toUpperCase() === 'TRUE') {
    ctx.log.warn(`provider ${ctx.providerName}: project ${api.project} has enable-oslogin TRUE, under which the ssh-keys metadata Formwork logs in with is ignored; each instance sets enable-oslogin FALSE over it, which works unless the organisation policy constraints/compute.requireOsLogin forbids it (a create is then refused)`, { project: api.project, setting: 'settings.project' });
  }
  return project;
}

/** Checks the project and makes the provider's firewall rule (idempotent). */
export async function prepare(ctx: ProviderContext): Promise<void> {
  const api = gceApi(ctx);
  await checkProject(api, ctx);
  await ensureFirewall(api, ctx);
}

/**
 * The provider's firewall rule allowing TCP/22 to its instances, made once.
 *
 * @example
 *   await ensureFirewall(api, ctx); // 'formwork-gce1-ssh'
 */
export async function ensureFirewall(api: GceApi, ctx: ProviderContext): Promise<string> {
  const name = firewallName(ctx);
  const sourceRanges = sshSourceRanges(ctx);
  const existing = await api.get<{ sourceRanges?: string[] }>(`global/firewalls/${name}`, 'firewalls.get');
  if (existing) {
    if (sameRanges(existing.sourceRanges ?? [], sourceRanges)) return name;
    // settings.sshSourceRanges changed since the rule was made: the rule follows it.
    const op = await api.call<GceOperation>('firewalls.patch', 'PATCH', `global/firewalls/${name}`, { sourceRanges }, { idempotent: true });
    await api.waitOperation(op, `updating firewall rule ${name}`);
    return name;
  }
  const network = networkName(ctx);
  const body = {
    name,
    network: `projects/${api.project}/global/networks/${network}`,
    direction: 'INGRESS',
    allowed: [{ IPProtocol: 'tcp', ports: ['22'] }],
    sourceRanges,
    targetTags: [SSH_NETWORK_TAG],
    description: JSON.stringify(providerTags(ctx)),
  };
  try {
    const op = await api.call<GceOperation>('firewalls.insert', 'POST', 'global/firewalls', body, { idempotent: false });
    await api.waitOperation(op, `making firewall rule ${name}`);
  } catch (e) {
    // Another worker made it meanwhile, or a lost answer made it.
    if (!(isFormworkError(e) && e.code === 'CONFLICT')) {
      if (await api.get(`global/firewalls/${name}`, 'firewalls.get').catch(() => undefined)) return name;
      if (isNotFound(e)) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: network "${network}" (settings.network) does not exist in project ${api.project}: fix settings.network`, { setting: 'settings.network', network });
      throw e;
    }
  }
  return name;
}

/** The CIDRs the firewall rule allows TCP/22 from: settings.sshSourceRanges, else anywhere. */
export function sshSourceRanges(ctx: Pick<ProviderCheckContext, 'settings'>): string[] {
  const v = ctx.settings.sshSourceRanges;
  return Array.isArray(v) && v.length && v.every((r) => typeof r === 'string') ? (v as string[]) : ['0.0.0.0/0'];
}

const sameRanges = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((r, i) => r === [...b].sort()[i]);

/** Deletes the provider's firewall rule (idempotent). */
export async function teardown(ctx: ProviderContext): Promise<void> {
  await deleteFirewall(gceApi(ctx), firewallName(ctx));
}

async function deleteFirewall(api: GceApi, name: string): Promise<void> {
  try {
    const op = await api.call<GceOperation>('firewalls.delete', 'DELETE', `global/firewalls/${name}`, undefined, { idempotent: true });
    await api.waitOperation(op, `deleting firewall rule ${name}`);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/**
 * The provider's instances (by its labels, their exact tags from metadata), paged.
 *
 * @example
 *   (await ownedInstances(api, ctx)).map((i) => i.name);
 */
export async function ownedInstances(api: GceApi, ctx: ProviderCheckContext, extra: Record<string, string> = {}): Promise<GceInstance[]> {
  const found = await api.list<GceInstance>(`zones/${api.zone}/instances`, { filter: labelFilter(ctx, extra) }, 'instances.list');
  // Every label asked for is checked again: an endpoint ignoring the filter must not hand a create another node's instance.
  // Labels are an encoding: two provider names may encode alike; the exact tags decide.
  const wanted = Object.entries(filterLabels(ctx, extra));
  return found.filter((i) => wanted.every(([k, v]) => i.labels?.[k] === v) && toMachine(i).tags['formwork.io/provider'] === ctx.providerName);
}

/** Every instance carrying the provider's tags, and its firewall rule. */
export async function listOwned(ctx: ProviderContext): Promise<OwnedResource[]> {
  const api = gceApi(ctx);
  const name = firewallName(ctx);
  const [instances, firewall] = await Promise.all([ownedInstances(api, ctx), api.get(`global/firewalls/${name}`, 'firewalls.get')]);
  return [
    ...instances.map((i) => ({ kind: 'machine', id: i.name, name: i.name, tags: toMachine(i).tags })),
    ...(firewall ? [{ kind: 'firewall', id: name, name, tags: providerTags(ctx) }] : []),
  ];
}

/** Deletes one resource `listOwned` returned; gone already is no error. Machines go through `deleteMachine`. */
export async function deleteOwned(resource: OwnedResource, ctx: ProviderContext, deleteMachine: (id: string) => Promise<void>): Promise<void> {
  if (resource.kind === 'machine') return deleteMachine(resource.id);
  if (resource.kind === 'firewall') return deleteFirewall(gceApi(ctx), resource.id);
  throw new FormworkError('PROVIDER_INVALID', `gce provider ${ctx.providerName} owns no resources of kind "${resource.kind}"`, { kind: resource.kind });
}
