import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from './package.js';

/** scripts/setup.sh's Node.js check, with stub `id`, `node` and apt tools on PATH (nothing is installed). */
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function setup(nodeVersion?: string) {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-setup-'));
  dirs.push(bin);
  const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  stub('id', 'echo 0');
  for (const t of ['dpkg-query', 'apt-get', 'npm', 'systemctl', 'update-rc.d']) stub(t, `echo "${t} $*" >> "${bin}/calls"; exit 1`);
  if (nodeVersion) stub('node', `echo ${nodeVersion}`);
  for (const t of ['sed', 'dirname', 'grep', 'cat', 'mkdir']) fs.symlinkSync(`/usr/bin/${t}`, path.join(bin, t));
  const r = spawnSync('/bin/bash', [path.join(packageRoot(), 'scripts', 'setup.sh')], { env: { PATH: bin }, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, calls: fs.existsSync(path.join(bin, 'calls')) ? fs.readFileSync(path.join(bin, 'calls'), 'utf8') : '' };
}

describe('scripts/setup.sh', () => {
  it('stops before installing anything when Node.js is missing or older than 20, saying how to get 20', () => {
    for (const [version, found] of [[undefined, 'found no node on PATH'], ['v18.19.0', 'found Node.js 18']] as const) {
      const r = setup(version);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: Formwork needs Node.js 20 or newer; ${found}.`);
      expect(r.stderr).toContain('https://nodejs.org/en/download');
      expect(r.calls).toBe('');
    }
  });

  it('goes on with Node.js 20', () => {
    const r = setup('v20.11.1');
    expect(r.stderr).not.toContain('needs Node.js');
    expect(r.calls).toContain('dpkg-query');
  });
});
