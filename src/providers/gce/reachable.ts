/**
 * The public path to an instance, inside the readiness wait (../readiness.ts): an access
 * config (ONE_TO_ONE_NAT, an ephemeral external address) added to its first interface by
 * `makeReachable` and deleted by `undoReachable`, confirmed by reading back. An instance that
 * already has one keeps it (a retry makes nothing more).
 *
 * No public path: with `settings.externalAccess: none` none is made (the control plane is in
 * the VPC and uses the private address, which the TCP/22 probe then proves); an organisation
 * policy refusing external addresses (`constraints/compute.vmExternalIpAccess`) is a
 * PROVIDER_INVALID saying so and naming the fix, and is remembered, so the next create of the
 * provider is refused before anything is launched (`refusedPublicPath`) for a while
 * (`refusalMemory`), after which a launch tries again.
 *
 * @example
 *   const reachable = await makeReachable(machine, ctx); // its natIP as a public address
 *   await undoReachable(machine, ctx);
 */
import { randomUUID } from 'node:crypto';
import { FormworkError, isFormworkError } from '../../core/errors.js';
import type { ProviderContext, ProvisionedMachine } from '../provider.js';
import { bootPoll } from '../readiness.js';
import { gceApi, type GceApi, type GceOperation } from './api.js';
import { hostKeyOf } from './host-key.js';
import { toMachine, type GceInstance } from './machines.js';

/** The name of the access config the driver adds. */
export const ACCESS_CONFIG_NAME = 'External NAT';

/** Providers whose project refused an external address, why and when (decided before the next launch). */
const refusals = new Map<string, { why: string; at: number }>();

/** How long a refusal is remembered: a policy lifted meanwhile is found again by the next launch after it (tests set it). */
export const refusalMemory = { ms: 15 * 60_000 };

/**
 * Why the provider has no public path, when a refusal was seen or the settings say so; undefined when it has one.
 *
 * @example
 *   refusedPublicPath(ctx); // 'the organisation policy constraints/compute.vmExternalIpAccess refused …'
 */
export function refusedPublicPath(ctx: Pick<ProviderContext, 'providerName'>): string | undefined {
  const r = refusals.get(ctx.providerName);
  if (r && Date.now() - r.at > refusalMemory.ms) refusals.delete(ctx.providerName);
  return r && Date.now() - r.at <= refusalMemory.ms ? r.why : undefined;
}

/** @internal: tests start from no refusals. */
export function forgetRefusals(): void {
  refusals.clear();
}

/**
 * Whether the settings ask for no external address (`settings.externalAccess: none`).
 *
 * @example
 *   privateOnly({ settings: { externalAccess: 'none' } }); // true
 */
export function privateOnly(ctx: Pick<ProviderContext, 'settings'>): boolean {
  return ctx.settings.externalAccess === 'none';
}

async function readInstance(api: GceApi, name: string): Promise<GceInstance | undefined> {
  return api.get<GceInstance>(`zones/${api.zone}/instances/${encodeURIComponent(name)}`, 'instances.get');
}

