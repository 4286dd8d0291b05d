import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../package.js';

/**
 * Runs a built-in pack's shell script on this machine without touching it: a copy whose
 * absolute paths (/etc/, /var/lib/, /usr/sbin/) point into a temp dir, with a PATH of
 * stub commands (shell snippets that may log to $CALLS) plus chosen real tools — so a
 * test controls what is "installed" (python3 missing, say) and sees every call.
 */
export interface ScriptHost {
  dir: string;
  /** Writes an executable stub into the host's bin/ (the body is a /bin/sh script). */
  stub(name: string, body: string): void;
  /** Makes a real tool available (a symlink in bin/). */
  real(...names: string[]): void;
  /** Runs asynchronously: a script that waits (health.sh retries) must not stop the test's event loop. */
  run(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The stubs' calls logged so far, one per line. */
  calls(): string[];
  /** A path inside the fake root, e.g. file('/etc/etcd/formwork.yml'). */
  file(p: string): string;
}

/** The tools bash scripts here use that tests may take as they are. */
export const BASIC_TOOLS = ['bash', 'sh', 'cat', 'chmod', 'cut', 'grep', 'mv', 'rm', 'mkdir', 'sort', 'wc', 'tr', 'touch', 'sha256sum', 'date', 'sleep', 'mktemp', 'env', 'dirname', 'ls', 'ln', 'tail'];

function which(name: string): string {
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
  throw new Error(`${name} not found on this machine`);
}

export function scriptHost(): ScriptHost {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-script-'));
  const bin = path.join(dir, 'bin');
  for (const d of [bin, 'etc/default', 'var/lib', 'usr/sbin']) fs.mkdirSync(path.resolve(dir, d), { recursive: true });
  const calls = path.join(dir, 'calls.log');
  fs.writeFileSync(calls, '');
  const host: ScriptHost = {
    dir,
    stub(name, body) {
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    },
    real(...names) {
      for (const n of names) fs.rmSync(path.join(bin, n), { force: true }), fs.symlinkSync(which(n), path.join(bin, n));
    },
    run(script, env) {
      const text = fs
        .readFileSync(path.join(packageRoot(), 'workloads', script), 'utf8')
        .replace(/(?<![\w.])\/(etc|var\/lib|usr\/sbin)\//g, `${dir}/$1/`);
      const copy = path.join(dir, path.basename(script));
      fs.writeFileSync(copy, text, { mode: 0o755 });
      return new Promise((resolve, reject) => {
        const child = spawn(path.join(bin, 'bash'), [copy], { env: { PATH: bin, CALLS: calls, ROOT: dir, ...env }, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    },
    calls: () => fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean),
    file: (p) => path.join(dir, p),
  };
  host.real(...BASIC_TOOLS);
  return host;
}
