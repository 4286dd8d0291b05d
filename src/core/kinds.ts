/**
 * The object kinds Formwork stores, described once.
 *
 * The store maps each kind to its table, the API derives its routes, filters and
 * schemas from it, and the CLI resolves `formwork get <kind>` through it, so adding a
 * field is one edit here plus a migration.
 *
 * @example
 *   const k = kindByName('nodes'); // accepts 'node', 'nodes', 'Node'
 *   k.table;                        // 'nodes'
 */

export type FieldType = 'string' | 'integer' | 'boolean' | 'json';

export interface FieldDef {
  /** The API / object name (camelCase); the column is its snake_case form. */
  name: string;
  type: FieldType;
  /** A list filter `?name=value` is allowed on it. */
  filterable?: boolean;
  /** Set by Formwork, never by a client (client values are refused). */
  readOnly?: boolean;
  /** Required on create. */
  required?: boolean;
  /** For json fields: the JSON Schema the value must match (checked by the API). */
  schema?: Record<string, unknown>;
  description?: string;
}

export interface KindDef {
  /** Singular, PascalCase: what `kind:` says in a YAML document. */
  kind: string;
  /** Plural, lower case: the table and the API path segment. */
  plural: string;
  singular: string;
  fields: FieldDef[];
  /**
   * Which role may write it besides admin. Providers (they name credentials), workloads and
   * roles (their code runs as root on nodes, and `local`/`ansible` roles on the server's own
   * host, which holds the data dir) are admin's: operators use them in deployments.
   */
  writableBy: 'operator' | 'admin' | 'nobody';
  description: string;
}

/**
 * A deployment's stored `spec` (DeploymentSpec in core/objects.ts): what the
 * Deployment applier writes, and all the engine and the tree read, so the generic routes
 * may write nothing else.
 */
const deploymentSpecSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    nodes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: { type: 'string' }, size: { type: 'string' }, image: { type: 'string' } },
      },
    },
    roles: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['nodes'],
        properties: { nodes: { type: 'array', items: { type: 'string' } }, inputs: { type: 'object' }, requires: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
};

// Generic in the name, so that the field lists below keep their names as types (core/objects.ts).
type FieldExtra = Partial<Omit<FieldDef, 'name' | 'type'>>;
const str = <N extends string>(name: N, extra: FieldExtra = {}) => ({ name, type: 'string' as const, ...extra });
const json = <N extends string>(name: N, extra: FieldExtra = {}) => ({ name, type: 'json' as const, ...extra });
const int = <N extends string>(name: N, extra: FieldExtra = {}) => ({ name, type: 'integer' as const, ...extra });

/** Set by DELETE on the kinds that own real resources; the annealer deprovisions them (engine/deprovision.ts). */
const deletion = json('deletion', {
  readOnly: true,
  description:
    'Set while the object is being deleted: {requestedAt, requestedBy, attempts, nextAttemptAt?, leaseOwner?, leaseExpiresAt?, waitingFor?, lastError?, failed?}; the row goes when its resources are gone',
});

const addressSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['address', 'family', 'role'],
    properties: {
      address: { type: 'string' },
      family: { enum: [4, 6] },
      role: { enum: ['public', 'private', 'admin', 'bmc'] },
      network: { type: 'string' },
      reason: { type: 'string' },
    },
  },
};

const decisionsSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['subject', 'chosen', 'reason'],
    properties: { subject: { type: 'string' }, chosen: { type: 'string' }, reason: { type: 'string' } },
  },
};

const providerFields = [
  str('type', { required: true, filterable: true, description: 'The provider type: lab or static (docs/providers.md); apply refuses any other' }),
  json('settings', { schema: { type: 'object' } }),
  json('profile', { schema: { type: 'object' } }),
  str('credentialsSecret', { filterable: true, description: 'Name of the secret holding the credentials' }),
  str('state', { filterable: true, readOnly: true }),
  str('message', { readOnly: true }),
  str('affinity', { filterable: true, readOnly: true, description: 'The worker host that alone runs this provider\'s work (host-bound types such as lab: set by the worker that prepared it); empty: any worker' }),
  deletion,
];

const nodeFields = [
  str('provider', { filterable: true, description: 'Provider name' }),
  str('deployment', { filterable: true, description: 'Deployment name the node belongs to' }),
  str('nativeId', { filterable: true }),
  str('state', { filterable: true }),
  json('addresses', { schema: addressSchema }),
  str('loginUser'),
  str('hostKey', { description: 'SSH host key fingerprint recorded on first contact' }),
  str('sizeNormalized', { filterable: true }),
  str('sizeNative'),
  str('imageNormalized', { filterable: true }),
  str('imageNative'),
  str('zone', { filterable: true }),
  json('inventory', { schema: { type: 'object' } }),
  json('decisions', { readOnly: true, schema: decisionsSchema, description: 'What was chosen for the node (size, image, login user, network, address) and why: [{subject, chosen, reason}] (core/decisions.ts)' }),
  json('attribs', { schema: { type: 'object' }, description: 'Node-level attrib values' }),
  str('message'),
  deletion,
];

const deploymentFields = [
  str('state', { filterable: true, readOnly: true }),
  str('provider', { filterable: true }),
  json('spec', { schema: deploymentSpecSchema, description: '{nodes: [{name, size?, image?}], roles: {role: {nodes: [node names], inputs?, requires?: [role names]}}}; the Deployment document (apply) writes it' }),
  json('attribs', { schema: { type: 'object' } }),
  str('message', { readOnly: true }),
  deletion,
];

