import { createRequire } from 'node:module';

/**
 * ssh2, loaded on first use rather than with the module that needs it: loading it is about
 * 80 ms of the server's start, and nothing needs it until a node is first reached over SSH.
 * `preloadSsh2()` lets the server load it while it waits on something else (hosts booting).
 *
 * @example
 *   const { Client } = ssh2();
 */
type Ssh2 = typeof import('ssh2');

const require = createRequire(import.meta.url);
let loaded: Ssh2 | undefined;

export function ssh2(): Ssh2 {
  return (loaded ??= require('ssh2') as Ssh2);
}

/**
 * Loads ssh2 a little later: the engine calls this when it starts its first runs, whose first
 * moments (a provider's API calls, a lab host's set-up) it must not delay, and whose next
 * ones are mostly waiting for machines to boot.
 */
export function preloadSsh2(afterMs = 250): void {
  if (!loaded) setTimeout(() => ssh2(), afterMs).unref();
}
