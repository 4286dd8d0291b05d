import { FormworkError } from '../../core/errors.js';
import { renderTemplate } from '../template.js';
import type { RunJob } from '../types.js';

/** "role x on node y": how errors and logs name a run. */
export function runLabel(job: RunJob): string {
  return `role ${job.role.name}${job.node ? ` on node ${job.node.name}` : ''}`;
}

/** What templates can name: inputs, node, deployment, role, noderole. */
export function templateContext(job: RunJob): Record<string, unknown> {
  return {
    inputs: job.inputs,
    node: job.node ?? {},
    deployment: job.deployment,
    role: job.role,
    noderole: job.noderole,
  };
}

/** The role's implementation file, rendered. */
export function renderRoleFile(job: RunJob, file: string): string {
  const text = job.files[file];
  if (text === undefined) {
    throw new FormworkError('WORKLOAD_INVALID', `role ${job.role.name}: file "${file}" is not in workload ${job.role.workload}`, {
      role: job.role.name,
      workload: job.role.workload,
      file,
      known: Object.keys(job.files),
    });
  }
  return renderTemplate(text, templateContext(job), `${job.role.workload}/${file}`);
}

/** FW_NODE, FW_DEPLOYMENT, FW_ROLE, FW_NODEROLE, FW_RUN_ID. */
export function identityEnv(job: RunJob): Record<string, string> {
  return {
    FW_NODE: job.node?.name ?? '',
    FW_DEPLOYMENT: job.deployment.name,
    FW_ROLE: job.role.name,
    FW_NODEROLE: job.noderole.name,
    FW_RUN_ID: job.runId,
  };
}

export function exitError(job: RunJob, exitCode: number, signal?: string): FormworkError {
  return new FormworkError('RUN_FAILED', `${runLabel(job)} exited with ${exitCode}${signal ? ` (signal ${signal})` : ''}`, {
    role: job.role.name,
    node: job.node?.name,
    exitCode,
  });
}
