/**
 * The pack and the model of the randomized convergence test (convergence.property.test.ts):
 * a small DAG of `local` roles whose outputs are derived from their inputs, so the
 * outputs a deployment converges to can be computed from the last document applied.
 *
 *   src (every node; inputs seed, token [secret], delay, fail) → value, digest(token)
 *   mid (every node; reads outputs(src).value, factor)          → value
 *   agg (node 0; requires every mid, reads outputs(mid).value)  → value (the list)
 *   extra (a random subset of nodes; reads outputs(src).value)  → value
 *   mirror (node 0; copy from deployment.attribs.token)         → len
 *
 * Every run appends `start|end <noderole> <runId> <ns>` to a record file, so a node-role
 * running twice at once shows as two overlapping intervals. Each node has a `core`
 * replacement (provision and node-ready as quick local no-ops): the test needs the engine,
 * not machines.
 *
 * @example
 *   writePacks(dir, recordFile);
 *   const doc = deploymentDocument('conv-1', state, { mirror: true });
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const NODE_COUNT = 3;

/** Everything a document applies; the deployment must converge to what the last one says. */
export interface ModelState {
  seed: string;
  token: string;
  /** Seconds each run sleeps (runs are in flight while the next command comes). */
  delay: number;
  factor: string;
  fail: { src: boolean; mid: boolean; agg: boolean };
  /** Node indexes `extra` is bound on (none: the binding is absent). */
  extra: number[];
}

/** The defect classes a run can leave out (FORMWORK_PROPERTY_EXCLUDE, comma-separated). */
export const DEFECT_CLASSES = [
  'secret-from', // mirror reads the secret attrib through `from:` into a non-secret input
  'secret-patch', // PATCHes of deployment attribs give a new token in the clear
  'bad-apply', // documents with a required input missing or a literal of the wrong type
  'in-flight', // changes while runs are in flight (without it, each waits for rest first)
  'long-runs', // runs longer than the engine's 2 s role cache (finishing one reads roles afresh)
] as const;
export type DefectClass = (typeof DEFECT_CLASSES)[number];

export function parseExclude(value: string | undefined): Set<DefectClass> {
  const items = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) {
    if (!(DEFECT_CLASSES as readonly string[]).includes(i)) {
      throw new Error(`FORMWORK_PROPERTY_EXCLUDE: unknown defect class "${i}"; known: ${DEFECT_CLASSES.join(', ')}`);
    }
  }
  return new Set(items as DefectClass[]);
}

const record = (file: string) => `rec=${JSON.stringify(file)}
echo "start $FW_NODEROLE $FW_RUN_ID $(date +%s%N)" >> "$rec"
trap 'echo "end $FW_NODEROLE $FW_RUN_ID $(date +%s%N)" >> "$rec"' EXIT
trap 'exit 143' TERM
sleep "\${FW_INPUT_DELAY:-0}"
if [ "$FW_INPUT_FAIL" = "true" ]; then echo "failing on command (input fail=true)"; exit 3; fi
`;

const COMMON_INPUTS = `      delay: { type: number, minimum: 0, default: 0 }
      fail: { type: boolean, default: false }`;

function fuzzYaml(): string {
  return `name: fuzz
version: 1.0.0
description: Roles of the randomized convergence test
roles:
  - name: src
    requires: [node-ready]
    inputs:
      seed: { type: string, required: true }
      token: { type: string, secret: true, required: true }
${COMMON_INPUTS}
    outputs:
      value: { type: string }
      digest: { type: string }
    implementation: { kind: local, file: src.sh }
    retries: 1
  - name: mid
    requires: [src]
    inputs:
      up: { type: string, from: "outputs(src).value" }
      factor: { type: string, default: f0 }
${COMMON_INPUTS}
    outputs:
      value: { type: string }
    implementation: { kind: local, file: mid.sh }
    retries: 1
  - name: agg
    requires: [node-ready]
    inputs:
      parts: { type: array, items: { type: string }, from: "outputs(mid).value" }
${COMMON_INPUTS}
    outputs:
      value: { type: array, items: { type: string } }
    implementation: { kind: local, file: agg.sh }
    retries: 1
  - name: extra
    requires: [src]
    inputs:
      up: { type: string, from: "outputs(src).value" }
${COMMON_INPUTS}
    outputs:
      value: { type: string }
    implementation: { kind: local, file: extra.sh }
    retries: 1
  - name: mirror
    requires: [node-ready]
    inputs:
      copy: { type: string, from: "deployment.attribs.token" }
${COMMON_INPUTS}
    outputs:
      len: { type: integer }
    implementation: { kind: local, file: mirror.sh }
    retries: 1
`;
}

