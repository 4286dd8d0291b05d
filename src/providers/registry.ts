import { FormworkError, toFormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { schemaAjv, schemaProblems, type FieldProblem } from '../core/schema.js';
import { ensurePlatformKey } from '../engine/executors/target.js';
import type { Services } from '../context/services.js';
import { awsDescriptor } from './aws/descriptor.js';
import { equinixDescriptor } from './equinix/descriptor.js';
import { gceDescriptor } from './gce/descriptor.js';
import { labDescriptor } from './lab/descriptor.js';
import { openstackDescriptor } from './openstack/descriptor.js';
import type { ProviderContext, ProviderDescriptor, ProviderDriver, ProviderLogger } from './provider.js';
import { staticDescriptor } from './static/descriptor.js';

/**
 * The provider types Formwork knows, as descriptors (type, settings schema, lazy `load`),
 * and the context a driver call gets. Importing this module loads no driver: a driver and
 * whatever SDK it uses load on the first `loadDriver` of its type.
 *
 * @example
 *   const driver = await loadDriver('lab');
 *   const ctx = await providerContext(services, await store.objects('providers').get('lab'));
 */

const DESCRIPTORS = new Map<string, ProviderDescriptor>([awsDescriptor, equinixDescriptor, gceDescriptor, labDescriptor, openstackDescriptor, staticDescriptor].map((d) => [d.type, d]));

export function providerTypes(): string[] {
  return [...DESCRIPTORS.keys()].sort();
}

/** The descriptor of a provider type; VALIDATION naming the known types when there is none. */
export function descriptorFor(type: string): ProviderDescriptor {
  const d = DESCRIPTORS.get(type);
  if (!d) {
    throw new FormworkError('VALIDATION', `unknown provider type "${type}"; known: ${providerTypes().join(', ')}`, { field: 'type', type, known: providerTypes() });
  }
  return d;
}

/** Whether a provider type's work must run on the host that prepared it (`hostBound`); false for unknown types. */
export function isHostBound(type: string): boolean {
  return DESCRIPTORS.get(type)?.hostBound === true;
}

/** A type's default readiness timeout (`ProviderDescriptor.readinessTimeoutSeconds`); undefined for types without one, or unknown. @example readinessDefault('equinix'); // 3600 */
export function readinessDefault(type: string): number | undefined {
  return DESCRIPTORS.get(type)?.readinessTimeoutSeconds;
}

const loaded = new Map<string, Promise<ProviderDriver>>();

/** The driver of a provider type, loaded on first use. */
export async function loadDriver(type: string): Promise<ProviderDriver> {
  const d = descriptorFor(type);
  let p = loaded.get(type);
  if (!p) {
    p = d.load().then((driver) => {
      if (driver.type !== type) throw new FormworkError('INTERNAL', `provider type "${type}" loaded a driver for "${driver.type}"`);
      return driver;
    });
    p.catch(() => loaded.delete(type)); // a failed import is tried again next time
    loaded.set(type, p);
  }
  return p;
}

/** How long apply waits for a driver's `check` before letting the provider through (prepare checks again). */
export const accessCheck = { timeoutMs: 20_000 };

/**
 * What the provider itself refuses about a provider object's settings and credentials, asked
 * through its driver's `check` when it is applied (wrong credentials, an unknown cloud name or
 * region): definitive refusals become problems at `/settings`, naming what to fix; a transient
 * failure, a driver without `check` or a check slower than `accessCheck.timeoutMs` gives none
 * (the provider's `prepare` records what it finds). Only for objects whose settings passed
 * `providerProblems`.
 *
 * @example
 *   await providerAccessProblems({ name: 'os1', type: 'openstack', settings: { cloud: 'nope' } }, undefined);
 *   // [{ path: '/settings', message: 'provider os1: clouds.yaml … has no cloud "nope"; its clouds are: …' }]
 */
export async function providerAccessProblems(object: Record<string, unknown>, credentials: Record<string, string> | undefined): Promise<FieldProblem[]> {
  // No type, or an unknown one, is providerProblems' or the kind schema's to report.
  // (And a type whose driver has no `check` is not loaded for nothing: its descriptor says so.)
  if (typeof object.type !== 'string' || !DESCRIPTORS.get(object.type)?.checksAtApply) return [];
  const driver = await loadDriver(object.type);
  if (!driver.check) return [];
  const signal = AbortSignal.timeout(accessCheck.timeoutMs);
  const ctx = { providerName: String(object.name), settings: (object.settings as Record<string, unknown>) ?? {}, ...(credentials ? { credentials } : {}), log: silent, signal };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), accessCheck.timeoutMs)));
  try {
    // Too slow to wait for at apply is not a refusal: let it through; prepare tells.
    await Promise.race([driver.check(ctx), late]);
    return [];
  } catch (e) {
    const err = toFormworkError(e);
    return err.retryable ? [] : [{ path: '/settings', message: err.message }];
  } finally {
    clearTimeout(timer);
  }
}

