import path from 'node:path';
import type { Command } from 'commander';
import { FormworkError } from '../../core/errors.js';
import type { RoleSpec } from '../../core/roles.js';
import type { DeploymentTree, TreeNodeRole } from '../../core/wire.js';
import type { CliContext } from '../context.js';
import { renderTable, toJson, toYaml } from '../format.js';
import { DESCRIBERS } from './resources.js';

/**
 * Deployment and workload commands:
 *   formwork commit DEPLOYMENT
 *   formwork describe deployment NAME        (a tree: node → node-roles with state and blocked reason)
 *   formwork workloads list | show NAME | validate DIR...
 *
 * `workloads validate` runs the loader locally (no server): it prints every problem of
 * every pack given, structural and across roles alike, and exits 1 when any is invalid.
 */

function line(nr: TreeNodeRole): [string, string, string] {
  const why = nr.blockedReason ?? (nr.state === 'error' && nr.lastError && typeof nr.lastError === 'object' ? String(nr.lastError.message ?? '') : '');
  return [nr.role, nr.state, why];
}

/** The tree as text: one block per node, node-roles with their state and why they wait. */
export function renderTree(tree: DeploymentTree): string {
  const counts = Object.entries(tree.counts).sort(([a], [b]) => (a < b ? -1 : 1)).map(([s, n]) => `${s} ${n}`).join(', ');
  const out = [`deployment/${tree.deployment.name}  ${tree.deployment.state}${tree.deployment.provider ? `  provider ${tree.deployment.provider}` : ''}${counts ? `  (${counts})` : ''}`];
  const block = (title: string, list: TreeNodeRole[]) => {
    out.push(title);
    if (!list.length) out.push('  (no roles)');
    const rows = list.map(line);
    const w0 = Math.max(0, ...rows.map((r) => r[0].length));
    const w1 = Math.max(0, ...rows.map((r) => r[1].length));
    rows.forEach((r, i) => {
      const branch = i === rows.length - 1 ? '└─' : '├─';
      out.push(`  ${branch} ${r[0].padEnd(w0)}  ${r[2] ? `${r[1].padEnd(w1)}  ${r[2]}` : r[1]}`.trimEnd());
    });
  };
  for (const n of tree.nodes) block(`${n.name}${n.state ? `  (${n.state})` : ''}`, n.noderoles);
  if (tree.other.length) block('(deployment)', tree.other);
  return out.join('\n');
}

function roleSummary(r: RoleSpec): string[] {
  return [
    r.name,
    r.flags.join(',') || '-',
    r.requires.join(',') || '-',
    r.provides.join(',') || '-',
    r.implementation.kind === 'builtin' ? `builtin ${r.implementation.handler}` : `${r.implementation.kind} ${r.implementation.file}`,
  ];
}

export function register(program: Command, ctx: CliContext): void {
  DESCRIBERS.set('deployments', {
    fetch: (c, name) => c.client().deploymentTree(name),
    render: (tree) => renderTree(tree as DeploymentTree),
  });

  program
    .command('commit')
    .description('commit a deployment: its proposed node-roles become todo (or blocked, with the reason) and the engine starts')
    .argument('<deployment>', 'deployment name')
    .action(async (name: string) => {
      const res = await ctx.client().commit(name);
      ctx.out(`deployment/${name} committed (${res.changed} node-role${res.changed === 1 ? '' : 's'} queued)`);
    });

  const workloads = program.command('workloads').description('list, show and validate workload packs');

  workloads
    .command('list')
    .description('list the stored workloads')
    .action(async () => {
      const client = ctx.client();
      const [list, roles] = await Promise.all([client.listAll('workloads'), client.listAll('roles')]);
      if (!list.length) return ctx.err('No workloads found.');
      const count = (w: string) => roles.filter((r) => r.workload === w).length;
      ctx.out(renderTable(['NAME', 'VERSION', 'ROLES', 'DESCRIPTION'], list.map((w) => [w.name, String(w.workloadVersion ?? ''), String(count(w.name)), String(w.description ?? '').split('\n')[0].slice(0, 60)])));
    });

  workloads
    .command('show')
    .description('show a workload and its roles')
    .argument('<name>', 'workload name')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .action(async (name: string, opts: { output: string }) => {
      const client = ctx.client();
      const w = await client.get('workloads', name);
      const roles = (await client.listAll('roles', { fields: { workload: w.name } })).map((r) => r.spec as RoleSpec);
      if (opts.output === 'json') return ctx.out(toJson({ workload: w, roles }));
      if (opts.output === 'yaml') return ctx.out(toYaml({ workload: w, roles }));
      const files = Object.keys((w.files ?? {}) as Record<string, string>).sort();
      ctx.out(
        [
          `workload/${w.name}  ${String(w.workloadVersion ?? '')}`,
          ...(w.description ? [`  ${String(w.description).trim()}`] : []),
          ...(w.source ? [`source: ${String(w.source)}`] : []),
          ...(w.defaults && Object.keys(w.defaults as object).length ? [`defaults: ${JSON.stringify(w.defaults)}`] : []),
          `files: ${files.join(', ') || '-'}`,
          '',
          renderTable(['ROLE', 'FLAGS', 'REQUIRES', 'PROVIDES', 'IMPLEMENTATION'], roles.map(roleSummary)),
        ].join('\n'),
      );
    });

  workloads
    .command('validate')
    .description('check workload packs locally (no server): every problem of every pack, with its file, role and field, in one pass')
    .argument('<dir...>', 'pack folders (holding workload.yaml), or folders of packs')
    .action(async (dirs: string[]) => {
      // Loaded here: the JSON Schema compiler it needs would slow every other command's start.
      const { checkPacksRead, loadBuiltinPacks, packFolders, readPack } = await import('../../workloads/loader.js');
      const folders = dirs.map((d) => path.resolve(ctx.io.cwd, d));
      const empty = folders.filter((f) => packFolders(f).length === 0);
      const read: ReturnType<typeof readPack>[] = [
        ...empty.map((f) => ({ errors: [{ file: f, message: `no workload.yaml in ${f} or its sub-folders` }] })),
        ...folders.flatMap(packFolders).map(readPack),
      ];
      const names = new Set(read.flatMap((r) => (r.pack ? [r.pack.name] : [])));
      // Requires may name roles of the built-in and installed packs, and of each other.
      const others = loadBuiltinPacks({ dataDir: ctx.resolve().dataDir, paths: (ctx.io.env.FORMWORK_WORKLOADS_PATH ?? '').split(':').filter(Boolean) });
      const { errors: problems } = checkPacksRead(read, others.packs.filter((p) => !names.has(p.name)).flatMap((p) => p.roles));
      if (problems.length === 0) {
        for (const { pack } of read) ctx.out(`workload/${pack!.name} ${pack!.version} is valid (${pack!.roles.length} role${pack!.roles.length === 1 ? '' : 's'}: ${pack!.roles.map((r) => r.name).join(', ')})`);
        return;
      }
      for (const e of problems) {
        const file = path.relative(ctx.io.cwd, e.file) || e.file;
        ctx.out(`${file}: ${e.role ? `role ${e.role}: ` : ''}${e.field ? `${e.field}: ` : ''}${e.message}`);
      }
      throw new FormworkError('WORKLOAD_INVALID', `${dirs.join(', ')}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { errors: problems });
    });
}
