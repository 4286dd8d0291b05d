/**
 * Provider-wide resources of a lab provider: its two bridges (public with the control host's
 * .1, private with no host-side address) and its apt-cacher-ng bound to the public .1:3142.
 *
 * @example
 *   await ensureNetwork(cfg, log);   // idempotent; safe from several processes
 *   await teardownNetwork(cfg, log); // stops the proxy, deletes both bridges
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import type { ProviderLogger } from '../provider.js';
import { APT_PROXY_PORT } from './base.js';
import type { LabConfig } from './config.js';
import { isAlive, procRef, run, signalRef, systemEnv, tryRun, waitUntil, type ProcRef } from './exec.js';

interface IpAddrInfo {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/** Whether a link exists: in this process's namespace by sysfs (no process to spawn), in another with ip. */
export async function linkExists(name: string, netns?: string): Promise<boolean> {
  if (!netns) return existsSync(join('/sys/class/net', name));
  return tryRun('ip', ['-n', netns, 'link', 'show', 'dev', name]);
}

/** Whether both bridges are up and the apt proxy runs: the provider network needs nothing (no lock, no process). */
export function networkReady(c: LabConfig): boolean {
  const up = (br: string) => {
    try {
      return (Number(readFileSync(join('/sys/class/net', br, 'flags'), 'utf8')) & 1) === 1; // IFF_UP (an empty bridge has no carrier)
    } catch {
      return false;
    }
  };
  return up(c.publicBridge) && up(c.privateBridge) && isAlive(proxyRef(c));
}

async function addresses(): Promise<IpAddrInfo[]> {
  const { stdout } = await run('ip', ['-j', 'addr', 'show']);
  return JSON.parse(stdout) as IpAddrInfo[];
}

/** Creates both bridges if missing; refuses if another interface already holds our subnet. */
export async function ensureBridges(c: LabConfig): Promise<void> {
  for (const info of await addresses()) {
    if (info.ifname === c.publicBridge) continue;
    for (const a of info.addr_info ?? []) {
      if (a.family === 'inet' && (a.local.startsWith(c.publicPrefix + '.') || a.local.startsWith(c.privatePrefix + '.'))) {
        throw new FormworkError(
          'CONFLICT',
          `lab subnet index ${c.subnetIndex} (${c.publicCidr}) is already in use on interface ${info.ifname}; give provider "${c.providerName}" another settings.subnetIndex`,
          { interface: info.ifname, address: a.local, subnetIndex: c.subnetIndex },
        );
      }
    }
  }
  // One `ip -batch` for what is missing: each `ip` process costs more than its work here.
  // (Callers hold the provider lock, so no other process adds these links meanwhile.)
  const lines: string[] = [];
  for (const br of [c.publicBridge, c.privateBridge]) {
    if (!(await linkExists(br))) lines.push(`link add ${br} type bridge`);
    lines.push(`link set ${br} up`);
  }
  lines.push(`addr replace ${c.publicGateway}/24 dev ${c.publicBridge}`);
  await run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

export async function deleteBridges(c: LabConfig): Promise<void> {
  for (const br of [c.publicBridge, c.privateBridge]) {
    if (await linkExists(br)) await tryRun('ip', ['link', 'del', br]);
  }
}

// ---------------------------------------------------------------- apt-cacher-ng

interface ProxyState {
  pid: number;
  startTime: string;
  address: string;
  port: number;
}

const proxyStateFile = (c: LabConfig) => join(c.proxyDir, 'proxy.json');

function readProxyState(c: LabConfig): ProxyState | undefined {
  try {
    return JSON.parse(readFileSync(proxyStateFile(c), 'utf8')) as ProxyState;
  } catch {
    return undefined;
  }
}

export function proxyRef(c: LabConfig): ProcRef | undefined {
  const s = readProxyState(c);
  return s ? { pid: s.pid, startTime: s.startTime } : undefined;
}

export function tcpAnswers(host: string, port: number, timeoutMs = 1000, banner?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let data = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => {
      if (!banner) done(true);
    });
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (banner && data.includes(banner)) done(true);
    });
    sock.on('close', () => done(false));
  });
}

