/**
 * The `equinix` provider driver: Equinix Metal devices (the Packet API) in one project and
 * metro, on any API-compatible endpoint (`settings.baseUrl`).
 *
 * Creating a device is not idempotent on this API (it takes no client token), so a create
 * first looks for a device of the project carrying the node's token tag, and after a failed
 * or lost answer looks again before trying once more: a retried create never makes a second
 * device. The POST itself runs under the call policy as not idempotent (only a throttled
 * refusal, which did nothing, is repeated blindly). A device carries the ownership tags as
 * `key=value` tags, and the token, tags and what was decided in its `customdata`.
 *
 * Metal builds can take longer than 30 minutes (the readiness wait is the operator's:
 * `settings.readinessTimeoutSeconds`); a build that fails (`failed`) is deleted when seen and
 * reported as `error`; a device that answers 404 (or 403) after a failed build was moved away by
 * Metal and is treated as gone. Every device gets a public address at build, so there is no
 * make-reachable step. No host key is offered: the yardstick trusts on first use.
 *
 * @example
 *   const driver = await loadDriver('equinix');
 *   const m = await driver.createMachine(spec, ctx); // { state: 'booting', addresses: [...], … }
 */
import { FormworkError, isFormworkError } from '../../core/errors.js';
import type { MachineSpec, ProviderContext, ProviderDriver, ProvisionedMachine } from '../provider.js';
import { bootPoll, confirmGone } from '../readiness.js';
import { metalApi, type MetalApi } from './api.js';
import { bootChoice, listImages, listSizes, listZones } from './catalog.js';
import { toMachine } from './machines.js';
import { check, deleteOwned, ensureKey, listOwned, ourDevices, prepare, projectOf, teardown } from './shared.js';
import { CUSTOMDATA_KEY, deviceTags, tokenOf, type DeviceRecord } from './tags.js';
import type { MetalDevice } from './wire.js';

/** How long a deleted device is read back before its delete counts as stuck (tests set it lower). */
export const deleteConfirm = { ms: 600_000 };
/**
 * How long a create waits for Metal to assign the new device's addresses (it answers
 * `queued` with none, and assigns them as provisioning starts): the machine is returned with
 * its control address when it has one by then, else as it is (tests set it lower).
 */
export const addressWait = { ms: 60_000 };
/** How many times a create whose answer failed is looked for and tried again. */
export const CREATE_ATTEMPTS = 4;

// RFC 1123 host names, as Metal validates `hostname`.
const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** On /devices/{id}, a 403 is a failed device Metal moved away: gone (api.ts, MetalGoneOptions). */
const DEVICE_GONE = { forbiddenMeansGone: true };

async function findByToken(api: MetalApi, ctx: ProviderContext, token: string): Promise<MetalDevice | undefined> {
  return (await ourDevices(api, ctx)).find((d) => tokenOf(d) === token);
}

