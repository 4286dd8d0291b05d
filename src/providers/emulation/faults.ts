/**
 * The faults a cloud emulator injects (`formwork emulate aws|gce|equinix --faults SPEC`),
 * the same for every emulator; each answers a fault in its own cloud's wire format (EC2's
 * `RequestLimitExceeded`, a 429 with `Retry-After`, a 503).
 *
 * SPEC is a comma-separated list of `name=value`:
 * - `throttle=P`: a call is refused for the rate limit with probability P (`0.2` or `20%`);
 *   nothing is done.
 * - `error=P`: a call fails with a 5xx with probability P; nothing is done.
 * - `lost=P`: a call is done, then answered with a 5xx, with probability P (a create whose
 *   response is lost: the client must look before creating again).
 * - `slow=P@DURATION`: a call is answered DURATION late (`2s`, `500ms`) with probability P.
 * - `never-boot=N`: the first N instances never leave their pending state.
 * - `unreachable=N`: the first N instances never answer on the public address attached to
 *   them (the cloud says it is attached; no packet arrives), so their readiness wait runs out.
 * - `retry-after=SECONDS`: the Retry-After a throttled answer carries (default 1).
 * - `seed=N`: a fixed random sequence, so a run can be repeated.
 *
 * @example
 *   const faults = new Faults(parseFaults('throttle=20%,error=0.05,never-boot=1,seed=7'));
 *   faults.next(); // 'throttle' | 'error' | 'lost' | 'slow' | undefined
 */
import { FormworkError } from '../../core/errors.js';

/** A parsed fault spec (see the file's comment). */
export interface FaultSpec {
  throttle: number;
  error: number;
  lost: number;
  slow: number;
  slowMs: number;
  neverBoot: number;
  unreachable: number;
  retryAfterSeconds: number;
  seed?: number;
}

/** What one call gets. */
export type Fault = 'throttle' | 'error' | 'lost' | 'slow';

/** No faults at all. @example new Faults(NO_FAULTS).next(); // undefined */
export const NO_FAULTS: FaultSpec = { throttle: 0, error: 0, lost: 0, slow: 0, slowMs: 0, neverBoot: 0, unreachable: 0, retryAfterSeconds: 1 };

const USAGE = 'expected a comma-separated list of throttle=P, error=P, lost=P, slow=P@DURATION, never-boot=N, unreachable=N, retry-after=SECONDS, seed=N (P a probability: 0.2 or 20%)';

function probability(name: string, v: string): number {
  const n = v.endsWith('%') ? Number(v.slice(0, -1)) / 100 : Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new FormworkError('VALIDATION', `--faults ${name}=${v}: a probability is from 0 to 1 (or 0% to 100%)`, { fault: name });
  return n;
}

function duration(name: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(v);
  if (!m) throw new FormworkError('VALIDATION', `--faults ${name}: "${v}" is not a duration (e.g. 2s or 500ms)`, { fault: name });
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

function count(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FormworkError('VALIDATION', `--faults ${name}=${v}: expected a whole number`, { fault: name });
  return n;
}

/**
 * Parses a fault spec; an empty or absent one is no faults.
 *
 * @example
 *   parseFaults('slow=10%@2s').slowMs; // 2000
 */
export function parseFaults(spec: string | undefined): FaultSpec {
  const out: FaultSpec = { ...NO_FAULTS };
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 1) throw new FormworkError('VALIDATION', `--faults "${part}": ${USAGE}`);
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (name === 'throttle' || name === 'error' || name === 'lost') out[name] = probability(name, value);
    else if (name === 'slow') {
      const [p, d] = value.split('@');
      out.slow = probability(name, p);
      out.slowMs = d === undefined ? 2000 : duration(name, d);
    } else if (name === 'never-boot') out.neverBoot = count(name, value);
    else if (name === 'unreachable') out.unreachable = count(name, value);
    else if (name === 'retry-after') out.retryAfterSeconds = count(name, value);
    else if (name === 'seed') out.seed = count(name, value);
    else throw new FormworkError('VALIDATION', `--faults: unknown fault "${name}"; ${USAGE}`, { fault: name });
  }
  if (out.throttle + out.error + out.lost + out.slow > 1) throw new FormworkError('VALIDATION', '--faults: throttle, error, lost and slow add up to more than 1');
  return out;
}

/** A small seeded generator (mulberry32), so a seeded run repeats. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Decides each call's fault, and which instances never boot; counts what it injected.
 *
 * @example
 *   const f = new Faults(parseFaults('never-boot=1'));
 *   f.takeNeverBoot(); // true (the first instance), then false
 */
export class Faults {
  private readonly random: () => number;
  private neverBootLeft: number;
  private unreachableLeft: number;
  /** How many of each fault were injected, and how many instances were kept from booting or from being reached. */
  readonly injected: Record<Fault | 'neverBoot' | 'unreachable', number> = { throttle: 0, error: 0, lost: 0, slow: 0, neverBoot: 0, unreachable: 0 };

  constructor(readonly spec: FaultSpec = NO_FAULTS, random?: () => number) {
    this.random = random ?? (spec.seed === undefined ? Math.random : seeded(spec.seed));
    this.neverBootLeft = spec.neverBoot;
    this.unreachableLeft = spec.unreachable;
  }

  /** The fault for the next call, if any. */
  next(): Fault | undefined {
    const r = this.random();
    let edge = 0;
    for (const f of ['throttle', 'error', 'lost', 'slow'] as const) {
      edge += this.spec[f];
      if (r < edge) {
        this.injected[f]++;
        return f;
      }
    }
    return undefined;
  }

  /**
   * Makes the next `n` instances never boot (on top of the spec's): a test breaking one machine's readiness.
   *
   * @example
   *   emulator.faults.neverBootNext(); // the next instance stays pending
   */
  neverBootNext(n = 1): void {
    this.neverBootLeft += n;
  }

  /** Whether the instance being made now is one that never boots. */
  takeNeverBoot(): boolean {
    if (this.neverBootLeft <= 0) return false;
    this.neverBootLeft--;
    this.injected.neverBoot++;
    return true;
  }

  /** Whether the instance being made now is one that is never reached on its public address. */
  takeUnreachable(): boolean {
    if (this.unreachableLeft <= 0) return false;
    this.unreachableLeft--;
    this.injected.unreachable++;
    return true;
  }
}

/**
 * The path where an emulator answers its whole state, for tests and demos (never faulted):
 * `{ resources: [{ kind, id, tags }] }`, the way a leak check wants it.
 *
 * @example
 *   const { resources } = await (await fetch(`${endpoint}${EMULATOR_STATE_PATH}`)).json();
 */
export const EMULATOR_STATE_PATH = '/_emulator/state';

/** One resource in an emulator's state. */
export interface EmulatedResource {
  kind: string;
  id: string;
  tags: Record<string, string>;
  /** The instance's state, an address's attachment… what a leak check may want to print. */
  status?: string;
}
