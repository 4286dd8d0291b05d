/**
 * Leftover checks for tests (and `formwork doctor`-style reports): which network namespaces,
 * overlay mounts, links and processes exist that match a filter. End-to-end tests assert that
 * these are empty after deleting hosts and tearing a provider down.
 *
 * @example
 *   const l = await labLeftovers({ dataDir, providerName });
 *   expect(l).toEqual({ netns: [], mounts: [], links: [], processes: [], stateFiles: [] });
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { labConfig } from './config.js';
import { run } from './exec.js';

export async function listNetns(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** Overlay mounts whose mount point is under `dir` (all overlay mounts without it). */
export function overlayMountsUnder(dir?: string): string[] {
  const d = dir ? resolve(dir) : undefined;
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'overlay')
    .map((f) => f[1].replace(/\\040/g, ' '))
    .filter((m) => !d || m === d || m.startsWith(d + '/'));
}

/** Names of all links in the root network namespace (without the `@peer` suffix). */
export async function listLinks(): Promise<string[]> {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
}

/** Processes whose command line contains `needle` (e.g. a data dir path), excluding ourselves. */
export function processesMatching(needle: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmd && cmd.includes(needle)) out.push({ pid: Number(e), cmdline: cmd });
  }
  return out;
}

export interface LabLeftovers {
  netns: string[];
  mounts: string[];
  links: string[];
  processes: Array<{ pid: number; cmdline: string }>;
  stateFiles: string[];
  propagate: string[];
  /** Launcher cgroups (`/sys/fs/cgroup/{systemd,unified}/fw-KEY-NAME`). */
  cgroups: string[];
}

/**
 * Everything of one lab provider still on the machine. With `includeProviderWide: false`
 * (after deleting hosts but before teardown) the bridges and apt-cacher-ng are not counted.
 */
export async function labLeftovers(
  ctx: { dataDir: string; providerName: string; settings?: Record<string, unknown> },
  opts: { includeProviderWide?: boolean } = {},
): Promise<LabLeftovers> {
  const c = labConfig({ dataDir: ctx.dataDir, providerName: ctx.providerName, settings: ctx.settings ?? {} });
  const wide = opts.includeProviderWide ?? true;
  const hostPrefix = `fw-${c.key}-`;
  const vethPrefix = `fw${c.key}`;
  const links = (await listLinks()).filter(
    (l) => l.startsWith(vethPrefix) || (wide && (l === c.publicBridge || l === c.privateBridge)),
  );
  const processes = processesMatching(c.providerDir).filter((p) => wide || !p.cmdline.startsWith('apt-cacher-ng'));
  let stateFiles: string[] = [];
  try {
    stateFiles = readdirSync(c.hostsDir).map((f) => join(c.hostsDir, f));
  } catch {
    /* none */
  }
  let propagate: string[] = [];
  try {
    propagate = readdirSync('/run/systemd/nspawn/propagate').filter((n) => n.startsWith(hostPrefix));
  } catch {
    /* none */
  }
  const cgroups: string[] = [];
  for (const h of ['systemd', 'unified', '']) {
    const d = join('/sys/fs/cgroup', h);
    try {
      for (const e of readdirSync(d)) if (e.startsWith(hostPrefix)) cgroups.push(join(d, e));
    } catch {
      /* no such hierarchy */
    }
  }
  return {
    cgroups,
    netns: (await listNetns()).filter((n) => n.startsWith(hostPrefix)),
    mounts: overlayMountsUnder(c.providerDir),
    links,
    processes,
    stateFiles,
    propagate,
  };
}
