/**
 * The lab's base root filesystem: Debian 12 (bookworm, minbase) built once with debootstrap and
 * shared read-only (as the overlay's lower layer) by every lab host of a data dir.
 *
 * Built into a temp dir next to the target and renamed into place atomically, under a lock file
 * so that two processes never build at once; the marker `etc/formwork-base.json` is written last.
 *
 * @example
 *   const base = await ensureBaseImage('/var/lib/formwork', log); // '/var/lib/formwork/lab/base'
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile, chmod, symlink, appendFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import type { ProviderLogger } from '../provider.js';
import { run, which } from './exec.js';
import { withFileLock } from './lock.js';

export const BASE_SUITE = 'bookworm';
export const BASE_PACKAGES = [
  'openssh-server', 'iproute2', 'iputils-ping', 'procps', 'ca-certificates', 'sudo', 'python3', 'curl',
  'systemd', 'systemd-sysv', 'dbus', 'libpam-systemd', 'etcd-server', 'etcd-client', 'haproxy',
];
/** Services the workloads configure and start themselves: disabled (not masked) in the base. */
export const BASE_DISABLED_SERVICES = ['etcd.service', 'haproxy.service'];
/** The login user besides root, with passwordless sudo. */
export const LOGIN_USER = 'debian';
/** Name the hosts resolve (via their /etc/hosts) to their provider's public bridge address. */
export const GATEWAY_HOSTNAME = 'formwork-gateway';
export const APT_PROXY_PORT = 3142;
const BASE_FORMAT = 2; // 2: boot tuned for containers (tuneBoot)
const MARKER = 'etc/formwork-base.json';

/** Every host tool the lab driver runs, with the Debian package that provides it. */
export const REQUIRED_TOOLS: ReadonlyArray<{ tool: string; pkg: string }> = [
  { tool: 'debootstrap', pkg: 'debootstrap' },
  { tool: 'systemd-nspawn', pkg: 'systemd-container' },
  { tool: 'systemctl', pkg: 'systemd' },
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'apt-cacher-ng', pkg: 'apt-cacher-ng' },
  { tool: 'mount', pkg: 'mount' },
  { tool: 'umount', pkg: 'mount' },
  { tool: 'chroot', pkg: 'coreutils' },
];

/** Lists missing tools (empty when all are there). */
export function missingTools(): Array<{ tool: string; pkg: string }> {
  return REQUIRED_TOOLS.filter((t) => !which(t.tool));
}

/** Throws MISSING_TOOL naming the package of the first missing tool, and checks we are root. */
export function requiredTools(): void {
  const missing = missingTools();
  if (missing.length > 0) {
    const m = missing[0];
    throw new FormworkError('MISSING_TOOL', `${m.tool} is not installed: apt-get install ${m.pkg}`, {
      tool: m.tool,
      package: m.pkg,
      missing,
    });
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new FormworkError('PROVIDER_ERROR', 'the lab provider must run as root (it creates network namespaces, bridges and mounts)', {}, { retryable: false });
  }
}

/** The Debian mirror the control host itself uses (deb822 or one-line sources), else deb.debian.org. */
export function detectMirror(): string {
  const fallback = 'http://deb.debian.org/debian';
  const files: string[] = [];
  for (const dir of ['/etc/apt/sources.list.d']) {
    try {
      for (const f of readdirSync(dir)) if (f.endsWith('.sources') || f.endsWith('.list')) files.push(join(dir, f));
    } catch {
      /* none */
    }
  }
  files.unshift('/etc/apt/sources.list');
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const uris = /^URIs:\s*(.+)$/im.exec(stanza)?.[1];
        const suites = /^Suites:\s*(.+)$/im.exec(stanza)?.[1] ?? '';
        const enabled = !/^Enabled:\s*no/im.test(stanza);
        if (enabled && uris && suites.split(/\s+/).includes(BASE_SUITE)) return uris.split(/\s+/)[0];
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && m[2] === BASE_SUITE) return m[1];
      }
    }
  }
  return fallback;
}

