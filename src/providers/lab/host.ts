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
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import type { MachineSpec, ProviderLogger } from '../provider.js';
import { GATEWAY_HOSTNAME, LOGIN_USER, mountsUnder } from './base.js';
import { FIRST_HOST_OCTET, hostNames, LAST_HOST_OCTET, type HostNames, type LabConfig } from './config.js';
import { isAlive, procRef, procStat, run, signalRef, sleep, tryRun, waitUntil, type ProcRef } from './exec.js';
import { linkExists, tcpAnswers } from './network.js';

export const STATE_FORMAT = 1;
const PROPAGATE_DIR = '/run/systemd/nspawn/propagate';
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
  spec: { size?: MachineSpec['size']; image?: string; labels?: Record<string, string> };
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
    launcherScript: join(n.dir, 'launcher.sh'),
    nspawnPidFile: join(n.dir, 'nspawn.pid'),
    stopFile: join(n.dir, 'stop'),
    consoleLog: join(n.dir, 'console.log'),
    spec: { size: spec.size, image: spec.image, labels: spec.labels },
    createdAt: new Date().toISOString(),
  };
  await writeState(st);
  return st;
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

async function netnsExists(netns: string): Promise<boolean> {
  try {
    const { stdout } = await run('ip', ['netns', 'list']);
    return stdout.split('\n').some((l) => l.split(' ')[0] === netns);
  } catch {
    return false;
  }
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
  const { stdout: mid } = await run('systemd-id128', ['new']);
  await writeFile(join(r, 'etc/machine-id'), `${mid.trim()}\n`);
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
  // Fresh host keys per host (the base has none).
  await run('ssh-keygen', ['-A', '-f', r]);
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
  if (await netnsExists(st.netns)) await tryRun('ip', ['netns', 'del', st.netns]);
  const ns = st.netns;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['link', 'add', st.vethPublic, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await run('ip', ['link', 'set', st.vethPublic, 'master', st.publicBridge, 'up']);
  await run('ip', ['link', 'add', st.vethPrivate, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]);
  await run('ip', ['link', 'set', st.vethPrivate, 'master', st.privateBridge, 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', `${st.publicAddress}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', `${st.privateAddress}/24`, 'dev', 'eth1']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']);
  await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', st.gateway, 'dev', 'eth0']);
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
    await writePerHostFiles(st, publicKey);
    signal?.throwIfAborted();
    await setUpNetwork(st);
    signal?.throwIfAborted();
    st.launcher = await startLauncher(st);
    st.stage = 'booting';
    await writeState(st);
    const deadline = Date.now() + c.bootTimeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      if (await tcpAnswers(st.publicAddress, 22, 1000, 'SSH-')) break;
      if (!isAlive(st.launcher)) {
        throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name} stopped while booting:\n${await consoleTail(st)}`, { name: st.name, consoleLog: st.consoleLog });
      }
      if (Date.now() > deadline) {
        throw new FormworkError('PROVIDER_ERROR', `lab host ${st.name}: sshd did not answer on ${st.publicAddress}:22 within ${c.bootTimeoutMs / 1000} s:\n${await consoleTail(st)}`, {
          name: st.name,
          consoleLog: st.consoleLog,
        }, { retryable: true });
      }
      await sleep(100);
    }
    st.stage = 'running';
    st.readyAt = new Date().toISOString();
    st.bootSeconds = (Date.now() - started) / 1000;
    await writeState(st);
    log.info('lab: host is up', { name: st.name, address: st.publicAddress, seconds: st.bootSeconds });
    return st;
  } catch (e) {
    log.warn('lab: host creation failed; removing what was made', { name: st.name, error: (e as Error).message });
    await destroyHost(st, log).catch((e2) => log.warn('lab: clean-up after failed create failed', { name: st.name, error: (e2 as Error).message }));
    throw e;
  }
}

// ------------------------------------------------------------------ delete

async function stopProcesses(st: HostState, stopTimeoutMs: number, log: ProviderLogger): Promise<void> {
  await mkdir(st.dir, { recursive: true }).catch(() => undefined);
  await writeFile(st.stopFile, '').catch(() => undefined); // the launcher loop must not restart nspawn
  // The launcher is only a loop around nspawn; nspawn is reparented and keeps running.
  if (signalRef(st.launcher, 'SIGKILL')) await waitUntil(() => !isAlive(st.launcher), 2000, 20);
  const ns = nspawnRef(st);
  const gone = async () => !isAlive(nspawnRef(st)) && (await netnsPids(st.netns)).length === 0;
  if (isAlive(ns)) {
    // SIGTERM makes nspawn halt the container cleanly.
    signalRef(ns, 'SIGTERM');
    if (await waitUntil(gone, stopTimeoutMs, 100)) return;
    log.warn('lab: host did not halt in time; killing it', { name: st.name });
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
    signalRef(nspawnRef(st), 'SIGKILL');
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

/** Removes every trace of a host. Idempotent: safe on a half-made host or one already gone. */
export async function destroyHost(st: HostState, log: ProviderLogger, stopTimeoutMs = 15_000): Promise<void> {
  if (st.stage !== 'deleting' && readState(st.stateFile)) {
    st.stage = 'deleting';
    await writeState(st).catch(() => undefined);
  }
  await stopProcesses(st, stopTimeoutMs, log);
  await unmountRoot(st);
  await rm(join(PROPAGATE_DIR, st.machine), { recursive: true, force: true });
  if (await netnsExists(st.netns)) await tryRun('ip', ['netns', 'del', st.netns]);
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

export { procStat };