/** The machine given an access config (see the file's comment). */
export async function makeReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<ProvisionedMachine> {
  const api = gceApi(ctx);
  const inst = await readInstance(api, machine.nativeId);
  if (!inst) throw new FormworkError('MACHINE_FAILED', `instance ${machine.nativeId} is gone`, { nativeId: machine.nativeId });
  const current = withHostKey(toMachine(inst), await hostKeyOf(api, inst));
  const decisions = current.decisions ?? [];
  const nic = inst.networkInterfaces?.[0];
  const existing = nic?.accessConfigs?.find((a) => a.natIP);
  if (existing) return { ...current, decisions: [...decisions, { subject: 'address', chosen: existing.natIP!, reason: `access config "${existing.name ?? ''}" already on ${nic?.name ?? 'nic0'} (networkInterfaces[0].accessConfigs[].natIP)` }] };
  if (privateOnly(ctx)) {
    const priv = current.addresses.find((a) => a.role === 'private');
    return { ...current, decisions: [...decisions, { subject: 'address', chosen: priv?.address ?? 'none', reason: 'no external address: settings.externalAccess is none, so the control plane reaches the VPC address (proved by TCP/22)' }] };
  }
  const refused = refusedPublicPath(ctx);
  if (refused) throw noPublicPath(ctx, machine.nativeId, refused);
  const nicName = nic?.name ?? 'nic0';
  const requestId = randomUUID(); // the same for this call's retries only: a later add after an undo is a new one
  let op: GceOperation;
  try {
    op = await api.call<GceOperation>('instances.addAccessConfig', 'POST', `zones/${api.zone}/instances/${encodeURIComponent(inst.name)}/addAccessConfig`, { kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: ACCESS_CONFIG_NAME, networkTier: 'PREMIUM' }, { query: { networkInterface: nicName, requestId }, idempotent: true });
    await api.waitOperation(op, `adding an access config to ${inst.name}`);
  } catch (e) {
    if (isExternalIpPolicy(e)) {
      const why = `the organisation policy constraints/compute.vmExternalIpAccess refuses external addresses in project ${api.project} (${(e as Error).message})`;
      refusals.set(ctx.providerName, { why, at: Date.now() });
      throw noPublicPath(ctx, inst.name, why);
    }
    throw e;
  }
  const after = await readInstance(api, inst.name);
  if (!after) throw new FormworkError('MACHINE_FAILED', `instance ${inst.name} disappeared while its access config was added`, { nativeId: inst.name });
  const made = toMachine(after);
  const nat = made.addresses.find((a) => a.role === 'public');
  // The address may show a moment after the operation: the readiness wait tries again.
  if (!nat) throw new FormworkError('PROVIDER_ERROR', `instance ${inst.name}: the access config was added but has no natIP yet`, { nativeId: inst.name }, { retryable: true });
  return { ...withHostKey(made, current.hostKey), decisions: [...decisions, { subject: 'address', chosen: nat.address, reason: `an ONE_TO_ONE_NAT access config "${ACCESS_CONFIG_NAME}" added to ${nicName}: the instance had no external address (networkInterfaces[0].accessConfigs empty)` }] };
}

/** Deletes the instance's access configs, confirmed by reading back; nothing to delete is no error. */
export async function undoReachable(machine: ProvisionedMachine, ctx: ProviderContext): Promise<void> {
  const api = gceApi(ctx);
  const inst = await readInstance(api, machine.nativeId);
  if (!inst) return;
  for (const nic of inst.networkInterfaces ?? []) {
    for (const ac of nic.accessConfigs ?? []) {
      const op = await api.call<GceOperation>('instances.deleteAccessConfig', 'POST', `zones/${api.zone}/instances/${encodeURIComponent(inst.name)}/deleteAccessConfig`, undefined, { query: { accessConfig: ac.name ?? ACCESS_CONFIG_NAME, networkInterface: nic.name ?? 'nic0', requestId: randomUUID() }, idempotent: true });
      await api.waitOperation(op, `deleting the access config of ${inst.name}`);
    }
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    const again = await readInstance(api, inst.name);
    if (!again || !(again.networkInterfaces ?? []).some((n) => n.accessConfigs?.length)) return;
    if (Date.now() > deadline) throw new FormworkError('PROVIDER_ERROR', `instance ${inst.name} still has an access config 60 s after its delete was accepted`, { nativeId: inst.name }, { retryable: true });
    await new Promise((r) => setTimeout(r, bootPoll.ms));
  }
}

function withHostKey(m: ProvisionedMachine, hostKey: string | undefined): ProvisionedMachine {
  return hostKey ? { ...m, hostKey } : m;
}

function isExternalIpPolicy(e: unknown): boolean {
  return isFormworkError(e) && /vmExternalIpAccess/.test(e.message);
}

function noPublicPath(ctx: ProviderContext, name: string, why: string): FormworkError {
  return new FormworkError(
    'PROVIDER_INVALID',
    `instance ${name} has no public path: ${why}; allow external addresses for this project in the organisation policy, or run the control plane inside the VPC and set settings.externalAccess: none`,
    { nativeId: name, provider: ctx.providerName, setting: 'settings.externalAccess' },
  );
}
