/**
 * The tiny template language of role files: `{{ inputs.name }}`, `{{ node.name }}`,
 * `{{ deployment.name }}`, `{{ json inputs.peers }}`. No logic. A path is dotted names
 * (and numeric indexes: `inputs.peers.0.name`); an unknown name is an error, never an
 * empty string. Strings render as they are, anything else as JSON; `json` forces JSON
 * (so a string renders quoted).
 *
 * @example
 *   renderTemplate('echo {{ inputs.greeting }} {{ json inputs.peers }}', { inputs: { greeting: 'hi', peers: [] } }, 'hello.sh');
 *   // 'echo hi []'
 */
import { FormworkError } from '../core/errors.js';

const TAG = /\{\{\s*(json\s+)?([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}/g;
const ANY_TAG = /\{\{([^}]*)\}\}/g;

export function renderTemplate(text: string, context: Record<string, unknown>, file = 'template'): string {
  // Anything between {{ }} that is not a plain path is refused (no logic, no filters).
  for (const m of text.matchAll(ANY_TAG)) {
    if (!new RegExp(`^${TAG.source}$`).test(m[0])) {
      throw new FormworkError('WORKLOAD_INVALID', `${file}: "${m[0]}" is not a template tag; use {{ path }} or {{ json path }}`, { file, tag: m[0] });
    }
  }
  return text.replace(TAG, (_all, json: string | undefined, path: string) => {
    const value = lookup(context, path, file);
    if (json) return JSON.stringify(value);
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
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
