import type { Kysely } from 'kysely';

/**
 * What several workers on one database must share (issue 12 §3). Frozen once released.
 *
 * `platform_keys`: the platform's own key material (the SSH key every worker logs in
 * with), sealed with the store's secret key; one row per name, written once.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  await db.schema
    .createTable('platform_keys')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('ciphertext', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
