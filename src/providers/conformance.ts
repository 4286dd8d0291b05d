import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import { ensurePlatformKey } from '../engine/executors/target.js';
import type { Services } from '../context/services.js';
import type { ConformanceReport } from '../core/wire.js';
import { SshPool } from '../ssh/client.js';
import { checkNode, YARDSTICK_CHECKS } from './yardstick.js';

/**
 * The conformance report (`formwork conformance`): the yardstick's checks on every
 * selected node, whatever its provider, in parallel.
 *
 * @example
 *   const report = await runConformance(services, { provider: 'lab' });
 *   report.passed; // true when every check passed on every node
 */

/** The report (its wire shape: core/wire.ts). */
export type { ConformanceReport } from '../core/wire.js';

export async function runConformance(services: Services, select: { provider?: string; nodes?: string[] }): Promise<ConformanceReport> {
  const repo = services.store.objects('nodes');
  let nodes: StoredObject[];
  if (select.nodes?.length) nodes = await Promise.all(select.nodes.map((n) => repo.get(n)));
  else nodes = await repo.all(select.provider ? { filters: { provider: select.provider } } : {});
  if (select.provider) {
    await services.store.objects('providers').get(select.provider);
    nodes = nodes.filter((n) => n.provider === select.provider);
  }
  if (nodes.length === 0) {
    throw new FormworkError('NOT_FOUND', `no nodes to check${select.provider ? ` for provider ${select.provider}` : ''}`, { provider: select.provider });
  }
  const key = ensurePlatformKey(services.dataDir);
  const pool = new SshPool();
  try {
    const rows = await Promise.all(
      nodes.map(async (node) => {
        const results = await checkNode(node, { pool, key });
        return { node: node.name, ...(node.provider ? { provider: node.provider as string } : {}), passed: results.every((r) => r.ok), results };
      }),
    );
    return { passed: rows.every((r) => r.passed), checks: [...YARDSTICK_CHECKS], nodes: rows };
  } finally {
    await pool.close();
  }
}
