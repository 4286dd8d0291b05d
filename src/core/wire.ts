import { Type, type Static } from 'typebox';
import type { FormworkEvent, StoredObject } from './kinds.js';
import { MAX_TOKEN_LIFETIME_SECONDS, USER_ROLES, type UserRole } from './users.js';

/**
 * The API's wire shapes, each written once: the TypeBox schemas the routes answer with
 * (`response`, and the bodies they read where a client builds them), and their
 * `Static<…>` types, which services return and the client and CLI read.
 *
 * Outside the API, import only types from here (`import type`): TypeBox then loads with
 * the HTTP layer alone, not with the store, the engine or the CLI (docs/architecture.md,
 * "Build and start-up"; src/core/wire.test.ts checks it). The generic per-kind schemas are
 * not here: they are plain JSON Schema built from core/kinds.ts (services/schemas.ts).
 *
 * @example
 *   // a route
 *   app.get('/api/v1/deployments/:name/tree', { schema: { response: { 200: DeploymentTree } } }, …);
 *   // a service or the CLI
 *   import type { DeploymentTree } from '../core/wire.js';
 */

/** Any JSON object, typed as `T` (the schema lets every property through, so a response keeps them all). */
const openObject = <T>(description?: string) => Type.Unsafe<T>(Type.Object({}, { additionalProperties: true, ...(description ? { description } : {}) }));

/**
 * What an error or failure recorded in an object looks like (`lastError`, a run's `error`):
 * FormworkError.toJSON() plus what the engine adds. Any JSON on the wire.
 */
export interface ErrorSummary {
  code?: string;
  message?: string;
  [field: string]: unknown;
}
const ErrorSummary = () => Type.Unsafe<ErrorSummary>(Type.Unknown());

// ---- errors and objects -------------------------------------------------------------------

/**
 * Every error answer: `{"error": {"code", "message", "details"?}}`.
 *
 * @example
 *   response: { 200: Tree, 404: ErrorResponse }
 */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { description: 'An error; see docs/errors.md for every code' },
);
/** @example const body: ErrorResponse = { error: { code: 'NOT_FOUND', message: 'node "x" does not exist' } }; */
export type ErrorResponse = Static<typeof ErrorResponse>;

/**
 * Any stored object (its fields depend on its kind: core/kinds.ts).
 *
 * @example
 *   response: { 200: Type.Object({ deployment: StoredObjectSchema }) }
 */
export const StoredObjectSchema = openObject<StoredObject>();

/**
 * One page of a kind's list (`GET /api/v1/{plural}`); `next` is the `after` of the next page.
 *
 * @example
 *   const page: ListPage = { items: [node], next: node.name };
 */
export const ListPage = Type.Object({ items: Type.Array(StoredObjectSchema), next: Type.Optional(Type.String()) });
/** @example const empty: ListPage = { items: [] }; */
export type ListPage = Static<typeof ListPage>;

/**
 * One page of events (`GET /api/v1/events?format=json`); `next` is the `after` of the next page.
 *
 * @example
 *   response: { 200: EventPage }
 */
export const EventPage = Type.Object(
  { items: Type.Array(openObject<FormworkEvent>()), next: Type.Optional(Type.Integer()) },
  { description: 'With format=json; otherwise a text/event-stream' },
);
/** @example const page: EventPage = { items: [], next: 42 }; */
export type EventPage = Static<typeof EventPage>;

// ---- apply --------------------------------------------------------------------------------

/**
 * What applying one document did.
 *
 * @example
 *   const r: ApplyResult = { kind: 'Node', name: 'web-1', action: 'created', object };
 */
export const ApplyResult = Type.Object({
  kind: Type.String(),
  name: Type.String(),
  action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]),
  object: StoredObjectSchema,
});
/** @example results.filter((r: ApplyResult) => r.action !== 'unchanged'); */
export type ApplyResult = Static<typeof ApplyResult>;

/**
 * The answer of `POST /api/v1/apply`: one result per document, in order.
 *
 * @example
 *   response: { 200: ApplyResponse }
 */
export const ApplyResponse = Type.Object({ results: Type.Array(ApplyResult) });
/** @example const { results }: ApplyResponse = await call(); */
export type ApplyResponse = Static<typeof ApplyResponse>;

// ---- tokens -------------------------------------------------------------------------------

/**
 * A token as listed (never its value).
 *
 * @example
 *   const t: TokenInfo = { id: 'tk_1', user: 'ci', createdAt: new Date().toISOString() };
 */