export function baseDirFor(dataDir: string): string {
  return join(resolve(dataDir), 'lab', 'base');
}

export function isBaseReady(baseDir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(baseDir, MARKER), 'utf8')) as { format?: number };
    return m.format === BASE_FORMAT;
  } catch {
    return false;
  }
}

export interface EnsureBaseOptions {
  /** Overrides the mirror (default: the control host's own Debian mirror). */
  mirror?: string;
  signal?: AbortSignal;
}

const quietLog: ProviderLogger = { info: () => undefined, warn: () => undefined };

/**
 * Returns the base root filesystem under `<dataDir>/lab/base`, building it first if needed
 * (about 2 minutes and 270 MB here). Safe to call from several processes at once.
 */
export async function ensureBaseImage(dataDir: string, log: ProviderLogger = quietLog, opts: EnsureBaseOptions = {}): Promise<string> {
  const baseDir = baseDirFor(dataDir);
  if (isBaseReady(baseDir)) return baseDir;
  requiredTools();
  const labDir = join(resolve(dataDir), 'lab');
  await mkdir(labDir, { recursive: true });
  return withFileLock(
    join(labDir, 'base.lock'),
    async () => {
      if (isBaseReady(baseDir)) return baseDir;
      await removeStaleTemps(labDir);
      if (existsSync(baseDir)) {
        const users = overlaysUsing(baseDir);
        if (users.length > 0) {
          throw new FormworkError('CONFLICT', `the lab base image ${baseDir} is outdated but still used by ${users.length} host(s); delete them first`, { baseDir, mounts: users });
        }
        // An incomplete or older-format base: nothing can be using it as a lower layer safely.
        log.warn('lab: removing an incomplete or outdated base image', { baseDir });
        await removeTree(baseDir);
      }
      const tmp = join(labDir, `base.tmp-${process.pid}-${Date.now()}`);
      const logFile = join(labDir, 'base-build.log');
      const mirror = opts.mirror ?? detectMirror();
      const started = Date.now();
      log.info('lab: building the base image with debootstrap', { baseDir, mirror, suite: BASE_SUITE });
      try {
        await writeFile(logFile, `# debootstrap ${BASE_SUITE} from ${mirror} at ${new Date().toISOString()}\n`);
        try {
          const r = await run(
            'debootstrap',
            ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, BASE_SUITE, tmp, mirror],
            // Stopped with the run: left going, it would write on into a temp dir that the
            // next build (holding the lock, so taking it for a dead builder's) removes.
            { timeoutMs: 30 * 60_000, signal: opts.signal },
          );
          await appendFile(logFile, r.stdout + r.stderr);
        } catch (e) {
          await appendFile(logFile, String((e as Error).message));
          const tail = await readFile(join(tmp, 'debootstrap', 'debootstrap.log'), 'utf8').catch(() => '');
          throw new FormworkError('PROVIDER_ERROR', `debootstrap failed (see ${logFile}): ${(e as Error).message}\n${tail.split('\n').slice(-10).join('\n')}`, { logFile });
        }
        opts.signal?.throwIfAborted();
        await customizeBase(tmp, mirror);
        await writeFile(
          join(tmp, MARKER),
          JSON.stringify({ format: BASE_FORMAT, suite: BASE_SUITE, mirror, packages: BASE_PACKAGES, builtAt: new Date().toISOString(), buildSeconds: (Date.now() - started) / 1000 }, null, 2) + '\n',
        );
        await rename(tmp, baseDir);
      } catch (e) {
        await removeTree(tmp).catch(() => undefined);
        throw e;
      }
      log.info('lab: base image ready', { baseDir, seconds: (Date.now() - started) / 1000 });
      return baseDir;
    },
    { timeoutMs: 40 * 60_000, signal: opts.signal },
  );
}

