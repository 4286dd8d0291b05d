/**
 * One lab host: a network namespace with eth0 on the provider's public bridge and eth1 on its
 * private bridge, an overlay root (the shared base below, a per-host upper layer), and
 * systemd-nspawn --boot run by a small detached launcher that outlives the Node process.
 *
 * Everything needed to find and remove a host later, from any process, is in its state file
 * `<dataDir>/providers/<provider>/hosts/<name>.json`, written before the first resource exists
 * and removed after the last one is gone.
 *
 * @example
 *   const st = await createHost(cfg, { name: 'web-1' }, publicKey, log);
 *   await destroyHost(cfg, st, log);
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import { generateKeyPair } from '../../ssh/keys.js';
import type { MachineSpec, ProviderLogger } from '../provider.js';
import { GATEWAY_HOSTNAME, LOGIN_USER, mountsUnder } from './base.js';
import { FIRST_HOST_OCTET, hostNames, LAST_HOST_OCTET, type HostNames, type LabConfig } from './config.js';
import { childrenOf, isAlive, procRef, run, signalRef, sleep, tryRun, waitUntil, type ProcRef } from './exec.js';
import { linkExists, tcpAnswers } from './network.js';

export const STATE_FORMAT = 1;
const PROPAGATE_DIR = '/run/systemd/nspawn/propagate';
const NSPAWN_LOCKS_DIR = '/run/systemd/nspawn/locks';
const OVERLAY_SOURCE = 'formwork-lab';
const LAUNCHER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type HostStage = 'creating' | 'booting' | 'running' | 'deleting';

export interface HostState extends HostNames {
  format: number;
  providerName: string;
  stage: HostStage;
  /** The process creating the host (while stage is 'creating' or 'booting'). */
  creator: ProcRef;
  publicBridge: string;
  privateBridge: string;
  gateway: string;
  baseDir: string;
  launcher?: ProcRef;
  launcherScript: string;
  /** Written by the launcher: "PID STARTTIME" of the current systemd-nspawn (it changes on reboot). */
  nspawnPidFile: string;
  stopFile: string;
  consoleLog: string;
  /** nspawn's image lock (`/run/systemd/nspawn/locks/inode-DEV:INO`), left behind if nspawn is killed. */
  nspawnLockFile?: string;
  /** The launcher's own cgroups (one per hierarchy nspawn uses), removed after the host stops. */
  cgroups?: string[];
  spec: { size?: MachineSpec['size']; image?: string; labels?: Record<string, string>; nodeId?: string; idempotencyToken?: string; tags?: Record<string, string> };
  createdAt: string;
  readyAt?: string;
  bootSeconds?: number;
}

// ------------------------------------------------------------------ state files

