/**
 * The provider side of the readiness wait, run by `provision`: a booting machine is waited
 * for, and once it runs, the driver's `makeReachable` gives it the path the control plane
 * reaches it by (an Elastic IP, an access config, a floating IP) and the wait goes on until
 * TCP/22 answers on the control address — the proof that the path works, recorded as the
 * address's reason. When the wait fails or runs out, what `makeReachable` made is released
 * (`undoReachable`) before the error goes on, and a machine is always released before it is
 * deleted (`releaseMachine`): nothing is leaked, whatever the cloud. Drivers without
 * `makeReachable` (lab, static) are waited for until running only; the yardstick's
 * `node-ready` waits for their SSH.
 *
 * @example
 *   const ready = await awaitReadiness(driver, machine, ctx, { waitSeconds: 900, log: io.log });
 *   await releaseMachine(driver, ready, ctx); // undoReachable, then deleteMachine
 */
import { controlAddress } from '../core/addresses.js';
import { FormworkError, toFormworkError } from '../core/errors.js';
import { waitForPort } from '../ssh/probe.js';
import type { ProviderContext, ProviderDriver, ProvisionedMachine } from './provider.js';

/** How often a booting machine is looked at, and a refused make-reachable retried (tests set it lower). */
export const bootPoll = { ms: 2_000 };

/**
 * How the control plane proves a made-reachable machine answers: a TCP connect retried until
 * the deadline (an absolute `Date.now()` time), throwing when it passes. Tests replace it, since
 * their machines have no sockets.
 */
export const readinessProbe = {
  tcp: (host: string, port: number, deadlineMs: number): Promise<void> => waitForPort(host, port, deadlineMs, { intervalMs: 500 }),
};

/** How long to wait and where to say what happens. @example { waitSeconds: 900, log: io.log, signal: io.signal } */
export interface ReadinessOptions {
  waitSeconds: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** The readiness timeout: the provider's `settings.readinessTimeoutSeconds` when set, else `fallbackSeconds`. @example readinessSeconds(ctx, 900); // 600 with settings.readinessTimeoutSeconds: 600 */
export function readinessSeconds(ctx: ProviderContext, fallbackSeconds: number): number {
  const v = ctx.settings.readinessTimeoutSeconds;
  return typeof v === 'number' && v > 0 ? v : fallbackSeconds;
}

/** Waits for `first` to run and makes it reachable; on failure, releases what was made for reachability and throws. */
export async function awaitReadiness(driver: ProviderDriver, first: ProvisionedMachine, ctx: ProviderContext, opts: ReadinessOptions): Promise<ProvisionedMachine> {
  const deadline = Date.now() + opts.waitSeconds * 1000;
  try {
    const running = await waitWhileBooting(driver, first, ctx, opts, deadline);
    if (!driver.makeReachable) return running;
    return await proveReachable(await makeReachableWithin(driver, running, ctx, opts, deadline), opts, deadline);
  } catch (e) {
    await undoQuietly(driver, first, ctx, opts, e);
    throw e;
  }
}

/**
 * Whether an error is the readiness timeout running out (still booting, or TCP/22 never
 * answering): the machine is then given up (released and deleted) rather than waited for again.
 *
 * @example
 *   if (readinessExpired(err)) await releaseMachine(driver, machine, ctx);
 */
export function readinessExpired(e: unknown): boolean {
  return e instanceof FormworkError && e.details?.readinessExpired === true;
}

/**
 * Reads a deleted resource back until it is gone (a cloud that accepts a delete may take a
 * while, or fail to do it): `stillThere` answers the state it is in, or undefined once gone.
 * Past `withinMs`, a retryable PROVIDER_ERROR saying what is stuck. Every driver's delete
 * ends with it, so "deleted" means read back as gone.
 *
 * @example
 *   await confirmGone(`server ${id}`, id, async () => (await nova.getServer(id))?.status, 180_000);
 */
export async function confirmGone(what: string, nativeId: string, stillThere: () => Promise<string | undefined>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const state = await stillThere();
    if (state === undefined) return;
    if (Date.now() > deadline) throw new FormworkError('PROVIDER_ERROR', `${what} still exists (${state}) ${withinMs / 1000} s after its delete was accepted`, { nativeId }, { retryable: true });
    await new Promise((r) => setTimeout(r, bootPoll.ms));
  }
}

/** Releases what was made to reach the machine, then deletes it (both idempotent). */
export async function releaseMachine(driver: ProviderDriver, machine: ProvisionedMachine | string, ctx: ProviderContext): Promise<void> {
  const m = typeof machine === 'string' ? await driver.getMachine(machine, ctx) : machine;
  if (m && driver.undoReachable) await driver.undoReachable(m, ctx);
  await driver.deleteMachine(typeof machine === 'string' ? machine : machine.nativeId, ctx);
}

