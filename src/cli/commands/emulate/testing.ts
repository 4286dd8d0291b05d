/**
 * What the `formwork emulate <cloud>` tests share: the command run as a user runs it (in
 * memory, on its own data dir), until it has printed its Provider document; Ctrl-C is the
 * abort of its signal. Data dirs are removed after each test.
 *
 * @example
 *   const run = await startEmulate('aws', ['--faults', 'throttle=10%']);
 *   parseAllDocuments(run.out());
 *   await run.stop();
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { main } from '../../main.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A running `formwork emulate`: its data dir, what it printed so far, and Ctrl-C. */
export interface EmulateRun {
  dataDir: string;
  out(): string;
  err(): string;
  /** Ctrl-C, then the command's end (its exit code). */
  stop(): Promise<number>;
}

/**
 * Runs `formwork emulate <cloud> --backend memory ARGS` until it prints a Provider document
 * (or an error, or 10 s pass).
 *
 * @example
 *   const run = await startEmulate('gce', []);
 */
export async function startEmulate(cloud: string, args: string[]): Promise<EmulateRun> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fw-emulate-${cloud}-`));
  dirs.push(dataDir);
  const ac = new AbortController();
  let out = '';
  let err = '';
  const done = main(['--data-dir', dataDir, 'emulate', cloud, '--backend', 'memory', ...args], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: (async function* () {})(), env: {}, cwd: os.tmpdir(), signal: ac.signal });
  const deadline = Date.now() + 10_000;
  while (!out.includes('kind: Provider') && Date.now() < deadline) {
    if (err.includes('error')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { dataDir, stop: async () => (ac.abort(), done), out: () => out, err: () => err };
}
