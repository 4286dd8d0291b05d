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
  for (const t of ['sed', 'dirname', 'grep', 'cat', 'mkdir', 'readlink', 'uname', 'mktemp', 'rm']) fs.symlinkSync(`/usr/bin/${t}`, path.join(bin, t));
  const r = spawnSync('/bin/bash', [path.join(packageRoot(), 'scripts', 'setup.sh')], { env: { PATH: bin }, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, calls: fs.existsSync(path.join(bin, 'calls')) ? fs.readFileSync(path.join(bin, 'calls'), 'utf8') : '' };
}

describe('scripts/setup.sh', () => {
  it('installs Node.js 24 from the npm registry before anything else when node is missing or older than 22', () => {
    for (const version of [undefined, 'v18.19.0', 'v20.20.2']) {
      const r = setup(version);
      // The stub npm fails: setup stops there, having asked for the LTS build and nothing else.
      expect(r.code).not.toBe(0);
      expect(r.calls).toMatch(/^npm pack --silent node-linux-(x64|arm64)@24\.\d+\.\d+\n$/);
      expect(r.stderr).not.toContain('dpkg');
    }
  });

  it('says what is missing when there is neither node nor npm', () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-setup-'));
    dirs.push(bin);
    fs.writeFileSync(path.join(bin, 'id'), '#!/bin/sh\necho 0\n', { mode: 0o755 });
    for (const t of ['sed', 'dirname']) fs.symlinkSync(`/usr/bin/${t}`, path.join(bin, t));
    const r = spawnSync('/bin/bash', [path.join(packageRoot(), 'scripts', 'setup.sh')], { env: { PATH: bin }, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Formwork needs Node.js 22 or newer and npm to fetch it');
  });

  it('goes on with Node.js 22 or 24', () => {
    for (const version of ['v22.11.0', 'v24.22.3']) {
      const r = setup(version);
      expect(r.calls).not.toContain('npm pack');
      expect(r.calls).toContain('dpkg-query');
    }
  });
});
