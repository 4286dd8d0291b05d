/**
 * Test helper: a real OpenSSH server on 127.0.0.1, on a random free port, with its own host
 * key, authorized_keys, pid file and config in a temp dir. Must run as root (sshd -D
 * with privilege separation). Reusable by any suite:
 *
 *   const sshd = await startSshd({ authorizedKeys: [kp.publicKey] });
 *   ... connect to { host: sshd.host, port: sshd.port, username: 'root' } ...
 *   await sshd.stop();
 *
 * stop() kills the processes this helper started (the sshd it spawned, by pid, and that
 * sshd's descendants: per-connection sshd processes and the commands they run), and
 * removes the temp dir. A process 'exit' hook kills any sshd a crashed suite left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprint, generateKeyPair } from '../keys.js';

export const SSHD_PATH = '/usr/sbin/sshd';

export interface StartSshdOptions {
  /** authorized_keys lines (e.g. `ssh-ed25519 AAAA... formwork`), valid for every user. */
  authorizedKeys: string[];
  /** Extra sshd_config lines; they come first, so they win over the generated ones (sshd takes a keyword's first value). */
  extraConfig?: string[];
  /** Milliseconds to wait for "Server listening". Default 10 s. */
  startTimeoutMs?: number;
}

export interface SshdHandle {
  readonly host: string;
  readonly port: number;
  /** Pid of the sshd master this helper spawned (changes after restartWithNewHostKey). */
  readonly pid: number;
  /** The temp dir holding config, host key, authorized_keys, pid file. */
  readonly dir: string;
  /** `SHA256:...` of the current host key. */
  readonly hostKeyFingerprint: string;
  /** The current host public key line. */
  readonly hostPublicKey: string;
  /** Everything sshd wrote to stderr (LogLevel VERBOSE) since start. */
  log(): string;
  /** How many successful public key logins the server logged (counts connections). */
  acceptedLogins(): number;
  /** Pids of the per-connection sshd processes (direct children of the master). */
  connectionPids(): number[];
  /** All descendants of the master (connection processes and the commands they run). */
  descendantPids(): number[];
  /** Kills every connection process, then the commands they ran (the master keeps listening). */
  killSessions(signal?: NodeJS.Signals): void;
  /** Replaces authorized_keys (read by sshd at each login). */
  setAuthorizedKeys(lines: string[]): void;
  /** Stops sshd, makes a new host key, starts again on the same port. Returns the new fingerprint. */
  restartWithNewHostKey(): Promise<string>;
  /** Stops sshd and its sessions and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      if (child.pid === undefined) continue;
      for (const pid of descendants(child.pid)) safeKill(pid, 'SIGKILL');
      safeKill(child.pid, 'SIGKILL');
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Direct parent of every process, read from /proc. */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // comm may hold spaces and parens: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  return children;
}

/** Every descendant of `root` (not root itself), breadth first. */
export function descendants(root: number): number[] {
  const children = parentMap();
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift() as number;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function writeHostKey(dir: string): { publicKey: string; fingerprint: string } {
  const kp = generateKeyPair('formwork-test-host');
  const path = join(dir, 'ssh_host_ed25519_key');
  rmSync(path, { force: true });
  writeFileSync(path, kp.privateKey, { mode: 0o600 });
  writeFileSync(`${path}.pub`, `${kp.publicKey}\n`, { mode: 0o644 });
  return { publicKey: kp.publicKey, fingerprint: fingerprint(kp.publicKey) };
}

function writeConfig(dir: string, port: number, extra: string[]): string {
  const path = join(dir, 'sshd_config');
  // sshd takes a keyword's first value: the extra lines come first, so they override.
  const lines = [
    ...extra,
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'LogLevel VERBOSE',
    'MaxStartups 100:30:200',
    'MaxSessions 20',
    'MaxAuthTries 6',
    'LoginGraceTime 30',
    'Subsystem sftp internal-sftp',
    'PrintMotd no',
    'UseDNS no',
  ];
  writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o600 });
  return path;
}

