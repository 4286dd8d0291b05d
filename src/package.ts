import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormworkError } from './core/errors.js';

/**
 * Where the running Formwork is installed: the folder holding its package.json (and
 * bin/, workloads/, examples/). Found by walking up from this module to the package.json
 * named "formwork", so it is the same answer from src/ (tsx), dist/ (tsc) and the bundle,
 * wherever those files sit below the root. Every file Formwork ships is found through it.
 *
 * @example
 *   const demo = path.join(packageRoot(), 'examples', 'lab-demo.yaml');
 *   packageVersion(); // '0.1.0'
 */

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  if (cached) return cached;
  const self = fileURLToPath(import.meta.url);
  for (let dir = path.dirname(self); ; ) {
    try {
      const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pj.name === 'formwork') return (cached = { root: dir, version: pj.version ?? '0.0.0' });
    } catch {
      // no package.json here (or not JSON): keep looking
    }
    const up = path.dirname(dir);
    if (up === dir) throw new FormworkError('INTERNAL', `cannot find the formwork package root (package.json) above ${self}`);
    dir = up;
  }
}

/** The package root (holding package.json, bin/, workloads/, examples/). */
export function packageRoot(): string {
  return find().root;
}

/** The version in the package's package.json. */
export function packageVersion(): string {
  return find().version;
}
