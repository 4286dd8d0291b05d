import type { Kysely } from 'kysely';

/**
 * The first schema. Frozen: change the schema with a new migration, never by editing this one.
 *
 * One schema for both engines: ids are text, times are ISO-8601 text, JSON is text.
 * Only the event sequence differs (an auto-increment integer on each engine).
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = Kysely<any>;

function objectTable(db: Db, table: string) {
  return db.schema
    .createTable(table)
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull());
}

export async function up(db: Db, dialect: 'sqlite' | 'postgres'): Promise<void> {
  await objectTable(db, 'providers')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('settings', 'text')
    .addColumn('profile', 'text')
    .addColumn('credentials_secret', 'text')
    .addColumn('state', 'text')
    .addColumn('message', 'text')
    .execute();

  await objectTable(db, 'nodes')
    .addColumn('provider', 'text')
    .addColumn('deployment', 'text')
    .addColumn('native_id', 'text')
    .addColumn('state', 'text')
    .addColumn('addresses', 'text')
    .addColumn('login_user', 'text')
    .addColumn('host_key', 'text')
    .addColumn('size_normalized', 'text')
    .addColumn('size_native', 'text')
    .addColumn('image_normalized', 'text')
    .addColumn('image_native', 'text')
    .addColumn('zone', 'text')
    .addColumn('inventory', 'text')
    .addColumn('attribs', 'text')
    .addColumn('message', 'text')
    .execute();
  await db.schema.createIndex('nodes_provider').on('nodes').column('provider').execute();
  await db.schema.createIndex('nodes_deployment').on('nodes').column('deployment').execute();

  await objectTable(db, 'workloads')
    .addColumn('workload_version', 'text')
    .addColumn('description', 'text')
    .addColumn('source', 'text')
    .addColumn('defaults', 'text')
    .addColumn('files', 'text')
    .execute();

  await objectTable(db, 'roles')
    .addColumn('workload', 'text')
    .addColumn('description', 'text')
    .addColumn('spec', 'text', (c) => c.notNull())
    .execute();

  await objectTable(db, 'deployments')
    .addColumn('state', 'text')
    .addColumn('provider', 'text')
    .addColumn('spec', 'text')
    .addColumn('attribs', 'text')
    .addColumn('message', 'text')
    .execute();

  await objectTable(db, 'noderoles')
    .addColumn('deployment', 'text', (c) => c.notNull())
    .addColumn('node', 'text')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('blocked_reason', 'text')
    .addColumn('parents', 'text')
    .addColumn('attribs', 'text')
    .addColumn('outputs', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text')
    .addColumn('input_hash', 'text')
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', 'text')
    .addColumn('last_error', 'text')
    .execute();
  await db.schema.createIndex('noderoles_deployment').on('noderoles').column('deployment').execute();
  await db.schema.createIndex('noderoles_state').on('noderoles').columns(['state', 'next_attempt_at']).execute();
  await db.schema.createIndex('noderoles_node').on('noderoles').column('node').execute();

  // Parent links, for "which children become runnable" and "is every parent active" in SQL.
  await db.schema
    .createTable('noderole_links')
    .addColumn('parent_id', 'text', (c) => c.notNull())
    .addColumn('child_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('noderole_links_pk', ['parent_id', 'child_id'])
    .execute();
  await db.schema.createIndex('noderole_links_child').on('noderole_links').column('child_id').execute();

  await objectTable(db, 'runs')
    .addColumn('noderole', 'text', (c) => c.notNull())
    .addColumn('deployment', 'text')
    .addColumn('node', 'text')
    .addColumn('role', 'text')
    .addColumn('attempt', 'integer')
    .addColumn('state', 'text')
    .addColumn('worker', 'text')
    .addColumn('started_at', 'text')
    .addColumn('ended_at', 'text')
    .addColumn('exit_code', 'integer')
    .addColumn('log', 'text')
    .addColumn('inputs', 'text')
    .addColumn('outputs', 'text')
    .addColumn('error', 'text')
    .execute();
  await db.schema.createIndex('runs_noderole').on('runs').column('noderole').execute();

  await objectTable(db, 'users').addColumn('role', 'text', (c) => c.notNull()).execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text')
    .addColumn('revoked_at', 'text')
    .addColumn('last_used_at', 'text')
    .execute();

  await objectTable(db, 'secrets')
    .addColumn('description', 'text')
    .addColumn('keys', 'text')
    .addColumn('ciphertext', 'text', (c) => c.notNull())
    .execute();

  // Labels in their own table so label filters are plain SQL on both engines.
  await db.schema
    .createTable('labels')
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('labels_pk', ['object_id', 'key'])
    .execute();
  await db.schema.createIndex('labels_key_value').on('labels').columns(['key', 'value']).execute();

  // Node-level and deployment-level attribs live on their objects; this table holds
  // attribs set on their own (for example `formwork attrib set`), keyed by scope.
  await db.schema
    .createTable('attribs')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('value', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('attribs_pk', ['scope', 'scope_id', 'name'])
    .execute();

  const seq =
    dialect === 'sqlite'
      ? db.schema.createTable('events').addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
      : db.schema.createTable('events').addColumn('seq', 'bigserial', (c) => c.primaryKey());
  await seq
    .addColumn('time', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('actor', 'text')
    .addColumn('object', 'text')
    .execute();
  await db.schema.createIndex('events_type_key').on('events').columns(['type', 'key']).execute();

  // Which worker processes are alive (PostgreSQL scale-out; harmless on SQLite).
  await db.schema
    .createTable('workers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text')
    .addColumn('pid', 'integer')
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('heartbeat_at', 'text', (c) => c.notNull())
    .execute();
}
