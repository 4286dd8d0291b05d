import type { Kysely } from 'kysely';

/**
 * `providers.affinity`: the worker host that alone runs a host-bound provider's work (a lab
 * provider's bridges exist on the host that prepared them); null means any worker. Frozen
 * once released.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('providers').addColumn('affinity', 'text').execute();
}