/**
 * Starts this provider's apt-cacher-ng on the public gateway address unless it already runs,
 * without waiting for it to answer: hosts need it only once they run apt, so creating them
 * overlaps its start-up. `proxyAnswers` waits for it.
 */
export async function startProxy(c: LabConfig, log: ProviderLogger): Promise<ProcRef> {
  const cur = readProxyState(c);
  if (cur && isAlive(cur)) return cur;
  const conf = join(c.proxyDir, 'conf');
  const cache = join(c.proxyDir, 'cache');
  const logs = join(c.proxyDir, 'log');
  const runDir = join(c.proxyDir, 'run');
  for (const d of [conf, cache, logs, runDir]) await mkdir(d, { recursive: true });
  // Our own config: no Remap-debrep (with it apt-cacher-ng answers 503 for the Debian mirror),
  // and our own socket/pid file so it never clashes with the system service or another provider.
  await writeFile(
    join(conf, 'acng.conf'),
    [
      '# Written by the Formwork lab provider; one instance per provider.',
      `CacheDir: ${cache}`,
      `LogDir: ${logs}`,
      'SupportDir: /usr/lib/apt-cacher-ng',
      `Port: ${APT_PROXY_PORT}`,
      `BindAddress: ${c.publicGateway}`,
      `SocketPath: ${join(runDir, 'socket')}`,
      `PidFile: ${join(runDir, 'pid')}`,
      'ForeGround: 1',
      'ReportPage: acng-report.html',
      'ExThreshold: 4',
      'FollowIndexFileRemoval: 1',
      '',
    ].join('\n'),
  );
  const out = openSync(proxyLog(c), 'a');
  const child = spawn('apt-cacher-ng', ['-c', conf, 'ForeGround=1'], { detached: true, stdio: ['ignore', out, out], env: systemEnv() });
  closeSync(out);
  const pid = child.pid;
  child.on('error', () => undefined);
  child.unref();
  if (!pid) throw new FormworkError('MISSING_TOOL', 'apt-cacher-ng could not be started: apt-get install apt-cacher-ng', { package: 'apt-cacher-ng' });
  let ref: ProcRef | undefined;
  await waitUntil(() => !!(ref = procRef(pid)), 2000, 10);
  if (!ref) throw new FormworkError('PROVIDER_ERROR', `apt-cacher-ng exited at once; see ${proxyLog(c)}`);
  const st: ProxyState = { ...ref, address: c.publicGateway, port: APT_PROXY_PORT };
  await writeFile(proxyStateFile(c), JSON.stringify(st, null, 2) + '\n');
  log.info('lab: apt-cacher-ng started', { pid: ref.pid, address: `${c.publicGateway}:${APT_PROXY_PORT}` });
  return ref;
}

const proxyLog = (c: LabConfig) => join(c.proxyDir, 'log', 'stdout.log');

/** Waits until this provider's apt-cacher-ng answers; one that died or never answers is stopped and reported. */
export async function proxyAnswers(c: LabConfig, timeoutMs = 10_000): Promise<void> {
  const ref = proxyRef(c);
  const up = isAlive(ref) && (await waitUntil(async () => !isAlive(ref) || (await tcpAnswers(c.publicGateway, APT_PROXY_PORT, 500)), timeoutMs, 50));
  if (up && isAlive(ref)) return;
  signalRef(ref, 'SIGKILL');
  const tail = await readFile(proxyLog(c), 'utf8').catch(() => '');
  await rm(proxyStateFile(c), { force: true });
  throw new FormworkError('PROVIDER_ERROR', `apt-cacher-ng did not start on ${c.publicGateway}:${APT_PROXY_PORT}: ${tail.split('\n').slice(-5).join(' ')}`, {}, { retryable: true });
}

export async function stopProxy(c: LabConfig): Promise<void> {
  const ref = proxyRef(c);
  if (ref && isAlive(ref)) {
    signalRef(ref, 'SIGTERM');
    if (!(await waitUntil(() => !isAlive(ref), 5000, 50))) {
      signalRef(ref, 'SIGKILL');
      await waitUntil(() => !isAlive(ref), 2000, 50);
    }
  }
  await rm(proxyStateFile(c), { force: true });
}