export async function writeState(st: HostState): Promise<void> {
  const tmp = `${st.stateFile}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, JSON.stringify(st, null, 2) + '\n');
  await rename(tmp, st.stateFile);
}

export function readState(file: string): HostState | undefined {
  try {
    const st = JSON.parse(readFileSync(file, 'utf8')) as HostState;
    return st.format === STATE_FORMAT && st.name ? st : undefined;
  } catch {
    return undefined;
  }
}

export async function readAllStates(c: LabConfig): Promise<HostState[]> {
  let files: string[];
  try {
    files = await readdir(c.hostsDir);
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => readState(join(c.hostsDir, f)))
    .filter((s): s is HostState => !!s);
}

/** Picks the lowest free host octet and writes the 'creating' state file. Call under the provider lock. */
export async function allocateHost(c: LabConfig, spec: MachineSpec): Promise<HostState> {
  await mkdir(c.hostsDir, { recursive: true });
  const states = await readAllStates(c);
  if (states.some((s) => s.name === spec.name) || readState(join(c.hostsDir, `${spec.name}.json`))) {
    throw new FormworkError('ALREADY_EXISTS', `lab host "${spec.name}" already exists in provider "${c.providerName}"`, { name: spec.name });
  }
  const used = new Set(states.map((s) => s.index));
  let index = FIRST_HOST_OCTET;
  while (used.has(index)) index++;
  if (index > LAST_HOST_OCTET) {
    throw new FormworkError('CONFLICT', `lab provider "${c.providerName}" has no free address left in ${c.publicCidr}`, { cidr: c.publicCidr });
  }
  const n = hostNames(c, spec.name, index);
  const st: HostState = {
    format: STATE_FORMAT,
    providerName: c.providerName,
    ...n,
    stage: 'creating',
    creator: procRef(process.pid)!,
    publicBridge: c.publicBridge,
    privateBridge: c.privateBridge,
    gateway: c.publicGateway,
    baseDir: c.baseDir,
    cgroups: hostCgroups(n.machine),
    launcherScript: join(n.dir, 'launcher.sh'),
    nspawnPidFile: join(n.dir, 'nspawn.pid'),
    stopFile: join(n.dir, 'stop'),
    consoleLog: join(n.dir, 'console.log'),
    spec: { size: spec.size, image: spec.image, labels: spec.labels, nodeId: spec.nodeId, idempotencyToken: spec.idempotencyToken, tags: spec.tags },
    createdAt: new Date().toISOString(),
  };
  await writeState(st);
  return st;
}

// ------------------------------------------------------------------ cgroups

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroup dirs for a host's launcher: in the systemd (v1 named) and unified hierarchies, or the v2 root. */
export function hostCgroups(machine: string): string[] {
  const hybrid = ['systemd', 'unified'].filter((h) => existsSync(join(CGROUP_ROOT, h, 'cgroup.procs')));
  if (hybrid.length > 0) return hybrid.map((h) => join(CGROUP_ROOT, h, machine));
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers'))) return [join(CGROUP_ROOT, machine)];
  return [];
}

/** Removes a (now empty) cgroup tree, deepest first. cgroup dirs go with rmdir, never rm -r. */
async function removeCgroup(dir: string): Promise<void> {
  if (!dir.startsWith(CGROUP_ROOT + '/') || !existsSync(dir)) return;
  const dirs: string[] = [];
  const walk = async (d: string) => {
    dirs.push(d);
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
  };
  await walk(dir);
  dirs.sort((a, b) => b.length - a.length);
  for (let i = 0; i < 20; i++) {
    let left = 0;
    for (const d of dirs) {
      if (!existsSync(d)) continue;
      await rmdir(d).catch(() => left++);
    }
    if (left === 0) return;
    await sleep(100);
  }
  throw new FormworkError('PROVIDER_ERROR', `cannot remove cgroup ${dir} (processes left in it?)`, { cgroup: dir });
}

// ------------------------------------------------------------------ processes

export function nspawnRef(st: HostState): ProcRef | undefined {
  try {
    const [pid, startTime] = readFileSync(st.nspawnPidFile, 'utf8').trim().split(/\s+/);
    const ref = { pid: Number(pid), startTime: startTime ?? '' };
    return Number.isInteger(ref.pid) && ref.pid > 1 ? ref : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the host's launcher or its systemd-nspawn is still there. */
export function hostAlive(st: HostState): boolean {
  return isAlive(st.launcher) || isAlive(nspawnRef(st));
}

/** PIDs inside the host's network namespace: the container's processes (never anyone else's). */
export async function netnsPids(netns: string): Promise<number[]> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', netns]);
    return stdout.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `ip netns add` makes /run/netns/NAME: checking the file spares a process per call. */
function netnsExists(netns: string): boolean {
  return existsSync(join('/run/netns', netns));
}

// ------------------------------------------------------------------ create

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function launcherScript(st: HostState): string {
  const nspawn = [
    'systemd-nspawn', '-q', '-D', st.root, '-M', st.machine, `--hostname=${st.name}`, '--boot',
    `--network-namespace-path=/run/netns/${st.netns}`, '--capability=CAP_NET_ADMIN',
    '--register=no', '--keep-unit', '--link-journal=no', '--console=passive', '--resolv-conf=off', '--timezone=off',
  ];
  return `#!/bin/sh
# Formwork lab host ${st.name} (provider ${st.providerName}): runs systemd-nspawn --boot and runs it
# again after a reboot inside the host (nspawn exits 133). Stopped by Formwork: see ${st.stateFile}.
STOP=${shq(st.stopFile)}
PIDF=${shq(st.nspawnPidFile)}
export SYSTEMD_NSPAWN_API_VFS_WRITABLE=network
# Our own cgroup: with --keep-unit nspawn puts the container's tree under the launcher's cgroup,
# and hosts sharing one would see (and stop) each other's services.
for cg in ${(st.cgroups ?? []).map(shq).join(' ')}; do
  mkdir -p "$cg" && echo $$ > "$cg/cgroup.procs" || { echo "formwork-launcher: cannot use cgroup $cg"; exit 1; }
done
while [ ! -e "$STOP" ]; do
  ${nspawn.map(shq).join(' ')} &
  pid=$!
  echo "$pid $(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)" > "$PIDF.tmp" && mv "$PIDF.tmp" "$PIDF"
  wait $pid
  rc=$?
  echo "formwork-launcher: systemd-nspawn exited with $rc at $(date -Is)"
  [ "$rc" -eq 133 ] || exit "$rc"
done
`;
}

function passwdIds(root: string, user: string): { uid: number; gid: number } {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(user + ':'));
  if (!line) throw new FormworkError('PROVIDER_ERROR', `the lab base image has no user ${user}; rebuild it`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

async function writePerHostFiles(st: HostState, publicKey: string): Promise<void> {
  const r = st.root;
  await writeFile(join(r, 'etc/hostname'), `${st.name}\n`);
  await writeFile(join(r, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`); // what systemd-id128 new prints
  await writeFile(
    join(r, 'etc/hosts'),
    [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      `${st.publicAddress}\t${st.name}`,
      `${st.gateway}\t${GATEWAY_HOSTNAME}`,
      '',
    ].join('\n'),
  );
  // No DNS server is reachable from the hosts: fail name lookups at once instead of timing out.
  await rm(join(r, 'etc/resolv.conf'), { force: true });
  await writeFile(join(r, 'etc/resolv.conf'), '# Lab hosts have no DNS server; names they need are in /etc/hosts.\noptions timeout:1 attempts:1\n');
  // A fresh host key per host (the base has none), made here rather than by ssh-keygen: one
  // process less per host. Ed25519 only: every client here speaks it, and an RSA key takes
  // seconds of CPU to make when several hosts boot at once.
  const hostKey = generateKeyPair(`root@${st.name}`);
  await writeFile(join(r, 'etc/ssh/ssh_host_ed25519_key'), hostKey.privateKey, { mode: 0o600 });
  await writeFile(join(r, 'etc/ssh/ssh_host_ed25519_key.pub'), hostKey.publicKey + '\n', { mode: 0o644 });
  await mkdir(join(r, 'etc/ssh/sshd_config.d'), { recursive: true });
  await writeFile(join(r, 'etc/ssh/sshd_config.d/formwork-hostkeys.conf'), 'HostKey /etc/ssh/ssh_host_ed25519_key\n');
  const key = publicKey.trim() + '\n';
  await mkdir(join(r, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await writeFile(join(r, 'root/.ssh/authorized_keys'), key, { mode: 0o600 });
  const { uid, gid } = passwdIds(r, LOGIN_USER);
  const sshDir = join(r, 'home', LOGIN_USER, '.ssh');
  await mkdir(sshDir, { recursive: true, mode: 0o700 });
  await writeFile(join(sshDir, 'authorized_keys'), key, { mode: 0o600 });
  await chown(sshDir, uid, gid);
  await chmod(sshDir, 0o700);
  await chown(join(sshDir, 'authorized_keys'), uid, gid);
}

async function setUpNetwork(st: HostState): Promise<void> {
  // Leftovers under our own names (a crash before a state file was removed) would block us.
  for (const l of [st.vethPublic, st.vethPrivate]) if (await linkExists(l)) await tryRun('ip', ['link', 'del', l]);
  if (netnsExists(st.netns)) await tryRun('ip', ['netns', 'del', st.netns]);
  // Two `ip -batch` processes (the host side, then inside the namespace) rather than one per
  // step: with several hosts booting at once, process start-up was most of this.
  const batch = (args: string[], lines: string[]) => run('ip', [...args, '-batch', '-'], { input: lines.join('\n') + '\n' });
  await batch(
    [],
    [
      `netns add ${st.netns}`,
      `link add ${st.vethPublic} type veth peer name eth0 netns ${st.netns}`,
      `link set ${st.vethPublic} master ${st.publicBridge} up`,
      `link add ${st.vethPrivate} type veth peer name eth1 netns ${st.netns}`,
      `link set ${st.vethPrivate} master ${st.privateBridge} up`,
    ],
  );
  await batch(
    ['-n', st.netns],
    [
      'link set lo up',
      `addr add ${st.publicAddress}/24 dev eth0`,
      'link set eth0 up',
      `addr add ${st.privateAddress}/24 dev eth1`,
      'link set eth1 up',
      `route add default via ${st.gateway} dev eth0`,
    ],
  );
}

async function startLauncher(st: HostState): Promise<ProcRef> {
  await writeFile(st.launcherScript, launcherScript(st), { mode: 0o755 });
  await rm(st.stopFile, { force: true });
  await rm(st.nspawnPidFile, { force: true });
  const out = openSync(st.consoleLog, 'a');
  // detached: its own session, so it survives this process and a Ctrl-C of the CLI.
  const child = spawn('/bin/sh', [st.launcherScript], {
    detached: true,
    stdio: ['ignore', out, out],
    cwd: '/',
    env: { PATH: LAUNCHER_PATH, LANG: 'C.UTF-8' },
  });
  closeSync(out);
  child.on('error', () => undefined);
  child.unref();
  const pid = child.pid;
  let ref: ProcRef | undefined;
  if (pid) await waitUntil(() => !!(ref = procRef(pid)), 2000, 5);
  if (!ref) throw new FormworkError('PROVIDER_ERROR', `the launcher of lab host ${st.name} did not start`);
  return ref;
}

async function consoleTail(st: HostState, lines = 15): Promise<string> {
  const t = await readFile(st.consoleLog, 'utf8').catch(() => '');
  return t.split('\n').slice(-lines).join('\n');
}

/**
 * Creates and boots a host; resolves once its sshd answers on the public address. On any failure
 * (including the boot timeout and an abort) the half-made host is destroyed before rethrowing.
 */
export async function buildHost(c: LabConfig, st: HostState, publicKey: string, log: ProviderLogger, signal?: AbortSignal): Promise<HostState> {
  const started = Date.now();
  try {
    await mkdir(st.upper, { recursive: true });
    await mkdir(st.work, { recursive: true });
    await mkdir(st.root, { recursive: true });
    await run('mount', ['-t', 'overlay', OVERLAY_SOURCE, '-o', `lowerdir=${st.baseDir},upperdir=${st.upper},workdir=${st.work}`, st.root]);
    const rs = await stat(st.root);
    st.nspawnLockFile = join(NSPAWN_LOCKS_DIR, `inode-${rs.dev}:${rs.ino}`);
    await writeState(st);
    // Independent: the per-host files while the links are made.
    const mounted = Date.now();
    const timed = async (f: () => Promise<void>) => {
      const t = Date.now();
      await f();
      return (Date.now() - t) / 1000;
    };
    const results = await Promise.allSettled([timed(() => writePerHostFiles(st, publicKey)), timed(() => setUpNetwork(st))]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    signal?.throwIfAborted();
    const prepared = Date.now();
    st.launcher = await startLauncher(st);
    st.stage = 'booting';
    await writeState(st);
    const deadline = Date.now() + c.bootTimeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      if (await tcpAnswers(st.publicAddress, 22, Math.max(100, Math.min(1000, deadline - Date.now())), 'SSH-')) break;
      if (!isAlive(st.launcher)) {
        throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name} stopped while booting:\n${await consoleTail(st)}`, { name: st.name, consoleLog: st.consoleLog });
      }
      if (Date.now() > deadline) {
        throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name}: sshd did not answer on ${st.publicAddress}:22 within ${c.bootTimeoutMs / 1000} s:\n${await consoleTail(st)}`, {
          name: st.name,
          consoleLog: st.consoleLog,
        }, { retryable: true });
      }
      await sleep(25); // sshd answers within a second of boot: a coarse poll would be a sizeable part of it
    }
    st.stage = 'running';
    st.readyAt = new Date().toISOString();
    st.bootSeconds = (Date.now() - started) / 1000;
    await writeState(st);
    log.info('lab: host is up', { name: st.name, address: st.publicAddress, seconds: st.bootSeconds, prepareSeconds: (prepared - started) / 1000,
      mountSeconds: (mounted - started) / 1000,
      filesSeconds: results[0].status === 'fulfilled' ? results[0].value : undefined,
      networkSeconds: results[1].status === 'fulfilled' ? results[1].value : undefined,
    });
    return st;
  } catch (e) {
    log.warn('lab: host creation failed; removing what was made', { name: st.name, error: (e as Error).message });
    await destroyHost(st, log, c.stopTimeoutMs, false).catch((e2) => log.warn('lab: clean-up after failed create failed', { name: st.name, error: (e2 as Error).message }));
    throw e;
  }
}

