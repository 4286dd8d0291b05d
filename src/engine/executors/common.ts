import { FormworkError } from '../../core/errors.js';
import { inputEnvName } from '../process.js';
import { renderScript, templatePaths, type RenderedScript } from '../template.js';
import type { RunJob } from '../types.js';

/** "role x on node y": how errors and logs name a run. */
export function runLabel(job: RunJob): string {
  return `role ${job.role.name}${job.node ? ` on node ${job.node.name}` : ''}`;
}

/** The role's inputs marked `secret`. */
function secretInputs(job: RunJob): string[] {
  return Object.entries(job.role.inputs ?? {})
    .filter(([, spec]) => spec.secret)
    .map(([name]) => name);
}

/** What templates can name: inputs (secret ones left out), previousInputs (redacted), node, deployment, role, noderole. */
export function templateContext(job: RunJob): Record<string, unknown> {
  const secret = new Set(secretInputs(job));
  return {
    inputs: Object.fromEntries(Object.entries(job.inputs).filter(([name]) => !secret.has(name))),
    previousInputs: job.previousInputs,
    node: job.node ?? {},
    deployment: job.deployment,
    role: job.role,
    noderole: job.noderole,
  };
}

/** The role's implementation file, rendered: its tags refer to variables of `env` (src/engine/template.ts). */
export function renderRoleFile(job: RunJob, file: string): RenderedScript {
  const text = job.files[file];
  if (text === undefined) {
    throw new FormworkError('WORKLOAD_INVALID', `role ${job.role.name}: file "${file}" is not in workload ${job.role.workload}`, {
      role: job.role.name,
      workload: job.role.workload,
      file,
      known: Object.keys(job.files),
    });
  }
  const where = `${job.role.workload}/${file}`;
  // A rendered file travels in the text of a command (an SSH exec, a shell's argv): on the
  // host it shows in `ps` and in sudo's log. Secrets go by environment and stdin instead.
  const secret = new Set(secretInputs(job));
  for (const tag of templatePaths(text)) {
    const [root, name] = tag.split('.');
    if (root === 'inputs' && name !== undefined && secret.has(name)) {
      throw new FormworkError('WORKLOAD_INVALID', `${where}: {{ ${tag} }} names a secret input, and a rendered file travels on the host's command line (ps, sudo's log); read it from $${inputEnvName(name)} or the inputs JSON on stdin instead`, {
        role: job.role.name,
        file,
        input: name,
      });
    }
  }
  return renderScript(text, templateContext(job), where);
}

/**
 * FW_NODE, FW_DEPLOYMENT, FW_ROLE, FW_NODEROLE, FW_RUN_ID; FW_PREVIOUS_INPUTS (the last
 * successful run's inputs as JSON, `{}` on a first run) and FW_STEP (`run` or `removal`):
 * what every executor gives a run, so that a role can tell a first run from a change.
 */
export function identityEnv(job: RunJob): Record<string, string> {
  return {
    FW_NODE: job.node?.name ?? '',
    FW_DEPLOYMENT: job.deployment.name,
    FW_ROLE: job.role.name,
    FW_NODEROLE: job.noderole.name,
    FW_RUN_ID: job.runId,
    FW_PREVIOUS_INPUTS: JSON.stringify(job.previousInputs),
    FW_STEP: job.removal ? 'removal' : 'run',
  };
}

/** identityEnv for Ansible: the same facts as extra vars (fw_previous_inputs a dict). */
export function identityVars(job: RunJob): Record<string, unknown> {
  return {
    fw_node: job.node?.name ?? '',
    fw_deployment: job.deployment.name,
    fw_role: job.role.name,
    fw_noderole: job.noderole.name,
    fw_run_id: job.runId,
    fw_previous_inputs: job.previousInputs,
    fw_step: job.removal ? 'removal' : 'run',
  };
}

export function exitError(job: RunJob, exitCode: number, signal?: string): FormworkError {
  return new FormworkError('RUN_FAILED', `${runLabel(job)} exited with ${exitCode}${signal ? ` (signal ${signal})` : ''}`, {
    role: job.role.name,
    node: job.node?.name,
    exitCode,
  });
}
