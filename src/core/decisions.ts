/**
 * A decision recorded on a node: what Formwork (or its provider's driver) chose for it —
 * size, image, login user, network, address, zone — and why. Stored in the node's
 * `decisions` field and shown by `formwork describe node`, so an operator never has to guess
 * why a machine got the flavor, the image or the user it got.
 *
 * @example
 *   const d: NodeDecision = { subject: 'size', chosen: 't3.small', reason: 'cheapest of 4 sizes meeting 2 cpus, 2048 MiB' };
 *   mergeDecisions([d], [{ subject: 'size', chosen: 'm5.large', reason: 'settings.sizes.small' }]); // the later one replaces it
 */

/** What a decision is about; drivers may add their own subjects (`security-group`, `key-pair`). */
export type DecisionSubject = 'size' | 'image' | 'login-user' | 'network' | 'address' | 'zone' | (string & {});

export interface NodeDecision {
  subject: DecisionSubject;
  /** What was chosen: a native id, a user name, an address. */
  chosen: string;
  /** Why: the rule, setting, API field or probe that decided it. */
  reason: string;
}

/**
 * `later` replaces the decisions of `earlier` on the same subject (for networks, of which a
 * machine may have several: the same `chosen`), keeping the rest in order.
 *
 * @example
 *   mergeDecisions([{ subject: 'image', chosen: 'a', reason: 'x' }], [{ subject: 'image', chosen: 'b', reason: 'y' }]); // [{ subject: 'image', chosen: 'b', reason: 'y' }]
 */
export function mergeDecisions(earlier: unknown, later: readonly NodeDecision[]): NodeDecision[] {
  const kept = (Array.isArray(earlier) ? (earlier as NodeDecision[]) : []).filter((d) => !later.some((l) => sameSlot(d, l)));
  return [...kept, ...later];
}

const MULTIPLE = new Set(['network']);
const sameSlot = (a: NodeDecision, b: NodeDecision) => a.subject === b.subject && (!MULTIPLE.has(a.subject) || a.chosen === b.chosen);
