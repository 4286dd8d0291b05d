/**
 * The `gce` provider driver: Compute Engine instances over the REST API (api.ts), logged in
 * with a service-account key (auth.ts), with the catalog (catalog.ts), an access config as
 * the public path made inside the readiness wait (reachable.ts), the provider's firewall rule
 * and what it owns (shared.ts).
 *
 * A create first looks for the instance a retried create made (by the label holding its
 * token's hash), decides the public path before launch (a project that refused external
 * addresses is refused here), then inserts with a `requestId` derived from the token (so the
 * call policy may retry it: Compute answers a repeated requestId with the first operation),
 * the `ssh-keys` metadata (`<login user>:<platform key>`, with `enable-oslogin: FALSE`), the
 * network tag the firewall targets, labels for ownership and the exact tags in metadata. It
 * waits for the insert's operation: one that ends in error after the insert was accepted
 * (`ZONE_RESOURCE_POOL_EXHAUSTED`) is a late failure, and the instance is deleted before the
 * error goes on with its reason; a retried create answered that failed operation again inserts
 * with a requestId derived from its name. An instance reading OS Login on in effect (the
 * organisation policy constraints/compute.requireOsLogin ignores its enable-oslogin FALSE) is
 * deleted and the create refused. A delete is confirmed by reading back.
 *
 * @example
 *   const driver = await loadDriver('gce');
 *   const m = await driver.createMachine(spec, ctx); // { state: 'booting', addresses: [private networkIP], … }
 */
import type { NodeDecision } from '../../core/decisions.js';
import { FormworkError, isFormworkError } from '../../core/errors.js';
import type { MachineSpec, ProviderContext, ProviderDriver, ProvisionedMachine } from '../provider.js';
import { confirmGone } from '../readiness.js';
import { gceApi, type GceApi, type GceOperation } from './api.js';
import { bootChoice, listImages, listNetworks, listSizes, listZones, networkName } from './catalog.js';
import { isNotFound } from './errors.js';
import { firewallName, gceLabels, instanceName, META, requestIdFor, SSH_NETWORK_TAG, TOKEN_LABEL, tokenLabel } from './labels.js';
import { toMachine, type GceInstance } from './machines.js';
import { makeReachable, privateOnly, refusedPublicPath, undoReachable } from './reachable.js';
import { check, deleteOwned, listOwned, ownedInstances, prepare, teardown } from './shared.js';

/** How long a deleted instance is read back before its delete counts as stuck (tests set it lower). */
export const deleteConfirm = { ms: 180_000 };

/** How many earlier failed inserts of one token a create walks past (each retry of a late failure adds one). */
const MAX_FAILED_INSERTS_FOLLOWED = 10;

const instancePath = (api: GceApi, name: string) => `zones/${api.zone}/instances/${encodeURIComponent(name)}`;

