/**
 * What the end-to-end suites share around a real server started in-process: waiting for a
 * condition with a diagnosis when it times out, and deleting an object the way the API does
 * (marked, then deprovisioned by the annealer) and waiting until it is gone.
 *
 * @example
 *   await waitFor(server, async () => (await store.objects('noderoles').find(n))?.state === 'active', 300_000, 'node-ready');
 *   await deleted(server, 'deployments', 'demo');
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RunningServer } from '../../src/server/server.js';

/**
 * Every node-role, node and provider, and the server log's tail (when the server logs to
 * `<dataDir>/server.log`): what a timeout needs to be understood.
 *
 * @example
 *   console.log(await diagnosis(server, dataDir));
 */
export async function diagnosis(server: RunningServer, dataDir?: string): Promise<string> {
  const s = server.services.store;
  const lines: string[] = [];
  for (const n of await s.objects('noderoles').all({})) lines.push(`noderole ${n.name}: ${String(n.state)} ${JSON.stringify(n.lastError ?? null)} ${String(n.blockedReason ?? '')}`);
  for (const n of await s.objects('nodes').all({})) lines.push(`node ${n.name}: ${String(n.state)} nativeId=${String(n.nativeId ?? '')} ${JSON.stringify(n.decisions ?? [])}`);
  for (const p of await s.objects('providers').all({})) lines.push(`provider ${p.name}: ${String(p.state)} ${String(p.message ?? '')}`);
  const log = dataDir && path.join(dataDir, 'server.log');
  const tail = log && fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-40) : [];
  return [...lines, '--- server.log (tail)', ...tail].join('\n');
}

/**
 * Polls `cond` every 500 ms until it holds; after `ms`, fails with `what` and the diagnosis.
 *
 * @example
 *   await waitFor(server, async () => !(await store.objects('nodes').find('web-1')), 60_000, 'web-1 deleted', dataDir);
 */
export async function waitFor(server: RunningServer, cond: () => Promise<boolean>, ms: number, what: string, dataDir?: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await diagnosis(server, dataDir)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Deletes an object as the API does (a deleter only marks it; the annealer deprovisions it)
 * and waits until it is gone.
 *
 * @example
 *   await deleted(server, 'providers', 'aws-emu');
 */
export async function deleted(server: RunningServer, plural: string, name: string, dataDir?: string): Promise<void> {
  await server.services.deleters!.get(plural)!(name, {});
  await waitFor(server, async () => !(await server.services.store.objects(plural).find(name)), 300_000, `${plural}/${name} to be deleted`, dataDir);
}
