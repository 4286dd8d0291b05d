/**
 * `ansible`: runs the role's playbook with ansible-playbook on the control host against
 * the one node.
 *
 * - Workload files are written to a temp dir (so a playbook's relative includes and
 *   templates resolve); the playbook is NOT rendered with Formwork templates (Ansible has
 *   Jinja): it reads inputs as variables.
 * - Inventory (`inventory.json`): the node's name with ansible_host/port/user, the
 *   platform private key file, and `StrictHostKeyChecking=yes` against a known_hosts file
 *   holding the key `ssh-keyscan` returns whose fingerprint is the recorded one (with
 *   none recorded, the ed25519 key is trusted and recorded: TOFU). A mismatch is
 *   HOST_KEY_MISMATCH, before Ansible runs.
 * - Extra vars (`-e @vars.yaml`): `inputs` (all inputs as a dict), each input as a
 *   top-level variable with `-` → `_`, `fw_outputs`, and identityVars: `fw_node`,
 *   `fw_deployment`, `fw_role`, `fw_noderole`, `fw_run_id`, `fw_previous_inputs`, `fw_step`.
 *   Every string in it is tagged `!unsafe`: Ansible evaluates Jinja found in a variable's
 *   value, so an input holding `{{ lookup('pipe', 'id') }}` would otherwise run a command on
 *   the control host.
 * - Outputs: the playbook writes a JSON object to `{{ fw_outputs }}`, a path on the
 *   control host, with a task delegated to localhost, e.g.
 *   `copy: { content: "{{ {'url': x} | to_json }}", dest: "{{ fw_outputs }}" }` +
 *   `delegate_to: localhost`. No file means `{}`.
 * - Exit 4 (host unreachable) is SSH_UNREACHABLE (retryable), other non-zero RUN_FAILED.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { FormworkError } from '../../core/errors.js';
import { fingerprint, fingerprintsEqual } from '../../ssh/keys.js';
import { parseOutputs } from '../outputs.js';
import { baseEnv, runProcess } from '../process.js';
import type { RoleExecutor, RunIO, RunJob, RunResult } from '../types.js';
import { exitError, identityVars, runLabel } from './common.js';
import { ensurePlatformKey, nodeAddress, nodePort } from './target.js';

const execFileP = promisify(execFile);

export interface ScannedKey {
  type: string;
  blob: string;
  fingerprint: string;
}

/** The host keys the node presents, via ssh-keyscan. */
export async function scanHostKeys(host: string, port: number): Promise<ScannedKey[]> {
  let stdout = '';
  try {
    ({ stdout } = await execFileP('ssh-keyscan', ['-T', '10', '-p', String(port), host], { timeout: 20_000 }));
  } catch (e) {
    const err = e as { code?: string; stdout?: string };
    if (err.code === 'ENOENT') throw new FormworkError('MISSING_TOOL', 'ssh-keyscan is not installed; install the Debian package openssh-client', { tool: 'ssh-keyscan' });
    stdout = err.stdout ?? '';
  }
  const keys: ScannedKey[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [, type, blob] = line.trim().split(/\s+/);
    if (!type || !blob) continue;
    keys.push({ type, blob, fingerprint: fingerprint(`${type} ${blob}`) });
  }
  if (keys.length === 0) throw new FormworkError('SSH_UNREACHABLE', `SSH to ${host}:${port} failed: ssh-keyscan got no host key`, { host, port });
  return keys;
}

function splitInputVars(inputs: Record<string, unknown>): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) {
    const name = k.replace(/[^A-Za-z0-9_]/g, '_');
    if (/^[A-Za-z_]/.test(name)) vars[name] = v;
  }
  return vars;
}

/** Vars as YAML with every string value tagged `!unsafe`, so Ansible takes it as data, never as a template. */
export function unsafeVarsYaml(vars: Record<string, unknown>): string {
  const doc = new YAML.Document(vars);
  YAML.visit(doc, {
    Scalar(key, node) {
      if (key !== 'key' && typeof node.value === 'string') node.tag = '!unsafe';
    },
  });
  return doc.toString();
}

