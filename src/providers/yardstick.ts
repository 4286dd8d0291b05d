import { randomBytes } from 'node:crypto';
import { FormworkError, toFormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { registerBuiltin } from '../engine/executors/builtin.js';
import { MarkerSplitter } from '../engine/executors/script.js';
import { ensurePlatformKey, machineIdentity, nodePort, type PlatformKey } from '../engine/executors/target.js';
import type { BuiltinContext, RunIO, RunJob, RunResult } from '../engine/types.js';
import { SshPool } from '../ssh/client.js';
import { findLoginUser } from '../ssh/login.js';
import { waitForPort } from '../ssh/probe.js';
import { shellQuote } from '../ssh/quoting.js';
import { fingerprintsEqual } from '../ssh/keys.js';
import { controlAddress, type NodeAddress } from '../core/addresses.js';
import { mergeDecisions, type NodeDecision } from '../core/decisions.js';
import { provisionHandler } from './provision.js';
import { FALLBACK_LOGIN_USERS } from './catalog/login-users.js';

/**
 * The yardstick (DESIGN.md, "what ready means"): the same six checks for every provider's
 * nodes, and the two built-in roles that bring a node up to them.
 *
 * - `provider.create` (role `provision`): provision.ts.
 * - `yardstick.ready` (role `node-ready`): waits for TCP/22, finds the login user, records
 *   the host key on first contact, sets the hostname, waits for boot and cloud-init, then
 *   runs every check and fails with the reasons unless all pass.
 *
 * @example
 *   const results = await checkNode(node, { pool, key });
 *   results.filter((r) => !r.ok); // [{ check: 'post-provisioning', ok: false, reason: 'hostname is "localhost", not "web-1"' }]
 */

export const YARDSTICK_CHECKS = ['reachable', 'logged-in', 'known-host', 'networks', 'shape', 'post-provisioning'] as const;
export type YardstickCheck = (typeof YARDSTICK_CHECKS)[number];

export interface CheckResult {
  check: YardstickCheck;
  ok: boolean;
  reason?: string;
}

/** Users tried, in order, when neither the node, the image nor the provider names one (the catalog's bounded list). */
export { FALLBACK_LOGIN_USERS };

const DEFAULT_SSH_WAIT_SECONDS = 120;

function addressesOf(node: StoredObject): NodeAddress[] {
  return Array.isArray(node.addresses) ? (node.addresses as NodeAddress[]) : [];
}

/** The address the control plane uses (core's `controlAddress`: public, then admin, then private). */
export function accessAddress(node: StoredObject): string | undefined {
  return controlAddress(node.addresses);
}

function loginCandidates(node: StoredObject): string[] {
  if (typeof node.loginUser === 'string' && node.loginUser) return [node.loginUser];
  const inv = (node.inventory ?? {}) as Record<string, unknown>;
  const fromProvider = Array.isArray(inv.loginUsers) ? (inv.loginUsers as string[]) : [];
  return [...new Set([...fromProvider, ...FALLBACK_LOGIN_USERS])];
}

// One shell round trip gathers every fact the post-provisioning check needs.
export const FACTS_SCRIPT = `
[ "$(id -u)" = 0 ] && S= || S="sudo -n"
h=$(hostname)
s=$(systemctl is-system-running 2>/dev/null || true)
if command -v cloud-init >/dev/null 2>&1; then c=$(cloud-init status 2>/dev/null | sed -n 's/^status: //p'); else c=absent; fi
if command -v apt-get >/dev/null 2>&1; then pm=apt; $S apt-get -qq check >/dev/null 2>&1 && pmok=yes || pmok=no;
elif command -v dnf >/dev/null 2>&1; then pm=dnf; $S dnf -q check >/dev/null 2>&1 && pmok=yes || pmok=no;
else pm=none; pmok=no; fi
# root acts as root without sudo (an image may not ship sudo at all).
if [ -z "$S" ] || sudo -n true >/dev/null 2>&1; then su=yes; else su=no; fi
printf '%s\\n' "hostname=$h" "system=$s" "cloudinit=$c" "pm=$pm" "pmok=$pmok" "sudo=$su"
`;

export interface Facts {
  hostname: string;
  system: string;
  cloudinit: string;
  pm: string;
  pmok: string;
  sudo: string;
}

export function parseFacts(stdout: string): Facts {
  const facts: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) facts[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return facts as unknown as Facts;
}

async function gatherFacts(pool: SshPool, node: StoredObject, key: PlatformKey, host: string): Promise<Facts> {
  const r = await pool.exec(
    { host, port: nodePort(node), username: node.loginUser as string, privateKey: key.privateKey, knownHostKey: node.hostKey as string, connectTimeoutMs: 10_000, machine: machineIdentity(node) },
    FACTS_SCRIPT,
    { timeoutMs: 30_000 },
  );
  return parseFacts(r.stdout);
}

/**
 * Runs the six checks on one node. Never throws: each failure is a result with its reason.
 * `facts`, when the caller has just gathered them over a session of its own (node-ready
 * does, in the same round trip as its steps), are used instead of opening another.
 */
export async function checkNode(node: StoredObject, opts: { pool: SshPool; key: PlatformKey; facts?: Facts }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (check: YardstickCheck, reason?: string) => results.push(reason ? { check, ok: false, reason } : { check, ok: true });
  const host = accessAddress(node);
  const port = nodePort(node);

  let reachable = false;
  if (!host) add('reachable', 'the node has no address');
  else if (opts.facts) {
    reachable = true;
    add('reachable');
  } else {
    try {
      await waitForPort(host, port, 5_000);
      reachable = true;
      add('reachable');
    } catch (e) {
      add('reachable', `TCP/${port} on ${host} did not answer: ${toFormworkError(e).message}`);
    }
  }

  let facts: Facts | undefined;
  if (!node.loginUser) add('logged-in', 'no login user is recorded on the node');
  if (!node.hostKey) add('known-host', 'no host key is recorded on the node');
  if (node.loginUser && node.hostKey) {
    if (!reachable) {
      add('logged-in', 'not reachable');
      add('known-host', 'not reachable');
    } else {
      try {
        facts = opts.facts ?? (await gatherFacts(opts.pool, node, opts.key, host!));
        add('logged-in', facts.sudo === 'yes' ? undefined : `${node.loginUser} logs in but cannot sudo without a password`);
        add('known-host');
      } catch (e) {
        const err = toFormworkError(e);
        if (err.code === 'HOST_KEY_MISMATCH') {
          add('logged-in', 'not attempted: the host key does not match');
          add('known-host', err.message);
        } else {
          add('logged-in', `${node.loginUser}@${host}: ${err.message}`);
          add('known-host', 'not checked: no session');
        }
      }
    }
  }

  const addrs = addressesOf(node);
  const unclassified = addrs.filter((a) => !['public', 'private', 'admin', 'bmc'].includes(a.role) || ![4, 6].includes(a.family));
  if (addrs.length === 0) add('networks', 'the node has no addresses');
  else if (unclassified.length) add('networks', `addresses without a role or family: ${unclassified.map((a) => a.address).join(', ')}`);
  else if (!addrs.some((a) => a.role === 'public')) add('networks', 'no public (reachable) address');
  else if (!addrs.some((a) => a.role === 'private')) add('networks', 'no private address');
  else add('networks');

  const missingShape = ['sizeNormalized', 'sizeNative', 'imageNormalized', 'imageNative'].filter((f) => !node[f]);
  add('shape', missingShape.length ? `not recorded: ${missingShape.join(', ')}` : undefined);

  if (!facts) add('post-provisioning', 'not checked: no session');
  else {
    const problems: string[] = [];
    if (facts.hostname !== node.name) problems.push(`hostname is "${facts.hostname}", not "${node.name}"`);
    if (!['running', 'degraded'].includes(facts.system)) problems.push(`systemd reports "${facts.system || 'unknown'}", not running`);
    if (!['absent', 'done', 'disabled'].includes(facts.cloudinit)) problems.push(`cloud-init status is "${facts.cloudinit}"`);
    if (facts.pmok !== 'yes') problems.push(`the package manager (${facts.pm}) is not usable`);
    add('post-provisioning', problems.length ? problems.join('; ') : undefined);
  }
  return results;
}

async function readyHandler(job: RunJob, io: RunIO, { services, ssh }: BuiltinContext): Promise<RunResult> {
  const node = requireNode(job);
  const host = accessAddress(node);
  if (!host) throw new FormworkError('SSH_UNREACHABLE', `node ${node.name} has no address yet`, { node: node.name });
  const port = nodePort(node);
  const key = ensurePlatformKey(services.dataDir);
  const started = Date.now();
  const took = () => `${((Date.now() - started) / 1000).toFixed(2)} s`;
  io.log(`waiting for TCP/${port} on ${host}\n`);
  const waitSeconds = Number(job.inputs['ssh-wait-seconds'] ?? DEFAULT_SSH_WAIT_SECONDS);
  try {
    await waitForPort(host, port, Date.now() + waitSeconds * 1000, { intervalMs: 100 });
  } catch (e) {
    throw new FormworkError('SSH_UNREACHABLE', `node ${node.name}: TCP/${port} on ${host} did not answer within ${waitSeconds} s`, { node: node.name, host, port }, { retryable: toFormworkError(e).retryable });
  }
  const candidates = loginCandidates(node);
  const known = typeof node.hostKey === 'string' && node.hostKey ? node.hostKey : undefined;
  // The engine's pool keeps the login that worked: the steps and checks below, and the node's
  // next script runs, reuse the connection.
  const login = await findLoginUser(host, candidates, key.privateKey, { port, knownHostKey: known, connectTimeoutMs: 15_000, pool: ssh, machine: machineIdentity(node) });
  if (known && !fingerprintsEqual(known, login.hostKeyFingerprint)) {
    throw new FormworkError('HOST_KEY_MISMATCH', `node ${node.name}: host key ${login.hostKeyFingerprint} differs from the recorded ${known}`, { node: node.name }, { retryable: false });
  }
  io.log(`logged in as ${login.username} at ${took()}; host key ${login.hostKeyFingerprint}${known ? ' (matches the recorded one)' : ' (recorded: trust on first use)'}\n`);
  const updated: StoredObject = { ...node, loginUser: login.username, hostKey: login.hostKeyFingerprint };
  const target = { host, port, username: login.username, privateKey: key.privateKey, knownHostKey: login.hostKeyFingerprint, connectTimeoutMs: 15_000, machine: machineIdentity(node) };
  const name = shellQuote(node.name);
  // One round trip: the hostname, then waiting for boot and cloud-init to settle (what a
  // provider left half done is finished here), then the facts the checks read. It runs with
  // sudo, so its success is also the proof that the login user has passwordless sudo.
  const marker = `FORMWORK-FACTS-${randomBytes(8).toString('hex')}`;
  const split = new MarkerSplitter(marker, (c) => io.log(c));
  const prep = await ssh.exec(
    target,
    `[ "$(hostname)" = ${name} ] || hostnamectl set-hostname ${name} 2>/dev/null || { echo ${name} > /etc/hostname; hostname ${name}; }
grep -q "[[:space:]]${node.name}\\$" /etc/hosts || echo "127.0.1.1 ${node.name}" >> /etc/hosts
timeout 120 systemctl is-system-running --wait >/dev/null 2>&1 || true
if command -v cloud-init >/dev/null 2>&1; then timeout 300 cloud-init status --wait >/dev/null 2>&1 || true; fi
printf '\\n%s\\n' ${marker}
${FACTS_SCRIPT}`,
    // The steps' output streams into the log; the facts follow the marker (as a script role's outputs do).
    { sudo: true, timeoutMs: 450_000, signal: io.signal, onOutput: (c, stream) => (stream === 'stdout' ? split.push(c) : io.log(c)) },
  );
  split.end();
  if (prep.exitCode !== 0 || !split.found) {
    throw new FormworkError('RUN_FAILED', `node ${node.name}: post-provisioning steps failed (exit ${prep.exitCode}): ${prep.stderr.trim()}`, { node: node.name });
  }
  io.log(`hostname set, boot and cloud-init settled, facts gathered at ${took()}\n`);
  const results = await checkNode(updated, { pool: ssh, key, facts: parseFacts(split.after) });
  const failed = results.filter((r) => !r.ok);
  for (const r of results) io.log(`${r.ok ? 'pass' : 'FAIL'} ${r.check}${r.reason ? `: ${r.reason}` : ''}\n`);
  if (failed.length) {
    throw new FormworkError('RUN_FAILED', `node ${node.name} is not ready: ${failed.map((r) => `${r.check} (${r.reason})`).join('; ')}`, { node: node.name, failed });
  }
  return {
    exitCode: 0,
    outputs: { 'login-user': login.username, address: host },
    nodeUpdate: { loginUser: login.username, hostKey: login.hostKeyFingerprint, state: 'ready', decisions: mergeDecisions(node.decisions, [loginDecision(node, candidates, login.username)]) },
  };
}

/** Which user logged in and why it was the one: recorded on the node, shown by `describe node`. */
function loginDecision(node: StoredObject, candidates: string[], username: string): NodeDecision {
  if (typeof node.loginUser === 'string' && node.loginUser) return { subject: 'login-user', chosen: username, reason: 'recorded on the node' };
  const refused = candidates.slice(0, candidates.indexOf(username));
  const fromProvider = Array.isArray((node.inventory as Record<string, unknown> | undefined)?.loginUsers) && ((node.inventory as Record<string, unknown>).loginUsers as string[]).includes(username);
  return {
    subject: 'login-user',
    chosen: username,
    reason: `logged in with the platform key${refused.length ? ` after ${refused.join(', ')} refused it` : ' at the first try'}; ${fromProvider ? "one of the provider's users for the image" : 'from the bounded list of common users'}`,
  };
}

function requireNode(job: RunJob): StoredObject {
  if (!job.node) throw new FormworkError('VALIDATION', `role ${job.role.name} must be bound to a node`, { role: job.role.name }, { retryable: false });
  return job.node;
}

/** Registers the yardstick's built-in handlers with the engine. Idempotent. */
export function registerYardstickBuiltins(): void {
  registerBuiltin('provider.create', provisionHandler);
  registerBuiltin('yardstick.ready', readyHandler);
}
