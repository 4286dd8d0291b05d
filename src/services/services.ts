import type { StoredObject } from '../core/kinds.js';
import type { Store } from '../store/store.js';

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
}

export interface ApplyResult {
  kind: string;
  name: string;
  action: 'created' | 'updated' | 'unchanged';
  object: StoredObject;
}

/** Applies one document of a kind (create-or-update by name, idempotent). */
export type Applier = (doc: Record<string, unknown>, ctx: ApplyContext) => Promise<ApplyResult>;

/** The annealer as the rest of the program sees it. */
export interface EngineHandle {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Wakes the annealer now (after a commit or a retry) instead of at its next tick. */
  kick(): void;
}

/** Deletes an object that owns real resources (a deployment's machines, a provider's bridges). */
export type Deleter = (idOrName: string, ctx: ApplyContext & { expectedVersion?: number }) => Promise<StoredObject>;

export interface Services {
  store: Store;
  dataDir: string;
  /** Appliers by PascalCase kind; kinds without one use the store's generic apply. */
  appliers: Map<string, Applier>;
  /** Deleters by plural kind; kinds without one are deleted from the store alone. */
  deleters?: Map<string, Deleter>;
  engine?: EngineHandle;
  /** Set where machines are provisioned (a process with an engine): starts each applied provider's `prepare`. */
  prepareProviders?: (providers: StoredObject[]) => void;
}
