/**
 * Secrecy follows the value. A run knows which plaintexts are secret — every value it
 * opened from a sealed form (attribs of its deployment, node and node-role, generated
 * values, parents' sealed outputs) and every value of an input its role marks `secret` —
 * and treats anything that holds one as secret too: an input fed from a secret through
 * `from:` (however many hops), an output that republishes it, a log line that prints it.
 *
 * Matching is by value: a string holding a secret (`db://user:PW@host`) is secret. Secrets
 * shorter than MIN_MASKED characters are matched only as whole values, since masking every
 * occurrence of, say, "1" would make logs unreadable and hide nothing.
 *
 * @example
 *   const s = new SecretValues(); s.add('hunter22');
 *   s.holds({ dsn: 'db://hunter22@x' }); // true
 *   s.mask('pw is hunter22');             // 'pw is [redacted]'
 */
import { isSealed, REDACTED, SEALED_KEY } from '../core/attribs.js';
import { stableStringify } from '../core/schema.js';
import type { RoleSpec } from '../core/roles.js';

export const MIN_MASKED = 4;

export class SecretValues {
  private readonly exact = new Set<string>();
  /** Longest first, so a secret containing another is masked whole. */
  private masked: string[] = [];

  /** Records a secret value: the value itself and, for structures, every string and its JSON. */
  add(value: unknown): void {
    if (value === undefined || value === null) return;
    if (typeof value === 'string') {
      if (this.exact.has(value)) return;
      this.exact.add(value);
      if (value.length >= MIN_MASKED) this.masked = [...this.masked, value].sort((a, b) => b.length - a.length);
      return;
    }
    if (typeof value === 'object') {
      for (const v of Object.values(value as Record<string, unknown>)) this.add(v);
      this.add(JSON.stringify(value));
      return;
    }
    this.exact.add(JSON.stringify(value));
  }

  get size(): number {
    return this.exact.size;
  }

  /** Whether `value` is, or holds anywhere, a secret. */
  holds(value: unknown): boolean {
    if (this.exact.size === 0 || value === undefined || value === null) return false;
    if (typeof value === 'string') return this.exact.has(value) || this.masked.some((s) => value.includes(s));
    if (typeof value === 'object') return Object.values(value as Record<string, unknown>).some((v) => this.holds(v));
    return this.exact.has(JSON.stringify(value));
  }

  /** `text` with every occurrence of a secret replaced by "[redacted]". */
  mask(text: string): string {
    let out = text;
    for (const s of this.masked) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  /** The names of inputs that are secret: marked so by the role, or holding a secret value. Records the marked ones' values. */
  secretInputs(inputs: Record<string, unknown>, role: RoleSpec): Set<string> {
    for (const [k, v] of Object.entries(inputs)) if (role.inputs[k]?.secret) this.add(v);
    return new Set(Object.keys(inputs).filter((k) => role.inputs[k]?.secret || this.holds(inputs[k])));
  }

  /** A masker for one stream of text (a run's log), which may cut a secret across chunks. */
  masker(): SecretMasker {
    return new SecretMasker(this);
  }

  /** The longest tail of `text` that could begin a secret (held back until the next chunk). */
  pendingTail(text: string): number {
    let keep = 0;
    for (const s of this.masked) {
      for (let k = Math.min(s.length - 1, text.length); k > keep; k--) {
        if (s.startsWith(text.slice(text.length - k))) {
          keep = k;
          break;
        }
      }
    }
    return keep;
  }
}

/** A copy of `inputs` with the named ones replaced by "[redacted]". */
export function redactNamed(inputs: Record<string, unknown>, secret: Set<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, secret.has(k) ? REDACTED : v]));
}

/** Masks a stream chunk by chunk, holding back only a tail that could begin a secret. */
export class SecretMasker {
  private pending = '';
  constructor(private readonly secrets: SecretValues) {}

  push(chunk: string): string {
    const text = this.secrets.mask(this.pending + chunk);
    const keep = this.secrets.pendingTail(text);
    this.pending = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  end(): string {
    const rest = this.secrets.mask(this.pending);
    this.pending = '';
    return rest;
  }
}

/**
 * The outputs to store on the node-role (`stored`: each output holding a secret sealed for
 * `owner`, keeping the sealed form it had when its value is unchanged, so an unchanged
 * output re-runs no child) and to show in the run record (`shown`: those redacted).
 */
export function protectOutputs(
  outputs: Record<string, unknown>,
  secrets: SecretValues,
  before: unknown,
  box: { seal(plain: string, owner: string): string; unseal(sealed: string, owner: string): string },
  owner: string,
): { stored: Record<string, unknown>; shown: Record<string, unknown> } {
  const prior = (before && typeof before === 'object' ? before : {}) as Record<string, unknown>;
  const stored: Record<string, unknown> = {};
  const shown: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(outputs)) {
    if (!secrets.holds(v)) {
      stored[k] = shown[k] = v;
      continue;
    }
    shown[k] = REDACTED;
    const p = prior[k];
    const same = isSealed(p) && (() => {
      try {
        return stableStringify(JSON.parse(box.unseal(p[SEALED_KEY], owner))) === stableStringify(v);
      } catch {
        return false;
      }
    })();
    stored[k] = same ? p : { [SEALED_KEY]: box.seal(JSON.stringify(v), owner) };
  }
  return { stored, shown };
}
