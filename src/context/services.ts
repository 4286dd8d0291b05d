import type { DeprovisionedKind, StepOutcome } from '../core/deletion.js';
import type { StoredObject } from '../core/kinds.js';
import type { FieldProblem } from '../core/schema.js';
import type { Store } from '../store/store.js';
import type { ApplyResult } from '../core/wire.js';

/**
 * What the API and the CLI's embedded server share: the store, the data dir, and the
 * appliers that turn a declarative document into stored objects. The API and CLI stay
 * thin shells over these.
 *
 * @example
 *   services.appliers.set('Deployment', async (doc, ctx) => deployments.apply(doc, ctx));
 */

export interface ApplyContext {
  actor?: string;
  /** The transaction to write in: apply runs all its documents in one. Default: the services' store. */
  store?: Store;
  /** The version the document says it was read at (its `version`): a different stored one refuses it. */
  expectedVersion?: number;
}

/** What applying one document did: the wire shape of `POST /api/v1/apply`'s results (core/wire.ts). */
export type { ApplyResult } from '../core/wire.js';

/** Applies one document of a kind (create-or-update by name, idempotent). */
export type Applier = (doc: Record<string, unknown>, ctx: ApplyContext) => Promise<ApplyResult>;

/** What an applier's up-front check sees: the store, and the other documents of the same apply (by plural kind and name). */
export interface ApplierValidateContext {
  store: Store;
  pending: Map<string, Map<string, Record<string, unknown>>>;
}

/**
 * Optional up-front check an applier may carry (`applier.validate = …`): the problems of
 * one document, paths relative to it. Apply runs it for every document, once all are
 * known, before writing any.
 */
export type ApplierValidate = (doc: Record<string, unknown>, ctx: ApplierValidateContext) => Promise<FieldProblem[]> | FieldProblem[];

/** The annealer as the rest of the program sees it. */
export interface EngineHandle {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Wakes the annealer now (after a commit or a retry) instead of at its next tick. */
  kick(): void;
}

/** Asks for the deletion of an object that owns real resources (a deployment's machines, a provider's bridges): marks it; the annealer deprovisions it. */
export type Deleter = (idOrName: string, ctx: ApplyContext) => Promise<StoredObject>;

/**
 * One deprovision step of an object being deleted (services/teardown.ts), run by a worker's
 * annealer under its claim: the object is gone ('done'), or what it waits for.
 */
export type DeprovisionStep = (kind: DeprovisionedKind, object: StoredObject, ctx: { actor: string }) => Promise<StepOutcome>;

export interface Services {
  store: Store;
  dataDir: string;
  /** Appliers by PascalCase kind; kinds without one use the store's generic apply. */
  appliers: Map<string, Applier>;
  /** Deleters by plural kind (services/deletion.ts); kinds without one are deleted from the store at once. */
  deleters?: Map<string, Deleter>;
  engine?: EngineHandle;
  /** Set where machines are provisioned (a process with an engine): starts each applied provider's `prepare`. */
  prepareProviders?: (providers: StoredObject[]) => void;
  /** Set where deletions are carried out (a process with an engine): the deprovision step its annealer runs. */
  deprovision?: DeprovisionStep;
}