async function createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
  if (!HOSTNAME.test(spec.name)) throw new FormworkError('PROVIDER_INVALID', `"${spec.name}" is not a host name Metal accepts (letters, digits and hyphens, dot-separated)`, { nodeId: spec.nodeId, name: spec.name });
  const metro = ctx.settings.metro;
  if (typeof metro !== 'string' || !metro) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: settings.metro is missing`, { setting: 'metro' });
  const api = metalApi(ctx);
  const existing = await findByToken(api, ctx, spec.idempotencyToken);
  if (existing) return readDevice(api, ctx, existing);

  const choice = await bootChoice(api, spec, ctx);
  const keyId = await ensureKey(api, ctx);
  const record: DeviceRecord = { idempotencyToken: spec.idempotencyToken, tags: spec.tags, size: choice.size.normalized, image: choice.image.normalized, loginUsers: choice.loginUsers.users, loginUsersReason: choice.loginUsers.reason };
  const body = {
    hostname: spec.name,
    plan: choice.size.nativeId,
    metro: spec.zone ?? metro,
    operating_system: choice.image.nativeId,
    billing_cycle: typeof ctx.settings.billingCycle === 'string' ? ctx.settings.billingCycle : 'hourly',
    tags: deviceTags(spec.tags, spec.idempotencyToken),
    customdata: { [CUSTOMDATA_KEY]: record },
    project_ssh_keys: [keyId],
  };
  let device: MetalDevice | undefined;
  for (let attempt = 1; !device; attempt++) {
    try {
      device = await api.post<MetalDevice>(`/projects/${projectOf(ctx)}/devices`, body, 'CreateDevice', { idempotent: false });
    } catch (e) {
      // A 5xx or a lost answer may have made the device: look before trying again.
      if (!isFormworkError(e) || !e.retryable) throw e;
      device = await findByToken(api, ctx, spec.idempotencyToken);
      if (device) break;
      if (attempt >= CREATE_ATTEMPTS) throw e;
      ctx.log.warn(`provider ${ctx.providerName}: creating device ${spec.name} failed (${e.message}) and none carries its token: trying again`);
    }
  }
  device = await withAddresses(api, device);
  const m = await readDevice(api, ctx, device);
  return { ...m, size: { normalized: choice.size.normalized, native: choice.size.nativeId }, image: { normalized: choice.image.normalized, native: choice.image.nativeId } };
}

/** The device once it has addresses, it left the build, or `addressWait` passed. */
async function withAddresses(api: MetalApi, first: MetalDevice): Promise<MetalDevice> {
  const deadline = Date.now() + addressWait.ms;
  let d = first;
  while (!d.ip_addresses?.length && (d.state === 'queued' || d.state === 'provisioning') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, bootPoll.ms));
    const again = await api.get<MetalDevice>(`/devices/${encodeURIComponent(d.id)}`, 'GetDevice');
    if (!again) break;
    d = again;
  }
  return d;
}

/** A device as a machine; a failed build is deleted when seen (it can never run), and reported as `error`. */
async function readDevice(api: MetalApi, ctx: ProviderContext, d: MetalDevice): Promise<ProvisionedMachine> {
  const m = toMachine(d);
  if (d.state !== 'failed') return m;
  try {
    await api.delete(`/devices/${encodeURIComponent(d.id)}`, 'DeleteDevice');
    ctx.log.warn(`provider ${ctx.providerName}: device ${d.id} failed its build: deleted it`);
    return { ...m, inventory: { ...m.inventory, fault: 'the device build failed (state failed); the device was deleted' } };
  } catch (e) {
    ctx.log.warn(`provider ${ctx.providerName}: device ${d.id} failed its build and deleting it failed (${e instanceof Error ? e.message : String(e)}); it is deleted with its node`);
    return m;
  }
}

async function getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
  const api = metalApi(ctx);
  // A 404 is a device never made, deleted, or moved away after a failed build (which may answer 403): gone, all three.
  const d = await api.get<MetalDevice>(`/devices/${encodeURIComponent(nativeId)}`, 'GetDevice', DEVICE_GONE);
  if (!d || typeof d.id !== 'string') return undefined;
  return readDevice(api, ctx, d);
}

async function listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
  return (await ourDevices(metalApi(ctx), ctx)).map(toMachine);
}

/** Metal's `422 Cannot delete a device while it is provisioning` (redhat-cop/agnosticd#4307). */
const refusedWhileProvisioning = (e: unknown) => isFormworkError(e) && e.details?.status === 422 && /while it is provisioning/i.test(e.message);

/**
 * Deletes a device; one Metal refuses to delete while its build runs is waited for until it
 * leaves queued/provisioning (within `deleteConfirm`), then deleted: a readiness timeout on a
 * slow build must not leave a billed device.
 */
async function deleteWhenBuilt(api: MetalApi, ctx: ProviderContext, path: string, nativeId: string): Promise<void> {
  const deadline = Date.now() + deleteConfirm.ms;
  for (;;) {
    try {
      await api.delete(path, 'DeleteDevice', DEVICE_GONE);
      return;
    } catch (e) {
      if (!refusedWhileProvisioning(e) || Date.now() > deadline) throw e;
      ctx.log.info(`provider ${ctx.providerName}: device ${nativeId} is still being built: deleting it once its build ends`);
    }
    for (;;) {
      await new Promise((r) => setTimeout(r, bootPoll.ms));
      const d = await api.get<MetalDevice>(path, 'GetDevice', DEVICE_GONE);
      if (!d) return;
      if ((d.state !== 'queued' && d.state !== 'provisioning') || Date.now() > deadline) break;
    }
  }
}

async function deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
  const api = metalApi(ctx);
  const path = `/devices/${encodeURIComponent(nativeId)}`;
  await deleteWhenBuilt(api, ctx, path, nativeId);
  await confirmGone(`device ${nativeId}`, nativeId, async () => (await api.get<MetalDevice>(path, 'GetDevice', DEVICE_GONE))?.state, deleteConfirm.ms);
}

/** The `equinix` driver (see the file's comment). */
export const equinixDriver: ProviderDriver = {
  type: 'equinix',
  check,
  prepare,
  createMachine,
  getMachine,
  listMachines,
  deleteMachine,
  teardown,
  listSizes: async (ctx) => listSizes(metalApi(ctx)),
  listImages: async (ctx) => listImages(metalApi(ctx)),
  listZones: async (ctx) => listZones(metalApi(ctx)),
  listOwned,
  deleteOwned: (resource, ctx) => deleteOwned(resource, ctx, (id) => deleteMachine(id, ctx)),
};
