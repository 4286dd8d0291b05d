/**
 * The tiny template language of role scripts: `{{ inputs.name }}`, `{{ node.name }}`,
 * `{{ deployment.name }}`, `{{ json inputs.peers }}`. No logic. A path is dotted names
 * (and numeric indexes: `inputs.peers.0.name`); an unknown name is an error, never an
 * empty string. Strings are taken as they are, anything else as JSON; `json` forces JSON
 * (so a string is quoted).
 *
 * A value is never pasted into the script's text: an input is data, and pasted into shell
 * code it would run as code (an operator could then run commands wherever the role runs,
 * the server's host included for a `local` role). Each tag becomes a reference to an
 * environment variable, `${FW_TPL_<n>}`, and the value travels in the run's environment.
 * Quote the tag as you would quote a variable: `echo "{{ inputs.greeting }}"`.
 *
 * @example
 *   renderScript('echo "{{ inputs.greeting }}" {{ json inputs.peers }}', { inputs: { greeting: 'hi', peers: [] } }, 'hello.sh');
 *   // { text: 'echo "${FW_TPL_1}" ${FW_TPL_2}', env: { FW_TPL_1: 'hi', FW_TPL_2: '[]' } }
 */
import { FormworkError } from '../core/errors.js';

const TAG = /\{\{\s*(json\s+)?([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}/g;
const ANY_TAG = /\{\{([^}]*)\}\}/g;
/** Names of the variables template values travel in: FW_TPL_1, FW_TPL_2, … */
export const TEMPLATE_ENV_PREFIX = 'FW_TPL_';

export interface RenderedScript {
  text: string;
  /** The values the text refers to: FW_TPL_<n> → the tag's value. */
  env: Record<string, string>;
}

export function renderScript(text: string, context: Record<string, unknown>, file = 'template'): RenderedScript {
  // Anything between {{ }} that is not a plain path is refused (no logic, no filters).
  for (const m of text.matchAll(ANY_TAG)) {
    if (!new RegExp(`^${TAG.source}$`).test(m[0])) {
      throw new FormworkError('WORKLOAD_INVALID', `${file}: "${m[0]}" is not a template tag; use {{ path }} or {{ json path }}`, { file, tag: m[0] });
    }
  }
  const env: Record<string, string> = {};
  const out = text.replace(TAG, (_all, json: string | undefined, path: string) => {
    const value = lookup(context, path, file);
    const name = `${TEMPLATE_ENV_PREFIX}${Object.keys(env).length + 1}`;
    env[name] = json || typeof value !== 'string' ? JSON.stringify(value) : value;
    return '${' + name + '}';
  });
  return { text: out, env };
}

/** The paths a template's tags name, in order: `{{ json inputs.peers }}` → 'inputs.peers'. */
export function templatePaths(text: string): string[] {
  return [...text.matchAll(TAG)].map((m) => m[2]!);
}

function lookup(context: Record<string, unknown>, path: string, file: string): unknown {
  const parts = path.split('.');
  let cur: unknown = context;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, p)) {
      const known = cur !== null && typeof cur === 'object' ? Object.keys(cur as object).slice(0, 30) : [];
      throw new FormworkError(
        'WORKLOAD_INVALID',
        `${file}: {{ ${path} }} names "${parts.slice(0, i + 1).join('.')}", which does not exist${known.length ? `; known: ${known.join(', ')}` : ''}`,
        { file, path, known },
      );
    }
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined) throw new FormworkError('WORKLOAD_INVALID', `${file}: {{ ${path} }} is undefined`, { file, path });
  return cur;
}