/** Makes the fresh debootstrap tree host-neutral: every per-host fact is written per host later. */
async function customizeBase(root: string, mirror: string): Promise<void> {
  // Host identity: generated per host.
  for (const f of await readdir(join(root, 'etc/ssh'))) {
    if (f.startsWith('ssh_host_')) await rm(join(root, 'etc/ssh', f), { force: true });
  }
  await writeFile(join(root, 'etc/machine-id'), '');
  await rm(join(root, 'var/lib/dbus/machine-id'), { force: true });
  await mkdir(join(root, 'var/lib/dbus'), { recursive: true });
  await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  await writeFile(join(root, 'etc/hostname'), 'localhost\n');
  await rm(join(root, 'etc/resolv.conf'), { force: true });
  await writeFile(join(root, 'etc/resolv.conf'), '# Lab hosts have no DNS server; names they need are in /etc/hosts.\noptions timeout:1 attempts:1\n');

  // Login user with passwordless sudo; root and it get their authorized_keys per host.
  await run('chroot', [root, 'useradd', '--create-home', '--shell', '/bin/bash', '--user-group', '--groups', 'sudo', LOGIN_USER]);
  await writeFile(join(root, 'etc/sudoers.d/90-formwork'), `${LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n`);
  await chmod(join(root, 'etc/sudoers.d/90-formwork'), 0o440);
  for (const home of ['root', `home/${LOGIN_USER}`]) {
    await mkdir(join(root, home, '.ssh'), { recursive: true, mode: 0o700 });
  }
  await run('chroot', [root, 'chown', '-R', `${LOGIN_USER}:${LOGIN_USER}`, `/home/${LOGIN_USER}`]);

  // Workloads configure and start these themselves.
  await run('systemctl', [`--root=${root}`, 'disable', ...BASE_DISABLED_SERVICES]);
  for (const svc of BASE_DISABLED_SERVICES) {
    await unlink(join(root, 'etc/systemd/system/multi-user.target.wants', svc)).catch(() => undefined);
  }
  await tuneBoot(root);

  // Packages: the hosts have no route out; apt goes through apt-cacher-ng on the public bridge.
  await writeFile(
    join(root, 'etc/apt/apt.conf.d/01formwork-proxy'),
    `// The lab provider's apt-cacher-ng on this host's public bridge (formwork-gateway is in /etc/hosts).\nAcquire::http::Proxy "http://${GATEWAY_HOSTNAME}:${APT_PROXY_PORT}/";\n`,
  );
  await writeFile(
    join(root, 'etc/apt/sources.list'),
    `deb ${mirror} ${BASE_SUITE} main\ndeb ${mirror} ${BASE_SUITE}-updates main\n` +
      (mirror.replace(/\/+$/, '').endsWith('/debian') ? `deb ${mirror.replace(/\/+$/, '')}-security ${BASE_SUITE}-security main\n` : ''),
  );
  await run('chroot', [root, 'apt-get', 'clean']).catch(() => undefined);
  await rm(join(root, 'var/lib/apt/lists'), { recursive: true, force: true });
  await mkdir(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
  // apt's package cache, built now: otherwise each host's first apt command builds it (0.3 s
  // on the boot path: node-ready's package-manager check is one).
  await run('chroot', [root, 'apt-cache', 'gencaches']);
  await rm(join(root, 'debootstrap'), { recursive: true, force: true });
}

/**
 * Units a container host has no use for, masked so that boot does only what a server needs
 * (sshd up, then multi-user). Measured with `systemd-analyze blame` on 4 hosts booting at
 * once on 2 CPUs: each of these cost 100–300 ms of CPU on the boot path.
 */
export const BASE_MASKED_UNITS = [
  // Nothing to resize, mount, load or seed inside a container (the kernel is the host's).
  'systemd-remount-fs.service', 'dev-hugepages.mount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount',
  'sys-kernel-config.mount', 'sys-fs-fuse-connections.mount', 'proc-sys-fs-binfmt_misc.automount', 'systemd-binfmt.service',
  'kmod-static-nodes.service', 'systemd-modules-load.service', 'systemd-tmpfiles-setup-dev.service', 'systemd-sysctl.service',
  'systemd-random-seed.service', 'systemd-pstore.service', 'systemd-firstboot.service', 'systemd-repart.service',
  'systemd-machine-id-commit.service', 'e2scrub_reap.service',
  // Users come with their packages; boot records and consoles nobody reads here.
  'systemd-sysusers.service', 'systemd-update-utmp.service', 'systemd-update-utmp-runlevel.service',
  'console-getty.service', 'getty@tty1.service', 'systemd-journal-flush.service',
  // No login manager: a login is a plain PAM session (see tuneBoot). logind is on the boot's
  // critical path, and the per-user systemd it starts cost 0.3 s on each user's first login.
  'systemd-logind.service',
  // Periodic jobs: apt's would take the dpkg lock (and try the network) under a running workload.
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'fstrim.timer',
];

/** Generators that find nothing in a container (no fstab, kernel command line, disks or SysV-only services). */
const BASE_DISABLED_GENERATORS = [
  'systemd-cryptsetup-generator', 'systemd-debug-generator', 'systemd-fstab-generator', 'systemd-getty-generator',
  'systemd-gpt-auto-generator', 'systemd-hibernate-resume-generator', 'systemd-integritysetup-generator',
  'systemd-rc-local-generator', 'systemd-run-generator', 'systemd-system-update-generator', 'systemd-sysv-generator',
  'systemd-veritysetup-generator',
];

/** Boots the base to sshd with no work a container doesn't need; see BASE_MASKED_UNITS. */
export async function tuneBoot(root: string): Promise<void> {
  await run('systemctl', [`--root=${root}`, 'mask', ...BASE_MASKED_UNITS]);
  // systemd runs every generator as a process before it loads a unit; a link to /dev/null disables one.
  await mkdir(join(root, 'etc/systemd/system-generators'), { recursive: true });
  for (const g of BASE_DISABLED_GENERATORS) {
    await rm(join(root, 'etc/systemd/system-generators', g), { force: true });
    await symlink('/dev/null', join(root, 'etc/systemd/system-generators', g));
  }
  // Sessions without logind (masked above): pam_systemd would only wait for it.
  await run('chroot', [root, 'pam-auth-update', '--package', '--disable', 'systemd']);
  // sshd checks its config in ExecStartPre: a second sshd start on the boot path, for a config
  // we wrote ourselves. The check still runs on reload.
  await mkdir(join(root, 'etc/systemd/system/ssh.service.d'), { recursive: true });
  await writeFile(join(root, 'etc/systemd/system/ssh.service.d/formwork.conf'), '# Formwork lab: no config test on the boot path (it still runs on reload).\n[Service]\nExecStartPre=\n');
  // The journal stays in memory: nothing to flush to disk at boot, nothing to keep per host.
  await mkdir(join(root, 'etc/systemd/journald.conf.d'), { recursive: true });
  await writeFile(join(root, 'etc/systemd/journald.conf.d/formwork.conf'), '[Journal]\nStorage=volatile\n');
}

/** Unmounts anything debootstrap left mounted under `dir`, then deletes it. */
export async function removeTree(dir: string): Promise<void> {
  const mounts = mountsUnder(dir);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
  // Never let a recursive delete walk into a mount (a leftover /proc or /dev bind of the host).
  const still = mountsUnder(dir);
  if (still.length > 0) throw new FormworkError('PROVIDER_ERROR', `cannot remove ${dir}: still mounted: ${still.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}

async function removeStaleTemps(labDir: string): Promise<void> {
  for (const e of await readdir(labDir)) {
    const m = /^base\.tmp-(\d+)-/.exec(e);
    if (!m) continue;
    // We hold the lock, so any temp dir is from a builder that died.
    await removeTree(join(labDir, e));
  }
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
}

/** Overlay mounts whose lower layer is `baseDir` (hosts using the base). */
export function overlaysUsing(baseDir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'overlay' && (f[3] ?? '').split(',').includes(`lowerdir=${baseDir}`))
    .map((f) => f[1]);
}
