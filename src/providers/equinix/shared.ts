/**
 * The provider's own resources and its checks: `check` (at apply) and `prepare` read the
 * project (a wrong token is PROVIDER_AUTH, an unknown project PROVIDER_INVALID naming
 * `settings.project`) and look the metro up among the API's (naming `settings.metro`);
 * `prepare` also adds the platform's key as a project SSH key labelled `formwork-<provider>`,
 * which `teardown` removes. `listOwned`/`deleteOwned` see the provider's devices (by their
 * tags) and its key (by its label: Metal keys carry no tags). Metal gives every device a
 * public address at build, so there is no address, group or firewall to own.
 *
 * @example
 *   await check(ctx); // PROVIDER_INVALID: provider m1: settings.metro "zz" is not a Metal metro; the metros are: da, sv, …
 */
import { FormworkError } from '../../core/errors.js';
import type { OwnedResource, ProviderCheckContext, ProviderContext } from '../provider.js';
import { metalApi, type MetalApi } from './api.js';
import { listMetros } from './catalog.js';
import { isOurs, keyLabel, ownershipTagsOf, providerTags } from './tags.js';
import type { MetalDevice, MetalProject, MetalSshKey } from './wire.js';

/**
 * The project id of a provider (`settings.project`, required by the schema).
 *
 * @example
 *   projectOf(ctx); // '3d27fd13-0466-4878-be22-9a4b5595a3df'
 */
export function projectOf(ctx: Pick<ProviderCheckContext, 'settings' | 'providerName'>): string {
  const p = ctx.settings.project;
  if (typeof p !== 'string' || !p) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.project is missing: set it to the Metal project id`, { setting: 'project' });
  return encodeURIComponent(p);
}

/** The driver's `check`: the token works, the project and the metro exist. Creates nothing. */
export async function check(ctx: ProviderCheckContext): Promise<void> {
  await checkProvider(ctx);
}

async function checkProvider(ctx: ProviderCheckContext): Promise<MetalApi> {
  const api = metalApi(ctx);
  const project = await api.get<MetalProject>(`/projects/${projectOf(ctx)}`, 'GetProject');
  if (!project) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.project "${String(ctx.settings.project)}" is not a project this token sees at ${api.baseUrl}: fix settings.project`, { setting: 'project' });
  const metro = ctx.settings.metro;
  if (typeof metro !== 'string' || !metro) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.metro is missing: set it to a Metal metro code (da, sv, am…)`, { setting: 'metro' });
  const metros = await listMetros(api);
  if (metros.length && !metros.some((m) => m.code.toLowerCase() === metro.toLowerCase())) {
    throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.metro "${metro}" is not a Metal metro; the metros are: ${metros.map((m) => m.code).join(', ')}`, { setting: 'metro' });
  }
  return api;
}

/** Checks the provider and adds its project SSH key (idempotent). */
export async function prepare(ctx: ProviderContext): Promise<void> {
  await checkProvider(ctx);
  await ensureKey(metalApi(ctx), ctx);
}

const keyBody = (k: string | undefined) => (k ?? '').trim().split(/\s+/).slice(0, 2).join(' ');

/** Every SSH key of the project. */
async function projectKeys(api: MetalApi, ctx: ProviderCheckContext): Promise<MetalSshKey[]> {
  return api.list<MetalSshKey>(`/projects/${projectOf(ctx)}/ssh-keys`, 'ssh_keys', 'ListSSHKeys');
}

/** The project's SSH keys labelled for this provider. */
async function ourKeys(api: MetalApi, ctx: ProviderCheckContext): Promise<MetalSshKey[]> {
  return (await projectKeys(api, ctx)).filter((k) => k.label === keyLabel(ctx));
}

const holdingPlatformKey = (keys: MetalSshKey[], ctx: ProviderContext) => keys.find((k) => keyBody(k.key) === keyBody(ctx.publicKey));

/**
 * The id of the project SSH key holding the platform's key, whatever its label (Metal
 * refuses to register a key twice: another provider of the project, or a person, may have
 * added it); else the provider's labelled key is replaced by one holding it.
 *
 * @example
 *   await ensureKey(api, ctx); // '2c1a7f23-…'
 */
export async function ensureKey(api: MetalApi, ctx: ProviderContext): Promise<string> {
  const keys = await projectKeys(api, ctx);
  const same = holdingPlatformKey(keys, ctx);
  if (same) return same.id;
  for (const k of keys.filter((k) => k.label === keyLabel(ctx))) {
    ctx.log.warn(`project SSH key ${k.id} (${keyLabel(ctx)}) holds another key than the platform's: replacing it`);
    await api.delete(`/ssh-keys/${encodeURIComponent(k.id)}`, 'DeleteSSHKey');
  }
  try {
    const made = await api.post<MetalSshKey>(`/projects/${projectOf(ctx)}/ssh-keys`, { label: keyLabel(ctx), key: ctx.publicKey.trim() }, 'CreateSSHKey', { idempotent: false });
    return made.id;
  } catch (e) {
    // A lost answer may have registered it, or another worker did meanwhile (then Metal's 422): look before failing.
    const made = holdingPlatformKey(await projectKeys(api, ctx), ctx);
    if (made) return made.id;
    throw e;
  }
}

/**
 * Every device of the project that is this provider's.
 *
 * @example
 *   (await ourDevices(api, ctx)).length;
 */
export async function ourDevices(api: MetalApi, ctx: ProviderCheckContext): Promise<MetalDevice[]> {
  return (await api.list<MetalDevice>(`/projects/${projectOf(ctx)}/devices`, 'devices', 'ListDevices')).filter((d) => d && typeof d.id === 'string' && isOurs(d, ctx));
}

/** Removes the provider's SSH key (its devices are deleted by their nodes first). */
export async function teardown(ctx: ProviderContext): Promise<void> {
  const api = metalApi(ctx);
  for (const k of await ourKeys(api, ctx)) await api.delete(`/ssh-keys/${encodeURIComponent(k.id)}`, 'DeleteSSHKey');
}

/** Everything the provider owns: its devices and its project SSH key. */
export async function listOwned(ctx: ProviderContext): Promise<OwnedResource[]> {
  const api = metalApi(ctx);
  const devices = (await ourDevices(api, ctx)).map((d): OwnedResource => ({ kind: 'machine', id: d.id, ...(d.hostname ? { name: d.hostname } : {}), tags: ownershipTagsOf(d) }));
  const keys = (await ourKeys(api, ctx)).map((k): OwnedResource => ({ kind: 'key-pair', id: k.id, name: keyLabel(ctx), tags: providerTags(ctx) }));
  return [...devices, ...keys];
}

/** Deletes one owned resource (a machine through `deleteMachine`, confirmed). */
export async function deleteOwned(resource: OwnedResource, ctx: ProviderContext, deleteMachine: (id: string) => Promise<void>): Promise<void> {
  if (resource.kind === 'machine') return deleteMachine(resource.id);
  if (resource.kind === 'key-pair') {
    await metalApi(ctx).delete(`/ssh-keys/${encodeURIComponent(resource.id)}`, 'DeleteSSHKey');
    return;
  }
  throw new FormworkError('PROVIDER_INVALID', `equinix provider ${ctx.providerName} owns no resources of kind "${resource.kind}"`, { kind: resource.kind });
}