const CORE_YAML = `name: core
version: 1.0.0
description: Quick stand-ins for provision and node-ready (the convergence test makes no machines)
roles:
  - name: provision
    implementation: { kind: local, file: ok.sh }
  - name: node-ready
    requires: [provision]
    provides: [node-ready]
    implementation: { kind: local, file: ok.sh }
`;

/** Writes the `core` stand-in and the `fuzz` pack under `dir` (a FORMWORK_WORKLOADS_PATH entry). */
export function writePacks(dir: string, recordFile: string): void {
  const core = path.join(dir, 'core');
  const fuzz = path.join(dir, 'fuzz');
  fs.mkdirSync(core, { recursive: true });
  fs.mkdirSync(fuzz, { recursive: true });
  fs.writeFileSync(path.join(core, 'workload.yaml'), CORE_YAML);
  fs.writeFileSync(path.join(core, 'ok.sh'), 'echo ok\n');
  fs.writeFileSync(path.join(fuzz, 'workload.yaml'), fuzzYaml());
  const scripts: Record<string, string> = {
    'src.sh': `printf '{"value":"s-%s-%s","digest":"%s"}' "$FW_INPUT_SEED" "$FW_NODE" "$(printf %s "$FW_INPUT_TOKEN" | sha256sum | cut -c1-16)" > "$FW_OUTPUTS"`,
    'mid.sh': `printf '{"value":"m-%s-%s"}' "$FW_INPUT_UP" "$FW_INPUT_FACTOR" > "$FW_OUTPUTS"`,
    'agg.sh': `printf '{"value":%s}' "$FW_INPUT_PARTS" > "$FW_OUTPUTS"`,
    'extra.sh': `printf '{"value":"x-%s"}' "$FW_INPUT_UP" > "$FW_OUTPUTS"`,
    'mirror.sh': `printf '{"len":%d}' "\${#FW_INPUT_COPY}" > "$FW_OUTPUTS"`,
  };
  for (const [file, body] of Object.entries(scripts)) fs.writeFileSync(path.join(fuzz, file), record(recordFile) + body + '\n');
}

export const nodeName = (dep: string, i: number) => `${dep}-${i}`;
export const nrName = (dep: string, i: number, role: string) => `${dep}:${nodeName(dep, i)}:${role}`;

export interface DocumentOptions {
  /** Bind `mirror` (its `from:` reads the secret deployment attrib). */
  mirror: boolean;
}

export function deploymentDocument(dep: string, s: ModelState, o: DocumentOptions): Record<string, unknown> {
  const all = [...Array(NODE_COUNT).keys()];
  const roles: Record<string, unknown> = {
    src: { nodes: all, inputs: { fail: s.fail.src } },
    mid: { nodes: all, inputs: { factor: s.factor, fail: s.fail.mid } },
    // requires every mid (the planner makes each a parent), whose values it reads.
    agg: { nodes: [0], requires: ['mid'], inputs: { fail: s.fail.agg } },
  };
  if (s.extra.length) roles.extra = { nodes: s.extra };
  if (o.mirror) roles.mirror = { nodes: [0] };
  return { kind: 'Deployment', name: dep, nodes: { count: NODE_COUNT }, roles, attribs: { seed: s.seed, token: s.token, delay: s.delay } };
}

/** What each node-role's outputs must be once the deployment has converged on `s`. */
export function expectedOutputs(dep: string, s: ModelState, o: DocumentOptions): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const digest = createHash('sha256').update(s.token).digest('hex').slice(0, 16);
  const srcValue = (i: number) => `s-${s.seed}-${nodeName(dep, i)}`;
  const mids: string[] = [];
  for (let i = 0; i < NODE_COUNT; i++) {
    out.set(nrName(dep, i, 'src'), { value: srcValue(i), digest });
    const mid = `m-${srcValue(i)}-${s.factor}`;
    mids.push(mid);
    out.set(nrName(dep, i, 'mid'), { value: mid });
  }
  out.set(nrName(dep, 0, 'agg'), { value: mids });
  for (const i of s.extra) out.set(nrName(dep, i, 'extra'), { value: `x-${srcValue(i)}` });
  if (o.mirror) out.set(nrName(dep, 0, 'mirror'), { len: s.token.length });
  return out;
}