// ------------------------------------------------------------------ delete

async function stopProcesses(st: HostState, stopTimeoutMs: number, log: ProviderLogger, graceful: boolean): Promise<void> {
  await mkdir(st.dir, { recursive: true }).catch(() => undefined);
  await writeFile(st.stopFile, '').catch(() => undefined); // the launcher loop must not restart nspawn
  // The launcher is only a loop around nspawn. Freeze it first so that it cannot start another
  // nspawn (a reboot in progress), collect its children, then kill it; its nspawn keeps running.
  const nspawns: ProcRef[] = [];
  if (signalRef(st.launcher, 'SIGSTOP')) {
    for (const pid of await childrenOf(st.launcher!.pid)) {
      const ref = procRef(pid);
      if (ref) nspawns.push(ref);
    }
    signalRef(st.launcher, 'SIGKILL');
    await waitUntil(() => !isAlive(st.launcher), 2000, 20);
  }
  const fromFile = nspawnRef(st);
  if (fromFile && !nspawns.some((r) => r.pid === fromFile.pid)) nspawns.push(fromFile);
  const gone = async () => !nspawns.some(isAlive) && (await netnsPids(st.netns)).length === 0;
  if (graceful && nspawns.some(isAlive)) {
    // SIGTERM makes nspawn halt the container cleanly.
    for (const r of nspawns) signalRef(r, 'SIGTERM');
    // A container still early in boot may not handle the halt signal yet: ask again after a while.
    const first = Math.min(5000, stopTimeoutMs / 2);
    if (await waitUntil(gone, first, 100)) return;
    for (const r of nspawns) signalRef(r, 'SIGTERM');
    if (await waitUntil(gone, stopTimeoutMs - first, 100)) return;
    log.warn('lab: host did not halt in time; killing it', { name: st.name, seconds: stopTimeoutMs / 1000, console: await consoleTail(st, 8) });
  }
  // SIGKILL to nspawn alone leaves the container running: kill what is in the host's netns.
  for (let i = 0; i < 3 && !(await gone()); i++) {
    for (const pid of await netnsPids(st.netns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const r of nspawns) signalRef(r, 'SIGKILL');
    await waitUntil(gone, 3000, 50);
  }
  if (!(await gone())) throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name}: processes are still running after SIGKILL`, { name: st.name });
}

async function unmountRoot(st: HostState): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const ms = mountsUnder(st.root);
    if (ms.length === 0) return;
    for (const m of ms) await tryRun('umount', [m]);
    if (mountsUnder(st.root).length > 0) await sleep(100 * (i + 1));
  }
  for (const m of mountsUnder(st.root)) await tryRun('umount', ['-l', m]);
  const left = mountsUnder(st.root);
  if (left.length > 0) throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name}: cannot unmount ${left.join(', ')}`);
}