const validators = new Map<string, ValidateFunction>();

/**
 * A provider object's problems that its kind's schema cannot see: an unknown `type`, and
 * settings that do not match the type's schema. Paths are relative to the object.
 */
export function providerProblems(object: Record<string, unknown>): FieldProblem[] {
  if (typeof object.type !== 'string') return [];
  const d = DESCRIPTORS.get(object.type);
  if (!d) return [{ path: '/type', message: `unknown provider type "${object.type}"; known: ${providerTypes().join(', ')}` }];
  let validate = validators.get(d.type);
  if (!validate) {
    validate = schemaAjv('values').compile(d.settingsSchema);
    validators.set(d.type, validate);
  }
  if (validate(object.settings ?? {})) return [];
  const known = Object.keys((d.settingsSchema.properties as object | undefined) ?? {});
  return schemaProblems(alternativesAsOne(validate.errors ?? [], d.settingsSchema), 'settings').map((p) => {
    const setting = p.path.slice('settings/'.length);
    const message = p.message.startsWith('unknown field')
      ? `unknown ${d.type} setting "${setting}"; known: ${known.join(', ') || 'none'}`
      : `${d.type} setting${setting ? ` ${setting}` : 's'} ${p.message}`;
    return { path: `/${p.path}`, message };
  });
}

/**
 * A top-level `anyOf` of `required` alternatives (openstack: `cloud` or `auth`) reported as
 * one problem naming them, instead of each alternative's missing field and ajv's "must match
 * a schema in anyOf".
 */
function alternativesAsOne(errors: ErrorObject[], schema: Record<string, unknown>): ErrorObject[] {
  const alternatives = Array.isArray(schema.anyOf) ? (schema.anyOf as { required?: string[] }[]).map((a) => a.required ?? []) : [];
  if (!alternatives.length || !errors.some((e) => e.keyword === 'anyOf' && e.instancePath === '')) return errors;
  return errors.flatMap((e) => {
    if (e.schemaPath.startsWith('#/anyOf/')) return [];
    if (e.keyword !== 'anyOf' || e.instancePath !== '') return [e];
    return [{ ...e, message: `need one of: ${alternatives.map((a) => a.join(' and ')).join(', or ')}` }];
  });
}

const silent: ProviderLogger = { info: () => undefined, warn: () => undefined };

export async function providerContext(
  services: Services,
  provider: StoredObject,
  opts: { log?: ProviderLogger; signal?: AbortSignal } = {},
): Promise<ProviderContext> {
  const secretName = provider.credentialsSecret as string | undefined;
  return {
    dataDir: services.dataDir,
    providerName: provider.name,
    settings: (provider.settings as Record<string, unknown>) ?? {},
    ...(secretName ? { credentials: await services.store.secrets.reveal(secretName) } : {}),
    publicKey: ensurePlatformKey(services.dataDir).publicKey,
    log: opts.log ?? silent,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * A driver's failure as Formwork reports it: a FormworkError as it is (drivers throw the
 * registered PROVIDER_* codes), anything else (an SDK's own error) a retryable
 * PROVIDER_ERROR that keeps it as its `cause`.
 */
export function providerFailure(e: unknown, what: string): FormworkError {
  if (e instanceof FormworkError) return e;
  const fe = toFormworkError(e, 'PROVIDER_ERROR');
  return new FormworkError('PROVIDER_ERROR', `${what}: ${fe.message}`, undefined, { cause: e });
}

/** A provider logger that writes readable lines into a run log. */
export function runLogger(log: (chunk: string) => void): ProviderLogger {
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    log(`${level === 'warn' ? 'warning: ' : ''}${msg}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}\n`);
  return { info: line('info'), warn: line('warn') };
}