export const TokenInfo = Type.Object({
  id: Type.String(),
  user: Type.String(),
  description: Type.Optional(Type.String()),
  createdAt: Type.String(),
  expiresAt: Type.Optional(Type.String()),
  revokedAt: Type.Optional(Type.String()),
  lastUsedAt: Type.Optional(Type.String()),
});
/** @example tokens.filter((t: TokenInfo) => !t.revokedAt); */
export type TokenInfo = Static<typeof TokenInfo>;

/**
 * The answer of `GET /api/v1/tokens`.
 *
 * @example
 *   response: { 200: TokenList }
 */
export const TokenList = Type.Object({ items: Type.Array(TokenInfo) });
/** @example const { items }: TokenList = await call(); */
export type TokenList = Static<typeof TokenList>;

/**
 * The body of `POST /api/v1/tokens`: with `role`, the user is created first when missing.
 *
 * @example
 *   const req: CreateTokenRequest = { user: 'ci', role: 'operator', expiresInSeconds: 86400 };
 */
export const CreateTokenRequest = Type.Object(
  {
    user: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._:@-]{0,252}$' }),
    role: Type.Optional(Type.Unsafe<UserRole>({ type: 'string', enum: [...USER_ROLES] })),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    expiresInSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_TOKEN_LIFETIME_SECONDS, description: `Lifetime in seconds, at most ${MAX_TOKEN_LIFETIME_SECONDS} (10 years); absent: no expiry` }),
    ),
  },
  { additionalProperties: false },
);
/** @example await client.createToken({ user: 'ci' } satisfies CreateTokenRequest); */
export type CreateTokenRequest = Static<typeof CreateTokenRequest>;

/**
 * The answer of `POST /api/v1/tokens`: the only time the token's value is shown.
 *
 * @example
 *   response: { 201: CreatedToken }
 */
export const CreatedToken = Type.Object({ token: Type.String({ description: 'The bearer token; store it now, it is not shown again' }), info: TokenInfo });
/** @example const { token, info }: CreatedToken = await client.createToken({ user: 'ci' }); */
export type CreatedToken = Static<typeof CreatedToken>;

/**
 * The answer of `GET /api/v1/whoami`: the calling token's user and role.
 *
 * @example
 *   response: { 200: WhoAmI }
 */
export const WhoAmI = Type.Object({ user: Type.String(), role: Type.String(), tokenId: Type.String() });
/** @example const me: WhoAmI = await client.whoami(); */
export type WhoAmI = Static<typeof WhoAmI>;

// ---- deployments and workloads ------------------------------------------------------------

/**
 * A node-role in a deployment's tree.
 *
 * @example
 *   const why = nr.state === 'blocked' ? nr.blockedReason : nr.lastError?.message;
 */
export const TreeNodeRole = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  state: Type.String(),
  blockedReason: Type.Optional(Type.String()),
  parents: Type.Array(Type.String(), { description: 'Parent node-role names' }),
  attempts: Type.Optional(Type.Integer()),
  lastError: Type.Optional(ErrorSummary()),
});
/** @example const names = tree.other.map((nr: TreeNodeRole) => nr.name); */
export type TreeNodeRole = Static<typeof TreeNodeRole>;

/**
 * The answer of `GET /api/v1/deployments/{name}/tree` (`formwork describe deployment`).
 *
 * @example
 *   response: { 200: DeploymentTree }
 */
export const DeploymentTree = Type.Object({
  deployment: Type.Object({ name: Type.String(), state: Type.String(), provider: Type.Optional(Type.String()) }),
  nodes: Type.Array(Type.Object({ name: Type.String(), state: Type.Optional(Type.String()), noderoles: Type.Array(TreeNodeRole) }), {
    description: 'In deployment node order; node-roles parents first, then by role name',
  }),
  other: Type.Array(TreeNodeRole, { description: 'Node-roles without a node' }),
  counts: Type.Record(Type.String(), Type.Integer(), { description: 'Node-roles by state' }),
});
/** @example const all = [...tree.nodes.flatMap((n) => n.noderoles), ...tree.other]; */
export type DeploymentTree = Static<typeof DeploymentTree>;

/**
 * The answer of `POST /api/v1/deployments/{name}/commit`.
 *
 * @example
 *   const { changed }: CommitResult = await client.commit('demo');
 */