async function waitWhileBooting(driver: ProviderDriver, first: ProvisionedMachine, ctx: ProviderContext, opts: ReadinessOptions, deadline: number): Promise<ProvisionedMachine> {
  if (first.state === 'booting') opts.log(`machine ${first.nativeId} is booting: waiting up to ${opts.waitSeconds} s\n`);
  let m: ProvisionedMachine | undefined = first;
  while (m && m.state === 'booting') {
    if (Date.now() > deadline) {
      throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} is still booting after ${opts.waitSeconds} s (the readiness timeout)`, { nativeId: first.nativeId, readinessExpired: true });
    }
    await pause(opts.signal);
    m = await driver.getMachine(first.nativeId, ctx);
  }
  if (!m) throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} disappeared while booting`, { nativeId: first.nativeId });
  if (m.state !== 'running') throw new FormworkError('MACHINE_FAILED', `machine ${first.nativeId} went to ${m.state} while booting${m.stateReason ? `: ${m.stateReason}` : ''}`, { nativeId: first.nativeId, state: m.state, ...(m.stateReason ? { reason: m.stateReason } : {}) });
  return m;
}

// A cloud may refuse an address for a machine it has only just reported running (EC2's
// IncorrectInstanceState): a retryable refusal is tried again until the deadline.
async function makeReachableWithin(driver: ProviderDriver, m: ProvisionedMachine, ctx: ProviderContext, opts: ReadinessOptions, deadline: number): Promise<ProvisionedMachine> {
  for (;;) {
    try {
      const reachable = await driver.makeReachable!(m, ctx);
      const added = reachable.addresses.filter((a) => !m.addresses.some((b) => b.address === a.address));
      if (added.length) opts.log(`machine ${m.nativeId} made reachable: ${added.map((a) => `${a.address} (${a.role}${a.reason ? `: ${a.reason}` : ''})`).join(', ')}\n`);
      return reachable;
    } catch (e) {
      const err = toFormworkError(e);
      if (!err.retryable || Date.now() > deadline) throw e;
      opts.log(`machine ${m.nativeId}: making it reachable failed (${err.message}); trying again\n`);
      await pause(opts.signal, err.nextDelayMs);
    }
  }
}

async function proveReachable(m: ProvisionedMachine, opts: ReadinessOptions, deadline: number): Promise<ProvisionedMachine> {
  const host = controlAddress(m.addresses);
  // A running machine with no address (an OpenStack server ACTIVE without one) is a failure, not a wait.
  if (!host) throw new FormworkError('MACHINE_FAILED', `machine ${m.nativeId} is running with no address the control plane can use`, { nativeId: m.nativeId });
  const port = sshPort(m);
  try {
    await readinessProbe.tcp(host, port, deadline);
  } catch (e) {
    throw new FormworkError('MACHINE_FAILED', `machine ${m.nativeId}: TCP/${port} on ${host} did not answer within ${opts.waitSeconds} s, the readiness timeout (${toFormworkError(e).message})`, { nativeId: m.nativeId, host, port, readinessExpired: true }, { cause: e });
  }
  opts.log(`machine ${m.nativeId}: TCP/${port} answered on ${host}\n`);
  const proof = `TCP/${port} answered from the control plane`;
  return { ...m, addresses: m.addresses.map((a) => (a.address === host ? { ...a, reason: a.reason ? `${a.reason}; ${proof}` : proof } : a)) };
}

const sshPort = (m: ProvisionedMachine) => {
  const p = Number(m.inventory?.sshPort ?? 22);
  return Number.isInteger(p) && p > 0 && p < 65536 ? p : 22;
};

async function undoQuietly(driver: ProviderDriver, machine: ProvisionedMachine, ctx: ProviderContext, opts: ReadinessOptions, cause: unknown): Promise<void> {
  if (!driver.undoReachable) return;
  try {
    await driver.undoReachable(machine, ctx);
    opts.log(`machine ${machine.nativeId}: the readiness wait failed, what made it reachable is released\n`);
  } catch (e) {
    // The original failure is what the run reports; the leak is said so that it is seen (and the node's deletion releases it again).
    const msg = `machine ${machine.nativeId}: releasing what made it reachable failed (${toFormworkError(e).message}) after ${toFormworkError(cause).message}`;
    opts.log(`${msg}\n`);
    ctx.log.warn(msg, { nativeId: machine.nativeId });
  }
}

async function pause(signal: AbortSignal | undefined, ms = bootPoll.ms): Promise<void> {
  await new Promise((r) => setTimeout(r, Math.min(ms, 30_000)));
  if (signal?.aborted) throw toFormworkError(signal.reason ?? new Error('aborted'));
}