async function createMachine(spec: MachineSpec, ctx: ProviderContext): Promise<ProvisionedMachine> {
  if (!spec.name.trim()) throw new FormworkError('PROVIDER_INVALID', 'a machine needs a name (Compute Engine refuses an empty one)', { nodeId: spec.nodeId });
  const api = gceApi(ctx);
  if (spec.zone && spec.zone !== api.zone) throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName} makes machines in its settings.zone ${api.zone}, not ${spec.zone}: use a provider of that zone`, { zone: spec.zone, setting: 'settings.zone' });
  const [existing] = await ownedInstances(api, ctx, { [TOKEN_LABEL]: tokenLabel(spec.idempotencyToken) });
  if (existing) return toMachine(existing);
  const refused = refusedPublicPath(ctx);
  if (refused && !privateOnly(ctx)) {
    throw new FormworkError('PROVIDER_INVALID', `provider ${ctx.providerName}: no public path for a new machine, decided before launch: ${refused}; allow external addresses for the project in the organisation policy, or set settings.externalAccess: none with the control plane inside the VPC`, { setting: 'settings.externalAccess' });
  }

  const project = (await api.get<{ commonInstanceMetadata?: { items?: Array<{ key: string; value?: string }> } }>('', 'projects.get')) ?? {};
  const projectMeta = (k: string) => project.commonInstanceMetadata?.items?.find((i) => i.key === k)?.value?.toUpperCase();
  const choice = await bootChoice(api, spec, ctx);
  const user = choice.loginUsers.users[0] ?? 'formwork';
  const name = instanceName(spec.name, spec.idempotencyToken);
  const network = networkName(ctx);
  const sourceImage = choice.image.nativeId.includes('/') ? choice.image.nativeId : `global/images/${choice.image.nativeId}`;
  const decisions: NodeDecision[] = [
    { subject: 'login-users', chosen: choice.loginUsers.users.join(','), reason: choice.loginUsers.reason },
    { subject: 'ssh-key', chosen: `ssh-keys ${user}`, reason: `instance metadata ssh-keys "${user}:<platform key>" (the guest agent makes the user), enable-oslogin FALSE on the instance${projectMeta('enable-oslogin') === 'TRUE' ? " over the project's enable-oslogin TRUE" : ''}${projectMeta('block-project-ssh-keys') === 'TRUE' ? "; instance keys are not blocked by the project's block-project-ssh-keys" : ''}` },
    { subject: 'network', chosen: network, reason: ctx.settings.network ? 'settings.network' : 'the default network ("default"; settings.network unset)' },
    { subject: 'firewall', chosen: firewallName(ctx), reason: `the provider's rule allowing TCP/22 to network tag ${SSH_NETWORK_TAG} (made by prepare)` },
    privateOnly(ctx)
      ? { subject: 'address-path', chosen: 'private', reason: 'settings.externalAccess is none: no external address; the control plane reaches the VPC address' }
      : { subject: 'address-path', chosen: 'access-config', reason: 'an ONE_TO_ONE_NAT access config added once the instance runs (instances are made without an external address)' },
  ];
  const items: Record<string, string> = {
    'ssh-keys': `${user}:${ctx.publicKey.trim()}`,
    'enable-oslogin': 'FALSE',
    [META.tags]: JSON.stringify(spec.tags),
    [META.token]: spec.idempotencyToken,
    [META.size]: choice.size.normalized,
    [META.image]: choice.image.normalized,
    [META.imageNative]: choice.image.nativeId,
    [META.loginUsers]: choice.loginUsers.users.join(','),
    [META.decisions]: JSON.stringify(decisions),
  };
  const body = {
    name,
    machineType: `zones/${api.zone}/machineTypes/${choice.size.nativeId}`,
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage } }],
    networkInterfaces: [{ network: `global/networks/${network}`, ...(typeof ctx.settings.subnetwork === 'string' ? { subnetwork: ctx.settings.subnetwork.includes('/') ? ctx.settings.subnetwork : `regions/${api.zone.replace(/-[a-z]$/, '')}/subnetworks/${ctx.settings.subnetwork}` } : {}) }],
    metadata: { items: Object.entries(items).map(([key, value]) => ({ key, value })) },
    labels: { ...gceLabels(spec.tags), [TOKEN_LABEL]: tokenLabel(spec.idempotencyToken) },
    tags: { items: [SSH_NETWORK_TAG] },
  };

  // The requestId is derived from the token, so the policy's retries of this insert are one insert. Compute
  // answers a requestId it has seen with that first operation (for an hour at least): an operation answered
  // already DONE with an error is an earlier attempt's late failure (its instance deleted), so the next
  // requestId is derived from its name and the insert made again; likewise when the instance is missing
  // after a DONE insert (a failed attempt of this create deleted what it made), once.
  let requestId = requestIdFor(spec.idempotencyToken);
  let remade = 0;
  for (let followed = 0; ; ) {
    let op: GceOperation;
    try {
      op = await api.call<GceOperation>('instances.insert', 'POST', `zones/${api.zone}/instances`, body, { query: { requestId }, idempotent: true });
    } catch (e) {
      // The name is derived from the token: an instance of that name is this create's, made by an answer that was lost.
      if (isFormworkError(e) && e.code === 'CONFLICT') {
        const made = await api.get<GceInstance>(instancePath(api, name), 'instances.get');
        if (made) return toMachine(made);
      }
      await deleteQuietly(api, ctx, name);
      throw osLoginRefusal(e, ctx) ?? e;
    }
    if (op.status === 'DONE' && op.error?.errors?.length && followed++ < MAX_FAILED_INSERTS_FOLLOWED) {
      requestId = requestIdFor(`${spec.idempotencyToken}:${op.name}`);
      continue;
    }
    let inst: GceInstance | undefined;
    try {
      await api.waitOperation(op, `insert of instance ${name}`);
      inst = await api.get<GceInstance>(instancePath(api, name), 'instances.get');
    } catch (e) {
      await deleteQuietly(api, ctx, name);
      throw e;
    }
    // OS Login on in effect despite the instance's FALSE (constraints/compute.requireOsLogin, which refuses no insert): the keys do nothing.
    if (inst?.resourceStatus?.effectiveInstanceMetadata?.enableOsloginMetadataValue === true) {
      await deleteQuietly(api, ctx, name);
      throw osLoginRequired(ctx, `instance ${name} has OS Login on in effect (resourceStatus.effectiveInstanceMetadata) despite its enable-oslogin FALSE`);
    }
    if (inst) return { ...toMachine(inst), size: { normalized: choice.size.normalized, native: choice.size.nativeId }, image: { normalized: choice.image.normalized, native: choice.image.nativeId } };
    if (remade++ >= 1) throw new FormworkError('MACHINE_FAILED', `instance ${name} disappeared right after its insert was done`, { nativeId: name });
    requestId = requestIdFor(`${spec.idempotencyToken}:${op.name}`);
  }
}

