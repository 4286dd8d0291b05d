/**
 * How a driver calls its cloud's API: at most `concurrency` calls at once and
 * `requestsPerSecond` started per second per provider (a second's worth may start at once), and a call the cloud refused for a
 * reason that passes (throttling, a 5xx, a dropped connection) tried again with exponential
 * backoff and full jitter, honouring the `Retry-After` the cloud sent (the error's
 * `nextDelayMs`). Shared by every cloud driver, so the same settings mean the same thing on
 * each: `settings.rateLimit: { requestsPerSecond, concurrency }`.
 *
 * What is tried again follows the error's retry semantics (core/errors.ts): a retryable
 * FormworkError, or an error of unknown kind (a bug in a parser is not retried forever:
 * attempts are bounded). A call that is not idempotent (a create without a client token) is
 * tried again only after a refusal that says nothing was done (PROVIDER_THROTTLED): after a
 * 5xx or a lost answer the driver must look for what the call may have made first.
 *
 * @example
 *   const calls = callPolicyFor(ctx);
 *   const reservations = await calls.run('DescribeInstances', () => ec2.send(cmd));
 *   await calls.run('CreateDevice', () => api.createDevice(body), { idempotent: false });
 */
import { isFormworkError } from '../core/errors.js';
import type { ProviderCheckContext } from './provider.js';

/** The knobs (defaults in DEFAULT_CALL_POLICY). */
export interface CallPolicyOptions {
  /** Calls started per second, per provider. */
  requestsPerSecond: number;
  /** Calls in flight at once, per provider. */
  concurrency: number;
  /** Tries in all, the first included. */
  maxAttempts: number;
  /** The backoff's base and cap: the n-th retry waits a random time up to min(cap, base·2ⁿ). */
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * The defaults: 50 calls a second, 16 at once, 6 tries, backoff from 250 ms up to 20 s.
 *
 * @example
 *   new CallPolicy({ ...DEFAULT_CALL_POLICY, maxAttempts: 3 });
 */
export const DEFAULT_CALL_POLICY: CallPolicyOptions = { requestsPerSecond: 50, concurrency: 16, maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 20_000 };

/** Per call: whether it may be repeated after a failure that may have done it. */
export interface CallOptions {
  idempotent?: boolean;
  signal?: AbortSignal;
}

/** The longest Retry-After honoured: a cloud asking for more is waited for by the engine's retry instead. */
const MAX_RETRY_AFTER_MS = 120_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * A provider's call policy (see the file's comment).
 *
 * @example
 *   const calls = new CallPolicy({ ...DEFAULT_CALL_POLICY, requestsPerSecond: 2 });
 *   await calls.run('ListDevices', () => api.get('/projects/p/devices'));
 */
export class CallPolicy {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** The rate limit as GCRA: when the next call would start at the steady rate; a second's worth of calls may start at once. */
  private theoreticalStart = 0;
  /** Retries made, by call and reason (`RunInstances PROVIDER_THROTTLED`): what a bench or a log line reports. */
  readonly retries: Record<string, number> = {};

  constructor(
    readonly options: CallPolicyOptions = DEFAULT_CALL_POLICY,
    private readonly random: () => number = Math.random,
  ) {}

  /** Runs `call` under the policy; its last error when every try failed or the error is not to be retried. */
  async run<T>(what: string, call: () => Promise<T>, opts: CallOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.acquire(opts.signal);
      let result: { ok: true; value: T } | { ok: false; error: unknown };
      try {
        result = { ok: true, value: await call() };
      } catch (error) {
        result = { ok: false, error };
      } finally {
        this.release();
      }
      if (result.ok) return result.value;
      const e = result.error;
      if (attempt >= this.options.maxAttempts || !this.shouldRetry(e, opts)) throw e;
      const code = isFormworkError(e) ? e.code : 'UNKNOWN';
      this.retries[`${what} ${code}`] = (this.retries[`${what} ${code}`] ?? 0) + 1;
      await sleep(this.delayFor(e, attempt), opts.signal);
    }
  }

  private shouldRetry(e: unknown, opts: CallOptions): boolean {
    if (isFormworkError(e)) {
      if (!e.retryable) return false;
      return opts.idempotent !== false || e.code === 'PROVIDER_THROTTLED';
    }
    return opts.idempotent !== false; // unknown: retried (bounded), unless it may have done the thing
  }

  /** The wait before try `attempt + 1`: the cloud's Retry-After, else full jitter. */
  delayFor(e: unknown, attempt: number): number {
    const asked = isFormworkError(e) ? e.nextDelayMs : undefined;
    if (asked !== undefined) return Math.min(asked, MAX_RETRY_AFTER_MS);
    return Math.floor(this.random() * Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (attempt - 1)));
  }

  private async acquire(signal?: AbortSignal): Promise<void> {
    while (this.inFlight >= this.options.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    const now = Date.now();
    const interval = 1000 / this.options.requestsPerSecond;
    const burst = Math.max(0, this.options.requestsPerSecond - 1) * interval;
    const due = Math.max(now, this.theoreticalStart);
    this.theoreticalStart = due + interval;
    const startAt = due - burst;
    if (startAt > now) {
      try {
        await sleep(startAt - now, signal);
      } catch (e) {
        this.release();
        throw e;
      }
    }
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }
}

const policies = new Map<string, { key: string; policy: CallPolicy }>();

/**
 * The call policy of a provider (one per provider name, kept while its rate settings stay
 * the same), from `settings.rateLimit` over the defaults.
 *
 * @example
 *   callPolicyFor({ providerName: 'aws1', settings: { rateLimit: { requestsPerSecond: 5 } }, log });
 */
export function callPolicyFor(ctx: Pick<ProviderCheckContext, 'providerName' | 'settings'>): CallPolicy {
  const rl = (ctx.settings.rateLimit ?? {}) as Partial<CallPolicyOptions>;
  const options: CallPolicyOptions = {
    ...DEFAULT_CALL_POLICY,
    ...(typeof rl.requestsPerSecond === 'number' && rl.requestsPerSecond > 0 ? { requestsPerSecond: rl.requestsPerSecond } : {}),
    ...(typeof rl.concurrency === 'number' && rl.concurrency >= 1 ? { concurrency: Math.floor(rl.concurrency) } : {}),
  };
  const key = JSON.stringify(options);
  const known = policies.get(ctx.providerName);
  if (known?.key === key) return known.policy;
  const policy = new CallPolicy(options);
  policies.set(ctx.providerName, { key, policy });
  return policy;
}

/**
 * The JSON Schema of `settings.rateLimit`, for every cloud descriptor's settings.
 *
 * @example
 *   settingsSchema: { properties: { rateLimit: RATE_LIMIT_SETTING } }
 */
export const RATE_LIMIT_SETTING = {
  type: 'object',
  additionalProperties: false,
  properties: {
    requestsPerSecond: { type: 'number', exclusiveMinimum: 0, description: 'API calls started per second (default 50)' },
    concurrency: { type: 'integer', minimum: 1, description: 'API calls in flight at once (default 16)' },
  },
  description: "How fast Formwork calls the cloud's API for this provider; throttled and failed calls are retried with backoff and jitter, honouring Retry-After",
} as const;

/** @internal: used by tests to start from no policies. */
export function forgetCallPolicies(): void {
  policies.clear();
}

