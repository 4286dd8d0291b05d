/**
 * The one registry of Formwork's error codes.
 *
 * Domain errors know nothing of HTTP: each code carries a `category`, and the API maps
 * categories to status codes in one place (src/api/errors.ts). Each code also says
 * whether retrying can help, so the engine's retry policy reads it instead of guessing
 * from messages. docs/errors.md lists every code; a test keeps the two in sync.
 *
 * @example
 *   throw new FormworkError('NOT_FOUND', `node "web-1" does not exist`, { kind: 'node', key: 'web-1' });
 */

export type ErrorCategory =
  | 'invalid' // the request is wrong: fix it and try again
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict' // the request clashes with current state
  | 'precondition' // a stale version (If-Match)
  | 'too_large'
  | 'unavailable' // a dependency is down or slow: retrying may help
  | 'failed' // an operation ran and failed (a script, a provider call)
  | 'internal';

export interface ErrorCodeInfo {
  category: ErrorCategory;
  retryable: boolean;
  description: string;
}

export const ERROR_CODES = {
  VALIDATION: { category: 'invalid', retryable: false, description: 'The input does not match its schema: a field is missing, unknown, or of the wrong type. `details` lists each problem with its path.' },
  MALFORMED_BODY: { category: 'invalid', retryable: false, description: 'The body is not valid JSON or YAML.' },
  UNKNOWN_KIND: { category: 'invalid', retryable: false, description: 'The object kind is not one Formwork knows. `details.known` lists the kinds.' },
  BODY_TOO_LARGE: { category: 'too_large', retryable: false, description: 'The request body exceeds the server limit.' },
  UNAUTHENTICATED: { category: 'unauthenticated', retryable: false, description: 'No bearer token, or the token is unknown, expired or revoked.' },
  FORBIDDEN: { category: 'forbidden', retryable: false, description: "The token's role may not do this (viewers only read; operators do not manage users, tokens, secrets, providers, workloads or roles)." },
  NOT_FOUND: { category: 'not_found', retryable: false, description: 'No object of that kind has that id or name.' },
  ALREADY_EXISTS: { category: 'conflict', retryable: false, description: 'An object of that kind already has that name.' },
  VERSION_MISMATCH: { category: 'precondition', retryable: false, description: 'The object changed since you read it (If-Match or `version` is stale). Read it again and reapply.' },
  CONFLICT: { category: 'conflict', retryable: false, description: 'The change clashes with the current state (for example deleting an object still in use), or a concurrent write took the same key first; a write that lost such a race says it is retryable.' },
  SCHEMA_TOO_NEW: { category: 'internal', retryable: false, description: 'The database was migrated by a newer Formwork; this version refuses to touch it. Upgrade Formwork.' },
  ROLE_UNKNOWN: { category: 'invalid', retryable: false, description: 'A role named in a binding or in `requires` is not defined by any loaded workload.' },
  ROLE_CYCLE: { category: 'invalid', retryable: false, description: 'Roles require each other in a cycle. `details.cycle` lists it.' },
  ROLE_CONFLICT: { category: 'conflict', retryable: false, description: 'Two roles that conflict would be bound to the same node.' },
  ROLE_UNSATISFIABLE: { category: 'invalid', retryable: false, description: 'A required role or alias cannot be bound (nothing provides it, or no node can take it).' },
  WORKLOAD_INVALID: { category: 'invalid', retryable: false, description: 'A workload pack failed validation. `details.errors` lists every problem with its file, role and field.' },
  INPUT_INVALID: { category: 'invalid', retryable: false, description: "A node-role's resolved inputs do not match the role's input schema." },
  OUTPUT_INVALID: { category: 'failed', retryable: false, description: "A run's outputs are not valid JSON or do not match the role's output schema." },
  RUN_FAILED: { category: 'failed', retryable: true, description: 'A node-role run exited non-zero. The run log says why.' },
  RUN_TIMEOUT: { category: 'failed', retryable: true, description: 'A node-role run exceeded its timeout and was stopped.' },
  SSH_UNREACHABLE: { category: 'unavailable', retryable: true, description: 'TCP/22 on the node did not answer, or the SSH connection dropped.' },
  SSH_AUTH_FAILED: { category: 'failed', retryable: false, description: 'No candidate login user accepted the platform key.' },
  HOST_KEY_MISMATCH: { category: 'failed', retryable: false, description: "The node's SSH host key differs from the one recorded on first contact. Check the node; if it was rebuilt, clear its recorded host key." },
  MISSING_TOOL: { category: 'unavailable', retryable: false, description: 'A system tool is not installed. The message names the Debian package to install.' },
  PROVIDER_ERROR: { category: 'failed', retryable: true, description: "A provider call failed in a way its driver did not classify (an SDK's own error, a dropped connection). Retried; the original error is kept as its `cause` and written to the run log." },
  PROVIDER_THROTTLED: { category: 'unavailable', retryable: true, description: "The provider refused a call for its rate limit. Retried after the wait it asked for (or the engine's backoff)." },
  PROVIDER_QUOTA: { category: 'failed', retryable: false, description: "The provider account's quota (instances, cores, addresses) is used up. Raise the quota or free resources, then retry the node-role." },
  PROVIDER_INVALID: { category: 'invalid', retryable: false, description: 'The provider refused what was asked of it as invalid: an image, size or zone it does not have. `details` names the value.' },
  PROVIDER_AUTH: { category: 'failed', retryable: false, description: "The provider refused the credentials (unknown, expired or lacking a permission). Fix the provider's credentials secret." },
  MACHINE_FAILED: { category: 'failed', retryable: true, description: 'A machine went to `error` while booting, or was not ready (still booting, or TCP/22 silent) within the readiness timeout, in which case it was deleted. Retrying creates another machine.' },
  LEASE_LOST: { category: 'conflict', retryable: false, description: "A run's result was discarded: its node-role's lease passed to another worker before the run ended (recorded on the run). That worker owns the node-role now; nothing to retry." },
  NODEROLE_DELETED: { category: 'conflict', retryable: false, description: "A run's result was discarded: its node-role was deleted while it ran (its binding or node left the deployment), and its process was stopped (recorded on the run). Nothing to retry." },
  LEASE_EXPIRED: { category: 'unavailable', retryable: true, description: "A worker stopped renewing its lease (it died or lost the database): its run is abandoned and the node-role is queued again by itself (recorded on the run and the node-role's lastError)." },
  WORKER_DIED: { category: 'unavailable', retryable: true, description: "A worker of this host died without stopping (its record in the data dir names a process that is gone): the next worker to start abandons its runs and queues its node-roles again at once, without waiting for their leases (recorded on the run and the node-role's lastError)." },
  WORKER_STOPPED: { category: 'unavailable', retryable: true, description: 'The worker was stopped during the run: the run is abandoned and the node-role given back to `todo` without counting the attempt (recorded on the run).' },
  WRONG_HOST: { category: 'unavailable', retryable: true, description: "A worker of another host took up a host-bound provider's run (lab's bridges, metal's boot network live on the host that prepared it, named by the provider's `affinity`): the run is given back, and a worker of that host (FORMWORK_WORKER_AFFINITY, default its host name) takes it." },
  SERVER_EXITED: { category: 'failed', retryable: false, description: 'The server `formwork up` started in the background exited before it answered (its port in use, a bad document). The message quotes why, from its log.' },
  ENDPOINT_UNREACHABLE: { category: 'unavailable', retryable: true, description: 'The CLI could not reach the Formwork server at the named endpoint.' },
  TRANSACTION_REENTRY: { category: 'internal', retryable: false, description: 'A defect in Formwork: code inside a database transaction queried the database outside it (which would wait on the transaction forever, or miss its writes). Please report it.' },
  INTERNAL: { category: 'internal', retryable: false, description: 'An unexpected error. It is logged with a request id; please report it.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RetryHint {
  /** Overrides the code's default. */
  retryable?: boolean;
  /** How long to wait before the next attempt, when the failure says so (e.g. a rate limit). */
  nextDelayMs?: number;
  /** The error this one wraps (an SDK's), kept for logs; never sent to clients. */
  cause?: unknown;
}

export class FormworkError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;
  readonly nextDelayMs: number | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, hint: RetryHint = {}) {
    super(message, hint.cause === undefined ? undefined : { cause: hint.cause });
    this.name = 'FormworkError';
    this.code = code;
    this.details = details;
    this.retryable = hint.retryable ?? ERROR_CODES[code].retryable;
    this.nextDelayMs = hint.nextDelayMs;
  }

  get category(): ErrorCategory {
    return ERROR_CODES[this.code].category;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isFormworkError(e: unknown): e is FormworkError {
  return e instanceof FormworkError;
}

/**
 * Wraps anything thrown into a FormworkError, keeping FormworkErrors as they are. What is
 * not one becomes `code` (default INTERNAL) with the original as its `cause`, so its
 * stack still reaches the logs.
 */
export function toFormworkError(e: unknown, code: ErrorCode = 'INTERNAL'): FormworkError {
  if (e instanceof FormworkError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new FormworkError(code, message, undefined, { cause: e });
}

/** The message of an error's cause chain below the error itself, for a log line ('' when none). */
export function causeChain(e: unknown): string {
  const parts: string[] = [];
  let c = e instanceof Error ? e.cause : undefined;
  for (let depth = 0; c !== undefined && depth < 5; depth++) {
    parts.push(c instanceof Error ? `${c.name}: ${c.message}` : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  return parts.join(' <- ');
}