export const CommitResult = Type.Object({
  deployment: StoredObjectSchema,
  changed: Type.Integer({ description: 'How many node-roles left the proposed state' }),
});
/** @example const r: CommitResult = { deployment, changed: 3 }; */
export type CommitResult = Static<typeof CommitResult>;

/**
 * The answer of `POST /api/v1/workloads/validate`: every problem of a pack, and what it holds.
 *
 * @example
 *   response: { 200: PackCheck }
 */
export const PackCheck = Type.Object({
  valid: Type.Boolean(),
  errors: Type.Array(Type.Object({ file: Type.String(), role: Type.Optional(Type.String()), field: Type.Optional(Type.String()), message: Type.String() })),
  workload: Type.Optional(Type.Object({ name: Type.String(), version: Type.String(), roles: Type.Array(Type.String()) })),
});
/** @example if (!check.valid) for (const e of check.errors) console.log(e.file, e.message); */
export type PackCheck = Static<typeof PackCheck>;

// ---- engine -------------------------------------------------------------------------------

/**
 * The answer of the retry routes: the node-roles put back to run.
 *
 * @example
 *   response: { 200: RetryResult }
 */
export const RetryResult = Type.Object({
  retried: Type.Array(Type.String(), { description: 'Node-roles put back to todo (or blocked behind a parent)' }),
});
/** @example const { retried }: RetryResult = await client.retry('demo:web-1:nginx'); */
export type RetryResult = Static<typeof RetryResult>;

/**
 * The answer of `GET /api/v1/noderoles/{name}/log`: one run of a node-role and its log.
 *
 * @example
 *   response: { 200: RunLog }
 */
export const RunLog = Type.Object({
  noderole: Type.String(),
  run: Type.String({ description: 'Run id' }),
  runName: Type.String(),
  attempt: Type.Optional(Type.Integer()),
  state: Type.String({ description: 'running, succeeded, failed or abandoned' }),
  startedAt: Type.Optional(Type.String()),
  endedAt: Type.Optional(Type.String()),
  exitCode: Type.Optional(Type.Integer()),
  error: Type.Optional(ErrorSummary()),
  noderoleState: Type.String(),
  log: Type.String({ description: 'The run log (head and tail kept when over 1 MiB). Empty while running: follow the `logs` event stream.' }),
});
/** @example process.stdout.write((await client.runLog('demo:web-1:nginx')).log); */
export type RunLog = Static<typeof RunLog>;

// ---- providers and the platform -----------------------------------------------------------

/**
 * The answer of `POST /api/v1/conformance`: the yardstick's checks per node.
 *
 * @example
 *   response: { 200: ConformanceReport }
 */
export const ConformanceReport = Type.Object({
  passed: Type.Boolean(),
  checks: Type.Array(Type.String()),
  nodes: Type.Array(
    Type.Object({
      node: Type.String(),
      provider: Type.Optional(Type.String()),
      passed: Type.Boolean(),
      results: Type.Array(Type.Object({ check: Type.String(), ok: Type.Boolean(), reason: Type.Optional(Type.String()) })),
    }),
  ),
});
/** @example if (!report.passed) process.exitCode = 1; */
export type ConformanceReport = Static<typeof ConformanceReport>;

/**
 * The answer of `GET /api/v1/platform/ssh-key`: the public half only.
 *
 * @example
 *   response: { 200: PlatformKey }
 */
export const PlatformKey = Type.Object({ publicKey: Type.String(), fingerprint: Type.String() });
/** @example const { fingerprint }: PlatformKey = key; */
export type PlatformKey = Static<typeof PlatformKey>;

/**
 * The answer of `GET /healthz` when the store answers (503 with `Unhealthy` otherwise).
 *
 * @example
 *   response: { 200: Health, 503: Unhealthy }
 */
export const Health = Type.Object({ status: Type.Literal('ok'), store: Type.String() });
/** @example const h: Health = { status: 'ok', store: 'sqlite' }; */
export type Health = Static<typeof Health>;

/**
 * The answer of `GET /healthz` when the store does not answer.
 *
 * @example
 *   reply.code(503).send({ status: 'unavailable', store, error } satisfies Unhealthy);
 */
export const Unhealthy = Type.Object({ status: Type.Literal('unavailable'), store: Type.String(), error: Type.String() });
/** @example const h: Unhealthy = { status: 'unavailable', store: 'postgres', error: 'timeout' }; */
export type Unhealthy = Static<typeof Unhealthy>;
