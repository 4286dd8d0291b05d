import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FACTS_SCRIPT, parseFacts } from './yardstick.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** FACTS_SCRIPT on a host of stubs: `id -u` says `uid`; sudo present (failing without a password) only when `sudo` is given. */
function facts(uid: number, sudo?: 'asks-password' | 'ok') {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-facts-'));
  dirs.push(bin);
  const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  stub('id', `echo ${uid}`);
  stub('hostname', 'echo h1');
  stub('systemctl', 'echo running');
  stub('apt-get', 'exit 0');
  if (sudo) stub('sudo', sudo === 'ok' ? 'exit 0' : 'echo "sudo: a password is required" >&2; exit 1');
  const r = spawnSync('/bin/bash', ['-c', FACTS_SCRIPT], { env: { PATH: bin }, encoding: 'utf8' });
  return parseFacts(r.stdout);
}

describe('the yardstick facts script', () => {
  it('root can act as root on a host without sudo', () => {
    expect(facts(0)).toMatchObject({ hostname: 'h1', pm: 'apt', pmok: 'yes', sudo: 'yes' });
  });
  it('another user needs sudo without a password', () => {
    expect(facts(1000).sudo).toBe('no');
    expect(facts(1000, 'asks-password').sudo).toBe('no');
    expect(facts(1000, 'ok').sudo).toBe('yes');
  });
});
