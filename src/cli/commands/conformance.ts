import type { Command } from 'commander';
import { FormworkError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import { renderTable } from '../format.js';

/**
 * `formwork conformance [--provider P] [nodes...]`: the yardstick's checks, a row per node
 * (any provider's nodes; the server runs the checks).
 *
 * @example
 *   formwork conformance --provider lab -o json
 */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('conformance')
    .description("check nodes against the yardstick (reachable, logged in, known host, networks, shape, post-provisioning)")
    .option('--provider <name>', "only this provider's nodes")
    .option('-o, --output <format>', 'table or json', 'table')
    .argument('[nodes...]', 'only these nodes')
    .action(async (nodes: string[], opts: { provider?: string; output: string }) => {
      const report = await ctx.client().conformance({ ...(opts.provider ? { provider: opts.provider } : {}), ...(nodes.length ? { nodes } : {}) });
      if (opts.output === 'json') ctx.out(JSON.stringify(report, null, 2));
      else {
        const rows = report.nodes.map((n) => [n.node, n.provider ?? '', ...report.checks.map((c) => (n.results.find((x) => x.check === c)?.ok ? 'pass' : 'FAIL'))]);
        ctx.out(renderTable(['NODE', 'PROVIDER', ...report.checks.map((c) => c.toUpperCase())], rows));
        for (const n of report.nodes) for (const f of n.results.filter((x) => !x.ok)) ctx.out(`${n.node}: ${f.check}: ${f.reason}`);
      }
      if (!report.passed) throw new FormworkError('RUN_FAILED', 'conformance failed: see the reasons above');
    });
}
