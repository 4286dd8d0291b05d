import type { Kysely } from 'kysely';

/**
 * What several workers on one database must share (issue 12 §3). Frozen once released.
 *
 * - `platform_keys`: the platform's own key material (the SSH key every worker logs in
 *   with), sealed with the store's secret key; one row per name, written once.
 * - `providers.affinity`: the worker host that alone may run a provider's work (a lab
 *   provider's bridges exist on one host); empty means any worker.
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
  await db.schema.alterTable('providers').addColumn('affinity', 'text').execute();
}
