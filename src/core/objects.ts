import type { NodeAddress } from './addresses.js';
import type { Deletion } from './deletion.js';
import type { FieldType, KindFields, StoredObject } from './kinds.js';
import type { ErrorSummary } from './wire.js';

/**
 * Typed stored objects of the kinds most code reads (Provider, Node, Deployment, NodeRole,
 * Run), derived from their field lists in core/kinds.ts: a string field is a string, an
 * integer a number; a json field is `unknown` unless its shape is given here. Every field
 * is optional, as the store leaves out what is not set, except those Formwork always sets.
 * `store.objects('noderoles')` answers these (store/store.ts), so readers need no casts.
 *
 * @example
 *   const nr = await store.objects('noderoles').get('demo:web-1:nginx');
 *   nr.state;   // string
 *   nr.parents; // string[] | undefined
 */

type FieldValue<T extends FieldType> = T extends 'string' ? string : T extends 'integer' ? number : T extends 'boolean' ? boolean : unknown;

/** The fields of a list, each optional and typed by its FieldType. */
type FieldsOf<F extends ReadonlyArray<{ name: string; type: FieldType }>> = { [D in F[number] as D['name']]?: FieldValue<D['type']> };

/**
 * A kind's object: the common fields, its own (from its field list), with `Known` giving
 * some of them a shape (or making them always present). `Known` may name only its fields.
 */
type ObjectOf<P extends keyof KindFields, Known extends { [K in KindFields[P][number]['name']]?: unknown }> = StoredObject &
  Omit<FieldsOf<KindFields[P]>, keyof Known> &
  Known;

/**
 * A deployment's node as its `spec` lists it.
 *
 * @example
 *   const n: DeploymentNodeSpec = { name: 'demo-0', size: 'small' };
 */
export interface DeploymentNodeSpec {
  name: string;
  size?: string;
  image?: string;
}

/**
 * The normalized Deployment document, stored as the deployment's `spec` (the engine reads
 * `spec.nodes[].name` for node order; its JSON Schema: core/kinds.ts).
 *
 * @example
 *   const spec: DeploymentSpec = { nodes: [{ name: 'a' }], roles: { web: { nodes: ['a'] } } };
 */
export interface DeploymentSpec {
  nodes: DeploymentNodeSpec[];
  /**
   * role → the node names it is bound to, its input overrides (as written in the document),
   * and roles bound in the deployment whose node-roles it waits for beyond its pack's.
   */
  roles: Record<string, { nodes: string[]; inputs?: Record<string, unknown>; requires?: string[] }>;
}

type Attribs = Record<string, unknown>;

/**
 * A Provider as stored.
 *
 * @example
 *   const p: ProviderObject = await store.objects('providers').get('lab'); p.type; // 'lab'
 */
export type ProviderObject = ObjectOf<'providers', { type: string; settings?: Attribs; profile?: Attribs; deletion?: Deletion }>;

/**
 * A Node as stored.
 *
 * @example
 *   const n: NodeObject = await store.objects('nodes').get('web-1'); n.addresses?.[0]?.address;
 */
export type NodeObject = ObjectOf<'nodes', { addresses?: NodeAddress[]; inventory?: Attribs; attribs?: Attribs; deletion?: Deletion }>;

/**
 * A Deployment as stored.
 *
 * @example
 *   const d: DeploymentObject = await store.objects('deployments').get('demo'); d.spec?.nodes.length;
 */
export type DeploymentObject = ObjectOf<'deployments', { spec?: DeploymentSpec; attribs?: Attribs; deletion?: Deletion }>;

/**
 * A NodeRole as stored: Formwork sets its role and state when it makes it.
 *
 * @example
 *   const nr: NodeRoleObject = await store.objects('noderoles').get('demo:web-1:nginx'); nr.role; // 'nginx'
 */
export type NodeRoleObject = ObjectOf<
  'noderoles',
  { role: string; state: string; parents?: string[]; attribs?: Attribs; outputs?: Attribs; lastError?: ErrorSummary }
>;

/**
 * A Run as stored.
 *
 * @example
 *   const r: RunObject = await store.objects('runs').get(runId); r.exitCode; // number | undefined
 */
export type RunObject = ObjectOf<'runs', { inputs?: Attribs; outputs?: Attribs; error?: ErrorSummary }>;

/**
 * The typed object of each kind above, by plural: what `store.objects(plural)` answers.
 *
 * @example
 *   type N = KindObjects['nodes']; // NodeObject
 */
export interface KindObjects {
  providers: ProviderObject;
  nodes: NodeObject;
  deployments: DeploymentObject;
  noderoles: NodeRoleObject;
  runs: RunObject;
}
