import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { renderTable } from '../format.js';

/**
 * `formwork providers orphans NAME [--delete] [-o json]`: the resources carrying the
 * provider's ownership tags that no node owns (what a crash or a failed cleanup left in the
 * cloud account), and with `--delete`, deleting them (admin).
 *
 * @example
 *   formwork providers orphans aws-eu
 *   // KIND     ID                 NAME  NODE ID
 *   // address  eipalloc-0a1b2c3d        n-7f3a…
 *   formwork providers orphans aws-eu --delete
 */

interface OrphanReport {
  provider: string;
  source: string;
  owned: number;
  orphans: Array<{ kind: string; id: string; name?: string; tags: Record<string, string> }>;
  deleted?: string[];
}

export function register(program: Command, ctx: CliContext): void {
  const providers = program.command('providers').description("a provider's resources in its cloud");
  providers
    .command('orphans')
    .description("list the resources carrying the provider's ownership tags that no node owns; --delete deletes them (admin)")
    .argument('<name>', 'provider name')
    .option('--delete', 'delete them')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (name: string, opts: { delete?: boolean; output: string }) => {
      const base = `/api/v1/providers/${encodeURIComponent(name)}/orphans`;
      const report = opts.delete ? await ctx.client().request<OrphanReport>('POST', `${base}/delete`, {}) : await ctx.client().request<OrphanReport>('GET', base);
      if (opts.output === 'json') return ctx.out(JSON.stringify(report, null, 2));
      const how = report.source === 'listOwned' ? '' : ' (its driver lists machines only)';
      if (!report.orphans.length) return ctx.out(`provider/${name}: no orphans among the ${report.owned} resources it owns${how}`);
      ctx.out(renderTable(['KIND', 'ID', 'NAME', 'NODE ID'], report.orphans.map((r) => [r.kind, r.id, r.name ?? '', r.tags['formwork.io/node-id'] ?? ''])));
      ctx.out(opts.delete ? `provider/${name}: ${report.deleted?.length ?? 0} orphan(s) deleted` : `provider/${name}: ${report.orphans.length} orphan(s) among the ${report.owned} resources it owns${how}; --delete deletes them`);
    });
}