/** A refusal of the insert because the project requires OS Login, as PROVIDER_INVALID naming the fix; undefined for any other error. */
function osLoginRefusal(e: unknown, ctx: ProviderContext): FormworkError | undefined {
  if (!isFormworkError(e) || !/requireOsLogin|OS Login/i.test(e.message)) return undefined;
  return osLoginRequired(ctx, e.message, e);
}

/** The project requires OS Login, which ignores the ssh-keys metadata Formwork logs in with: PROVIDER_INVALID naming the fix. */
function osLoginRequired(ctx: ProviderContext, evidence: string, cause?: unknown): FormworkError {
  return new FormworkError(
    'PROVIDER_INVALID',
    `provider ${ctx.providerName}: the project requires OS Login (constraints/compute.requireOsLogin), which ignores the ssh-keys metadata Formwork logs in with: lift the constraint for this project (or allow the instance-level enable-oslogin FALSE), or use a project without it (${evidence})`,
    { provider: ctx.providerName, setting: 'settings.project' },
    cause === undefined ? {} : { cause },
  );
}

/** Deletes what a failed create may have made (nothing is no error); a failure to delete is logged, the create's error is what is reported. */
async function deleteQuietly(api: GceApi, ctx: ProviderContext, name: string): Promise<void> {
  try {
    await deleteInstance(api, name);
  } catch (e) {
    ctx.log.warn(`instance ${name}: deleting it after a failed create failed; it is listed as an orphan until deleted`, { nativeId: name, error: e instanceof Error ? e.message : String(e) });
  }
}

async function deleteInstance(api: GceApi, name: string): Promise<void> {
  try {
    const op = await api.call<GceOperation>('instances.delete', 'DELETE', instancePath(api, name), undefined, { query: { requestId: requestIdFor(`${name}:${Date.now()}`, 'delete') }, idempotent: true });
    await api.waitOperation(op, `delete of instance ${name}`);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  await confirmGone(`instance ${name}`, name, async () => (await api.get<GceInstance>(instancePath(api, name), 'instances.get'))?.status, deleteConfirm.ms);
}

async function getMachine(nativeId: string, ctx: ProviderContext): Promise<ProvisionedMachine | undefined> {
  const api = gceApi(ctx);
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(nativeId)) return undefined; // not an instance name: none of ours
  const inst = await api.get<GceInstance>(instancePath(api, nativeId), 'instances.get');
  return inst && toMachine(inst);
}

async function listMachines(ctx: ProviderContext): Promise<ProvisionedMachine[]> {
  const api = gceApi(ctx);
  return (await ownedInstances(api, ctx)).map(toMachine);
}

async function deleteMachine(nativeId: string, ctx: ProviderContext): Promise<void> {
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(nativeId)) return;
  await deleteInstance(gceApi(ctx), nativeId);
}

/** The `gce` driver (see the file's comment). */
export const gceDriver: ProviderDriver = {
  type: 'gce',
  check,
  prepare,
  createMachine,
  getMachine,
  listMachines,
  deleteMachine,
  teardown,
  listSizes: (ctx) => listSizes(gceApi(ctx)),
  listImages: (ctx) => listImages(gceApi(ctx), ctx),
  listZones: (ctx) => listZones(gceApi(ctx)),
  listNetworks: (ctx) => listNetworks(gceApi(ctx), ctx),
  makeReachable,
  undoReachable,
  listOwned,
  deleteOwned: (resource, ctx) => deleteOwned(resource, ctx, (id) => deleteMachine(id, ctx)),
};