interface Spawned {
  child: ChildProcess;
  logRef: { text: string };
}

function spawnSshd(config: string, port: number, timeoutMs: number, logRef: { text: string }): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(SSHD_PATH, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    let settled = false;
    const needle = `Server listening on 127.0.0.1 port ${port}`;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      if (child.pid !== undefined) safeKill(child.pid, 'SIGKILL');
      reject(new Error(`sshd did not start within ${timeoutMs} ms:\n${logRef.text}`));
    }, timeoutMs);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      logRef.text += d;
      if (!settled && logRef.text.includes(needle)) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, logRef });
      }
    });
    child.on('error', (e) => {
      running.delete(child);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`sshd exited during start (code ${code}, signal ${signal}):\n${logRef.text}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  // Sessions first: the master does not end its per-connection children on SIGTERM.
  for (const p of descendants(pid).reverse()) safeKill(p, 'SIGKILL');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  safeKill(pid, 'SIGTERM');
  const t = setTimeout(() => safeKill(pid, 'SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
  running.delete(child);
}

export async function startSshd(opts: StartSshdOptions): Promise<SshdHandle> {
  if (process.getuid?.() !== 0) throw new Error('startSshd needs root (sshd -D with privilege separation)');
  installExitHook();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'formwork-sshd-'));
  tempDirs.add(dir);
  const extra = opts.extraConfig ?? [];
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const authorizedPath = join(dir, 'authorized_keys');
  const setAuthorizedKeys = (lines: string[]): void => {
    writeFileSync(authorizedPath, lines.map((l) => l.trim()).filter(Boolean).join('\n') + '\n', { mode: 0o600 });
  };
  setAuthorizedKeys(opts.authorizedKeys);
  let hostKey = writeHostKey(dir);
  const logRef = { text: '' };

  let spawned: Spawned | undefined;
  let port = 0;
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5 && !spawned; attempt++) {
    port = await freePort();
    const config = writeConfig(dir, port, extra);
    try {
      spawned = await spawnSshd(config, port, timeoutMs, logRef);
    } catch (e) {
      lastErr = e; // most likely another process took the port: pick another
    }
  }
  if (!spawned) {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }

  let child = spawned.child;
  let stopped = false;
  const configPath = join(dir, 'sshd_config');

  const handle: SshdHandle = {
    host: '127.0.0.1',
    port,
    get pid() {
      return child.pid as number;
    },
    dir,
    get hostKeyFingerprint() {
      return hostKey.fingerprint;
    },
    get hostPublicKey() {
      return hostKey.publicKey;
    },
    log: () => logRef.text,
    acceptedLogins: () => (logRef.text.match(/Accepted publickey for /g) ?? []).length,
    connectionPids: () => parentMap().get(child.pid as number) ?? [],
    descendantPids: () => descendants(child.pid as number),
    killSessions: (signal: NodeJS.Signals = 'SIGKILL') => {
      // sshd processes first, so the connection drops before any command can be seen to
      // exit (which would let the session report an exit status); then the commands.
      const all = descendants(child.pid as number);
      const isSshd = (pid: number): boolean => {
        try {
          return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sshd';
        } catch {
          return false;
        }
      };
      const sshds = all.filter(isSshd);
      for (const p of sshds) safeKill(p, signal);
      for (const p of all) if (!sshds.includes(p)) safeKill(p, signal);
    },
    setAuthorizedKeys,
    restartWithNewHostKey: async () => {
      if (stopped) throw new Error('sshd was stopped');
      await stopChild(child);
      hostKey = writeHostKey(dir);
      let e: unknown;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          child = (await spawnSshd(configPath, port, timeoutMs, logRef)).child;
          return hostKey.fingerprint;
        } catch (err) {
          e = err; // the port may linger briefly; retry
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw e instanceof Error ? e : new Error(String(e));
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
  return handle;
}