export function ansibleExecutor(opts: { dataDir: string }): RoleExecutor {
  return {
    kind: 'ansible',
    async run(job: RunJob, io: RunIO): Promise<RunResult> {
      const impl = job.role.implementation;
      if (impl.kind !== 'ansible') throw new Error('ansible executor got a non-ansible role');
      const node = job.node;
      if (!node) throw new FormworkError('RUN_FAILED', `role ${job.role.name} runs a playbook but node-role ${job.noderole.name} has no node`, {}, { retryable: false });
      if (job.files[impl.file] === undefined) {
        throw new FormworkError('WORKLOAD_INVALID', `role ${job.role.name}: playbook "${impl.file}" is not in workload ${job.role.workload}`, { file: impl.file });
      }
      const key = ensurePlatformKey(opts.dataDir);
      const host = nodeAddress(node);
      const port = nodePort(node);
      const user = typeof node.loginUser === 'string' && node.loginUser ? node.loginUser : 'root';
      const recorded = typeof node.hostKey === 'string' && node.hostKey ? node.hostKey : undefined;

      const keys = await scanHostKeys(host, port);
      let chosen: ScannedKey | undefined;
      let nodeUpdate: Record<string, unknown> | undefined;
      if (recorded) {
        chosen = keys.find((k) => fingerprintsEqual(k.fingerprint, recorded));
        if (!chosen) {
          throw new FormworkError(
            'HOST_KEY_MISMATCH',
            `the SSH host key of ${host}:${port} is ${keys.map((k) => k.fingerprint).join(' / ')}, but ${recorded} was recorded; refusing to connect`,
            { host, port, expected: recorded, observed: keys.map((k) => k.fingerprint) },
          );
        }
      } else {
        chosen = keys.find((k) => k.type === 'ssh-ed25519') ?? keys[0];
        nodeUpdate = { hostKey: chosen.fingerprint };
      }

      const dir = await fs.mkdtemp(path.join(job.tempDir, 'formwork-ansible-'));
      try {
        const work = path.join(dir, 'files');
        for (const [p, text] of Object.entries(job.files)) {
          const dest = path.resolve(work, p);
          if (!dest.startsWith(work + path.sep)) continue; // no escaping the work dir
          await fs.mkdir(path.dirname(dest), { recursive: true });
          await fs.writeFile(dest, text);
        }
        const knownHosts = path.join(dir, 'known_hosts');
        const hostField = port === 22 ? host : `[${host}]:${port}`;
        await fs.writeFile(knownHosts, `${hostField} ${chosen.type} ${chosen.blob}\n`);
        const keyFile = path.join(dir, 'id');
        await fs.writeFile(keyFile, key.privateKey, { mode: 0o600 });
        const outputsPath = path.join(dir, 'outputs.json');
        const hostVars: Record<string, unknown> = {
          ansible_host: host,
          ansible_port: port,
          ansible_user: user,
          ansible_ssh_private_key_file: keyFile,
          ansible_ssh_common_args: `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o HostKeyAlgorithms=${chosen.type} -o IdentitiesOnly=yes`,
          ansible_python_interpreter: 'auto_silent',
        };
        if ((impl as { sudo?: boolean }).sudo && user !== 'root') hostVars.ansible_become = true;
        const inventory = { all: { hosts: { [node.name]: hostVars } } };
        await fs.writeFile(path.join(dir, 'inventory.json'), JSON.stringify(inventory, null, 2));
        const vars = {
          ...splitInputVars(job.inputs),
          inputs: job.inputs,
          fw_outputs: outputsPath,
          ...identityVars(job),
        };
        await fs.writeFile(path.join(dir, 'vars.yaml'), unsafeVarsYaml(vars), { mode: 0o600 });
        let tail = ''; // the last of its output: what tells an unreachable host from a bad playbook
        const res = await runProcess({
          command: 'ansible-playbook',
          args: ['-i', path.join(dir, 'inventory.json'), '-e', `@${path.join(dir, 'vars.yaml')}`, path.join(work, impl.file)],
          cwd: work,
          env: {
            ...baseEnv(),
            ANSIBLE_HOST_KEY_CHECKING: 'True',
            ANSIBLE_NOCOLOR: '1',
            ANSIBLE_FORCE_COLOR: '0',
            ANSIBLE_RETRY_FILES_ENABLED: '0',
            ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
            ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'cp'),
            ANSIBLE_DEPRECATION_WARNINGS: '0',
            PYTHONUNBUFFERED: '1',
          },
          timeoutMs: job.timeoutMs,
          signal: io.signal,
          onOutput: (c) => {
            tail = (tail + c).slice(-64 * 1024);
            io.log(c);
          },
          label: runLabel(job),
        });
        // Exit 4 is Ansible's for an unreachable host and for a playbook it cannot parse: only
        // the recap (or the task line) tells them apart. A parse error never heals by retrying.
        if (res.exitCode === 4 && /UNREACHABLE!|unreachable=[1-9]/.test(tail)) {
          throw new FormworkError('SSH_UNREACHABLE', `${runLabel(job)}: Ansible could not reach ${host}:${port}`, { host, port, exitCode: 4 });
        }
        if (res.exitCode === 4) {
          const why = tail.trim().split('\n').filter((l) => /ERROR/.test(l)).slice(-1)[0] ?? 'see the run log';
          throw new FormworkError('RUN_FAILED', `${runLabel(job)}: ansible-playbook could not load ${impl.file} (exit 4): ${why.trim()}`, { role: job.role.name, node: node.name, exitCode: 4 }, { retryable: false });
        }
        if (res.exitCode !== 0) throw exitError(job, res.exitCode, res.signal);
        const text = await fs.readFile(outputsPath, 'utf8').catch(() => undefined);
        return { exitCode: 0, outputs: parseOutputs(text, job.role, node.name), ...(nodeUpdate ? { nodeUpdate } : {}) };
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };
}
