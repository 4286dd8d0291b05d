/**
 * `local`: the rendered script runs with bash on the control host, in a temp dir.
 * Inputs arrive as JSON on stdin and as FW_INPUT_* variables; the script writes its
 * outputs (a JSON object) to the file named by FW_OUTPUTS.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseOutputs } from '../outputs.js';
import { baseEnv, inputEnv, runProcess } from '../process.js';
import type { RoleExecutor, RunIO, RunJob, RunResult } from '../types.js';
import { exitError, identityEnv, renderRoleFile, runLabel } from './common.js';

export function localExecutor(): RoleExecutor {
  return {
    kind: 'local',
    async run(job: RunJob, io: RunIO): Promise<RunResult> {
      if (job.role.implementation.kind !== 'local') throw new Error('local executor got a non-local role');
      const script = renderRoleFile(job, job.role.implementation.file);
      const dir = await fs.mkdtemp(path.join(job.tempDir, 'formwork-run-'));
      try {
        const scriptPath = path.join(dir, 'script.sh');
        const outputsPath = path.join(dir, 'outputs.json');
        await fs.writeFile(scriptPath, script.text, { mode: 0o700 });
        const res = await runProcess({
          command: 'bash',
          args: ['--norc', '--noprofile', scriptPath],
          cwd: dir,
          env: { ...baseEnv(), ...inputEnv(job.inputs), ...script.env, ...identityEnv(job), FW_OUTPUTS: outputsPath },
          stdin: JSON.stringify(job.inputs),
          timeoutMs: job.timeoutMs,
          signal: io.signal,
          onOutput: (c) => io.log(c),
          label: runLabel(job),
        });
        if (res.exitCode !== 0) throw exitError(job, res.exitCode, res.signal);
        const text = await fs.readFile(outputsPath, 'utf8').catch(() => undefined);
        return { exitCode: 0, outputs: parseOutputs(text, job.role, job.node?.name) };
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  };
}
