import { sql, type Kysely } from 'kysely';

/**
 * A deletion in progress on the objects that own real resources (providers, nodes,
 * deployments): `deletion` (JSON) says it was asked for, by whom, and how its
 * deprovisioning goes (claim, attempts, last error). Their `state` stays theirs: a node's
 * is written by provisioning, a provider's by preparation, a deployment's by commit.
 * Frozen, like every migration.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = Kysely<any>;

export async function up(db: Db): Promise<void> {
  for (const table of ['providers', 'nodes', 'deployments']) {
    await db.schema.alterTable(table).addColumn('deletion', 'text').execute();
    // Every annealer tick looks for deletions: partial, so it stays small however many rows there are.
    await db.schema.createIndex(`${table}_deleting`).on(table).column('id').where(sql.ref('deletion'), 'is not', null).execute();
  }
}
