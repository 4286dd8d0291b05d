// Bundles the compiled CLI (dist/cli/main.js, which includes the server) into
// dist/bundle/formwork.mjs, the file bin/formwork.js runs. A few files to load instead of
// hundreds of modules resolved one by one is most of a fast start. Code behind a dynamic
// import (the server, the PostgreSQL driver, the pack loader) goes to chunks of its own
// beside it, loaded only by the commands that need them: `formwork version` loads about
// a seventh of the code `formwork server` does.
//
// Run by `npm run build` after tsc.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');
fs.rmSync(outdir, { recursive: true, force: true }); // no chunks left from an earlier build

await build({
  absWorkingDir: root,
  entryPoints: { formwork: 'dist/cli/main.js' },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Whitespace and syntax only: names stay, so stack traces stay readable. Comments go,
  // which also keeps the files ASCII (faster for Node to decode and V8 to parse).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  sourcesContent: false,
  external: [
    'better-sqlite3', // native addon
    'ssh2', // loads its native crypto addon by a path relative to its own files
    '@fastify/swagger-ui', // serves the UI's static files from its own package folder
    'pg-native', // pg's optional native binding, not installed
  ],
  // Bundled CommonJS packages call require() for Node's built-ins; ESM has none of its own.
  banner: { js: "import { createRequire as __formworkCreateRequire } from 'node:module'; const require = __formworkCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
