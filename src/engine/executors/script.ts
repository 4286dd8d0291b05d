/**
 * `script`: the rendered script runs on the node over SSH.
 *
 * Upload to `/tmp/formwork-<run id>.sh` (0700), run it with bash (via `sudo` when the role
 * says `sudo: true` and the login user is not root) with inputs on stdin and as FW_INPUT_*,
 * read the outputs file back with `cat`, remove both files. The host key is checked
 * against the node's recorded one; with none recorded the observed one is returned as a
 * node update (trust on first use).
 */
import { FormworkError } from '../../core/errors.js';
import { SshPool, shellQuote } from '../../ssh/client.js';
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
      const base = `/tmp/formwork-${job.runId}`;
      const scriptPath = `${base}.sh`;
      const outputsPath = `${base}.out`;
      try {
        await opts.pool.upload(target, scriptPath, script, 0o700, { sudo, timeoutMs: 60_000 });
        const res = await opts.pool.exec(target, `bash --norc --noprofile ${shellQuote(scriptPath)}`, {
          stdin: JSON.stringify(job.inputs),
          env: { ...inputEnv(job.inputs), ...identityEnv(job), FW_OUTPUTS: outputsPath },
          sudo,
          timeoutMs: job.timeoutMs,
          onOutput: (c) => io.log(c),
          maxOutputBytes: 64 * 1024, // the annealer keeps the full (capped) log
        });
        if (res.exitCode !== 0) throw exitError(job, res.exitCode, res.signal);
        const out = await opts.pool.exec(target, `if [ -f ${shellQuote(outputsPath)} ]; then cat ${shellQuote(outputsPath)}; fi`, {
          sudo,
          timeoutMs: 60_000,
          maxOutputBytes: 16 * 1024 * 1024,
        });
        if (out.exitCode !== 0) {
          throw new FormworkError('RUN_FAILED', `reading the outputs of role ${job.role.name} on node ${job.node.name} failed: ${out.stderr.trim()}`, {});
        }
        const outputs = parseOutputs(out.stdout, job.role, job.node.name);
        return { exitCode: 0, outputs, ...(nodeUpdate ? { nodeUpdate } : {}) };
      } catch (e) {
        // The host key was recorded even when the script failed: keep TOFU's first contact.
        if (nodeUpdate && e instanceof FormworkError) (e as FormworkError & { nodeUpdate?: unknown }).nodeUpdate = nodeUpdate;
        throw e;
      } finally {
        await opts.pool.exec(target, `rm -f ${shellQuote(scriptPath)} ${shellQuote(outputsPath)}`, { sudo, timeoutMs: 15_000 }).catch(() => undefined);
      }
    },
  };
}