const nodeRoleFields = [
  str('deployment', { filterable: true, readOnly: true }),
  str('node', { filterable: true, readOnly: true }),
  str('role', { filterable: true, readOnly: true }),
  str('state', { filterable: true, readOnly: true }),
  str('blockedReason', { readOnly: true }),
  json('parents', { readOnly: true }),
  json('attribs', { schema: { type: 'object' }, description: 'Node-role overrides' }),
  json('outputs', { readOnly: true }),
  int('attempts', { readOnly: true }),
  str('nextAttemptAt', { readOnly: true }),
  str('inputHash', { readOnly: true }),
  str('leaseOwner', { readOnly: true }),
  str('leaseExpiresAt', { readOnly: true }),
  json('lastError', { readOnly: true }),
];

const runFields = [
  str('noderole', { filterable: true }),
  str('deployment', { filterable: true }),
  str('node', { filterable: true }),
  str('role', { filterable: true }),
  int('attempt'),
  str('state', { filterable: true }),
  str('worker'),
  str('startedAt'),
  str('endedAt'),
  int('exitCode'),
  str('log'),
  json('inputs'),
  json('outputs'),
  json('error'),
];

/**
 * The field lists of the kinds most code reads, by plural, as types: core/objects.ts
 * derives each kind's typed object from its list.
 *
 * @example
 *   type NodeField = KindFields['nodes'][number]['name']; // 'provider' | 'deployment' | …
 */
export type KindFields = {
  providers: typeof providerFields;
  nodes: typeof nodeFields;
  deployments: typeof deploymentFields;
  noderoles: typeof nodeRoleFields;
  runs: typeof runFields;
};

export const KINDS: KindDef[] = [
  {
    kind: 'Provider', plural: 'providers', singular: 'provider', writableBy: 'admin',
    description: 'A configured source of machines: type, settings, credentials (stored as a secret) and a profile of quirks.',
    fields: providerFields,
  },
  {
    kind: 'Node', plural: 'nodes', singular: 'node', writableBy: 'operator',
    description: 'One machine, whatever its origin, with normalized addresses, login, host key, size and image.',
    fields: nodeFields,
  },
  {
    kind: 'Workload', plural: 'workloads', singular: 'workload', writableBy: 'admin',
    description: 'A versioned pack of roles, templates and defaults.',
    fields: [
      str('workloadVersion', { filterable: true }),
      str('description'),
      str('source', { description: 'Folder the pack was loaded from' }),
      json('defaults', { schema: { type: 'object' } }),
      json('files', { schema: { type: 'object' }, description: 'Role files by path (templates, scripts)' }),
    ],
  },
  {
    kind: 'Role', plural: 'roles', singular: 'role', writableBy: 'admin',
    description: 'A unit of automation with explicit requires, provides, inputs, outputs, flags and implementation.',
    fields: [
      str('workload', { filterable: true }),
      str('description'),
      json('spec', { required: true, schema: { type: 'object' } }),
    ],
  },
  {
    kind: 'Deployment', plural: 'deployments', singular: 'deployment', writableBy: 'operator',
    description: 'Nodes plus the roles bound to them and deployment attribs; proposed, then committed.',
    fields: deploymentFields,
  },
  {
    kind: 'NodeRole', plural: 'noderoles', singular: 'noderole', writableBy: 'operator',
    description: 'A role bound to a node in a deployment: the unit the engine runs.',
    fields: nodeRoleFields,
  },
  {
    kind: 'Run', plural: 'runs', singular: 'run', writableBy: 'nobody',
    description: 'One execution of a node-role: times, exit code, log, inputs and outputs (secrets redacted).',
    fields: runFields,
  },
  {
    kind: 'User', plural: 'users', singular: 'user', writableBy: 'admin',
    description: 'Someone or something that holds tokens; its role is admin, operator or viewer.',
    fields: [str('role', { required: true, filterable: true })],
  },
  {
    kind: 'Secret', plural: 'secrets', singular: 'secret', writableBy: 'admin',
    description: 'An encrypted value (credentials, keys). Write-only: the API never returns the value.',
    fields: [
      str('description'),
      json('keys', { readOnly: true, description: 'The names of the fields the secret holds (never the values)' }),
    ],
  },
];

const byAnyName = new Map<string, KindDef>();
for (const k of KINDS) {
  for (const n of [k.kind, k.plural, k.singular, k.kind.toLowerCase()]) byAnyName.set(n.toLowerCase(), k);
}

/** Finds a kind by its singular, plural or PascalCase name, case-insensitively. */
export function kindByName(name: string): KindDef | undefined {
  return byAnyName.get(name.toLowerCase());
}

export function knownKindNames(): string[] {
  return KINDS.map((k) => k.plural);
}

/** The fields every object has, whatever its kind. */
export const COMMON_FIELDS = ['id', 'name', 'version', 'labels', 'createdAt', 'updatedAt'] as const;

/** A stored object as the API and the CLI see it. */
export interface StoredObject {
  id: string;
  name: string;
  version: number;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  [field: string]: unknown;
}

export function columnName(field: string): string {
  return field.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** An event as the store keeps it and the API streams it (SSE `id:` is `id`). */
export interface FormworkEvent {
  /** The sequence number, as text (what SSE `id:` and `Last-Event-ID` carry). */
  id: string;
  seq: number;
  time: string;
  /** The object kind, plural (`nodes`), or a stream name (`logs`). */
  type: string;
  /** created, updated, deleted, state, or a stream-specific verb (e.g. `output`). */
  action: string;
  key: string;
  actor?: string;
  object?: unknown;
}

/**
 * Kinds clients may change and delete but not create: their identity fields are
 * read-only (a node-role is made by binding a role in a deployment). An applier
 * registered for the kind (services.appliers) still lets apply create them.
 */
export const CREATED_BY_FORMWORK = new Set(['noderoles']);
