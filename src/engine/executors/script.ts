/**
 * `script`: the rendered script runs on the node over SSH.
 *
 * One SSH command writes the rendered script to a private temp dir, runs it with bash (via
 * `sudo` when the role says `sudo: true` and the login user is not root) with inputs on
 * stdin and as FW_INPUT_*, prints the outputs file after a one-time marker and removes
 * the dir. The host key is checked
 * against the node's recorded one; with none recorded the observed one is returned as a
 * node update (trust on first use).
 */
import { randomBytes } from 'node:crypto';
import { FormworkError } from '../../core/errors.js';
import type { SshPool } from '../../ssh/client.js';
import { parseOutputs } from '../outputs.js';
import { inputEnv } from '../process.js';
import type { RoleExecutor, RunIO, RunJob, RunResult } from '../types.js';
import { exitError, identityEnv, renderRoleFile } from './common.js';
import { ensurePlatformKey, sshTarget } from './target.js';

export function scriptExecutor(opts: { dataDir: string; pool: SshPool }): RoleExecutor {
  return {
    kind: 'script',
    async run(job: RunJob, io: RunIO): Promise<RunResult> {
      const impl = job.role.implementation;
      if (impl.kind !== 'script') throw new Error('script executor got a non-script role');
      if (!job.node) {
        throw new FormworkError('RUN_FAILED', `role ${job.role.name} runs a script over SSH but node-role ${job.noderole.name} has no node`, {}, { retryable: false });
      }
      const script = renderRoleFile(job, impl.file);
      const key = ensurePlatformKey(opts.dataDir);
      const target = sshTarget(job.node, key);
      const info = await opts.pool.connect(target);
      const nodeUpdate = target.knownHostKey ? undefined : { hostKey: info.hostKeyFingerprint };
      const sudo = impl.sudo === true;
      // One SSH round trip (each exec is a new session, which costs a PAM/logind setup on
      // most images): the script travels inside the command, runs with the inputs on stdin,
      // and its outputs file follows a one-time marker on stdout.
      const nonce = randomBytes(12).toString('hex');
      const marker = `FORMWORK-OUTPUTS-${nonce}`;
      const command = [
        `d=$(mktemp -d /tmp/formwork-run.XXXXXX) || exit 125`,
        `trap 'rm -rf "$d"' EXIT`,
        `cat > "$d/run.sh" <<'FORMWORK_SCRIPT_${nonce}'`,
        script.text.endsWith('\n') ? script.text.slice(0, -1) : script.text,
        `FORMWORK_SCRIPT_${nonce}`,
        `FW_OUTPUTS="$d/out" bash --norc --noprofile "$d/run.sh"`,
        `rc=$?`,
        `printf '\\n%s\\n' ${marker}`,
        `[ -f "$d/out" ] && cat "$d/out"`,
        `exit $rc`,
      ].join('\n');
      const split = new MarkerSplitter(marker, (c) => io.log(c));
      try {
        const res = await opts.pool.exec(target, command, {
          stdin: JSON.stringify(job.inputs),
          // Template values travel here too (the client sends them quoted on stdin, never in the command).
          env: { ...inputEnv(job.inputs), ...script.env, ...identityEnv(job) },
          sudo,
          timeoutMs: job.timeoutMs,
          signal: io.signal,
          onOutput: (c, stream) => (stream === 'stdout' ? split.push(c) : io.log(c)),
          maxOutputBytes: 16 * 1024 * 1024,
        });
        split.end();
        if (res.exitCode !== 0) throw exitError(job, res.exitCode, res.signal);
        if (!split.found) {
          throw new FormworkError('RUN_FAILED', `role ${job.role.name} on node ${job.node.name}: the run ended without reporting its outputs (was the shell replaced?)`, {});
        }
        const outputs = parseOutputs(split.after, job.role, job.node.name);
        return { exitCode: 0, outputs, ...(nodeUpdate ? { nodeUpdate } : {}) };
      } catch (e) {
        split.end(); // keep what the script printed before the connection dropped
        // The host key was recorded even when the script failed: keep TOFU's first contact.
        if (nodeUpdate && e instanceof FormworkError) (e as FormworkError & { nodeUpdate?: unknown }).nodeUpdate = nodeUpdate;
        throw e;
      }
    },
  };
}

/**
 * Forwards stdout to the log until a marker line, keeping everything after it. Holds back
 * only a tail that could begin the marker, so a marker split across chunks is still found
 * and the log still streams line by line.
 */
export class MarkerSplitter {
  found = false;
  after = '';
  private pending = '';
  private readonly needle: string;

  constructor(marker: string, private readonly forward: (chunk: string) => void) {
    this.needle = `\n${marker}\n`;
  }

  push(chunk: string): void {
    if (this.found) {
      this.after += chunk;
      return;
    }
    this.pending += chunk;
    const i = this.pending.indexOf(this.needle);
    if (i >= 0) {
      this.found = true;
      if (i > 0) this.forward(this.pending.slice(0, i));
      this.after = this.pending.slice(i + this.needle.length);
      this.pending = '';
      return;
    }
    // Hold back only a tail that could be the start of the marker line, so the log streams live.
    let keepFrom = this.pending.length;
    for (let k = Math.min(this.pending.length, this.needle.length - 1); k > 0; k--) {
      if (this.needle.startsWith(this.pending.slice(this.pending.length - k))) {
        keepFrom = this.pending.length - k;
        break;
      }
    }
    if (keepFrom > 0) this.forward(this.pending.slice(0, keepFrom));
    this.pending = this.pending.slice(keepFrom);
  }

  end(): void {
    if (!this.found && this.pending) this.forward(this.pending);
    this.pending = '';
  }
}