/**
 * Removes every trace of a host. Idempotent: safe on a half-made host or one already gone.
 * `graceful: false` skips the clean halt (for a host that never finished booting).
 */
export async function destroyHost(st: HostState, log: ProviderLogger, stopTimeoutMs = 15_000, graceful = true): Promise<void> {
  if (st.stage !== 'deleting' && readState(st.stateFile)) {
    st.stage = 'deleting';
    await writeState(st).catch(() => undefined);
  }
  await stopProcesses(st, stopTimeoutMs, log, graceful);
  await unmountRoot(st);
  await rm(join(PROPAGATE_DIR, st.machine), { recursive: true, force: true });
  if (st.nspawnLockFile?.startsWith(NSPAWN_LOCKS_DIR + '/')) await rm(st.nspawnLockFile, { force: true });
  for (const cg of st.cgroups ?? []) await removeCgroup(cg);
  if (netnsExists(st.netns)) await tryRun('ip', ['netns', 'del', st.netns]);
  for (const l of [st.vethPublic, st.vethPrivate]) if (await linkExists(l)) await tryRun('ip', ['link', 'del', l]);
  if (mountsUnder(st.dir).length === 0) await rm(st.dir, { recursive: true, force: true });
  await rm(st.stateFile, { force: true });
}

/** For reports: the process ids of a host, if running. */
export function hostPids(st: HostState): { launcher?: number; nspawn?: number } {
  const ns = nspawnRef(st);
  return {
    launcher: isAlive(st.launcher) ? st.launcher!.pid : undefined,
    nspawn: isAlive(ns) ? ns!.pid : undefined,
  };
}


