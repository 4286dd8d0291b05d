import type { StoredObject } from './kinds.js';

/**
 * The shape of a deletion in progress: DELETE of a node, deployment or provider marks the
 * object's read-only `deletion` field (services/deletion.ts), and a worker's deprovision step
 * (engine/deprovision.ts) carries it out and removes the row.
 *
 * @example
 *   const d = deletionOf(node); // undefined unless it is being deleted
 *   if (d?.failed) console.log(d.lastError?.message);
 */

/** The kinds whose DELETE is reconciled; everything else is deleted from the store at once. */
export const DEPROVISIONED_KINDS = ['nodes', 'deployments', 'providers'] as const;
export type DeprovisionedKind = (typeof DEPROVISIONED_KINDS)[number];

/** The `deletion` field of an object being deleted. */
export interface Deletion {
  requestedAt: string;
  requestedBy?: string;
  /** Attempts of its deprovision step so far (waiting ones do not count). */
  attempts: number;
  nextAttemptAt?: string;
  /** The worker running its step, and until when (renewed while the step lasts). */
  leaseOwner?: string;
  leaseExpiresAt?: string;
  /** What the step waits for (running node-roles, nodes still being deleted). */
  waitingFor?: string;
  lastError?: { code: string; message: string; attempt: number; retryAt?: string };
  /** No retries left, or the error was not retryable: a DELETE again tries again. */
  failed?: boolean;
}

export const deletionOf = (o: StoredObject): Deletion | undefined => (o.deletion ?? undefined) as Deletion | undefined;

/** What one deprovision step came to: the object is gone, or it waits for something (not an attempt). */
export type StepOutcome = 'done' | { waitingFor: string };
