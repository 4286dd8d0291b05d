import type { Kysely } from 'kysely';

/**
 * `nodes.decisions`: what was chosen for a node (size, image, login user, network, address)
 * and why, as JSON (core/decisions.ts). Frozen once released.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('nodes').addColumn('decisions', 'text').execute();
}
