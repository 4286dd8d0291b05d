/**
 * The interfaces between the annealer and its executors (docs/engine-contract.md, "Executors").
 *
 */
import type { StoredObject } from '../core/kinds.js';
import type { RoleSpec } from '../core/roles.js';
import type { Services } from '../context/services.js';
import type { SshPool } from '../ssh/client.js';

export interface RunJob {
  runId: string;
  noderole: StoredObject;
  role: RoleSpec;
  node?: StoredObject;
  deployment: StoredObject;
  inputs: Record<string, unknown>;
  /**
   * The inputs of the node-role's last successful run, secret ones redacted; `{}` on its
   * first run. What tells a role's first run from a change (FW_PREVIOUS_INPUTS, `previousInputs`).
   */
  previousInputs: Record<string, unknown>;
  /** The run is the role's removal step (its `removal` is `role.implementation` here). */
  removal?: boolean;
  /** The role's workload files, path → text. */
  files: Record<string, string>;
  timeoutMs: number;
  /** The worker's temp dir: a run makes its temp dirs under it, so that a dead worker's are found and removed (src/engine/workers.ts). */
  tempDir: string;
}

export interface RunIO {
  /** Appends to the run log (capped by the annealer) and to the `logs` event stream (batched). */
  log(chunk: string): void;
  /** Aborted when the run must stop (the worker stops, or its lease was lost). */
  signal: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  outputs: Record<string, unknown>;
  /** Fields to write on the node (e.g. `hostKey` recorded on first contact). */
  nodeUpdate?: Record<string, unknown>;
}

export interface RoleExecutor {
  kind: string;
  run(job: RunJob, io: RunIO): Promise<RunResult>;
}

/** What a builtin handler may use besides its job: the services and the engine's SSH pool (shared with script runs). */
export interface BuiltinContext {
  services: Services;
  ssh: SshPool;
}
export type BuiltinHandler = (job: RunJob, io: RunIO, ctx: BuiltinContext) => Promise<RunResult>;

export const DEFAULT_TIMEOUT_SECONDS = 300;
export const DEFAULT_RETRIES = 3;
