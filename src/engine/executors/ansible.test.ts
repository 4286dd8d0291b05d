import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { unsafeVarsYaml } from './ansible.js';

const execFileP = promisify(execFile);

describe('ansible vars', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Jinja in an input is data: ansible-playbook writes the exact string and runs nothing', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-ansible-vars-'));
    const marker = path.join(dir, 'pwned');
    const message = `{{ lookup('pipe', 'touch ${marker}') }} and {% raw %}x`;
    const out = path.join(dir, 'out');
    fs.writeFileSync(path.join(dir, 'vars.yaml'), unsafeVarsYaml({ message, inputs: { message, list: [message] }, out }));
    fs.writeFileSync(
      path.join(dir, 'play.yml'),
      '- hosts: localhost\n  gather_facts: false\n  tasks:\n    - copy: { content: "{{ message }}|{{ inputs.message }}|{{ inputs.list[0] }}", dest: "{{ out }}" }\n',
    );
    await execFileP('ansible-playbook', ['-i', 'localhost,', '-c', 'local', '-e', `@${path.join(dir, 'vars.yaml')}`, path.join(dir, 'play.yml')], {
      env: { PATH: process.env.PATH, HOME: dir, ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'), ANSIBLE_NOCOLOR: '1' },
      timeout: 60_000,
    });
    expect(fs.readFileSync(out, 'utf8')).toBe([message, message, message].join('|'));
    expect(fs.existsSync(marker)).toBe(false);
  }, 90_000);
});
