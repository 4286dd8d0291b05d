/**
 * Engine benchmark: a synthetic committed deployment of N nodes × R roles (a chain per
 * node) on SQLite in a temp dir, run by one annealer.
 *
 *   npm run bench:engine                      # builtin no-op 1000×10, then local `true` 100×10
 *   npm run bench:engine -- --nodes 200 --roles 5 --executor local --concurrency 8
 *
 * Prints node-roles/second, the scheduling overhead per node-role (from becoming runnable
 * — its parent's run ended, or the start for the first role — to its run starting; from
 * the Run records, millisecond resolution), and peak RSS. With more runnable node-roles
 * than `concurrency`, that time includes waiting for a free slot; the 16×10 run at
 * concurrency 16 shows the scheduling overhead alone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { newId } from '../src/core/ids.js';
import { Store } from '../src/store/store.js';
import { Annealer } from '../src/engine/annealer.js';

interface Args {
  nodes: number;
  roles: number;
  executor: 'builtin' | 'local';
  concurrency: number;
}

function parseArgs(argv: string[]): Args[] {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (!get('nodes') && !get('executor')) {
    return [
      { nodes: 1000, roles: 10, executor: 'builtin', concurrency: 16 },
      // Every chain has a slot: the overhead is scheduling alone, no queueing for capacity.
      { nodes: 16, roles: 10, executor: 'builtin', concurrency: 16 },
      { nodes: 100, roles: 10, executor: 'local', concurrency: 8 },
    ];
  }
  return [
    {
      nodes: Number(get('nodes') ?? 1000),
      roles: Number(get('roles') ?? 10),
      executor: (get('executor') ?? 'builtin') as Args['executor'],
      concurrency: Number(get('concurrency') ?? 16),
    },
  ];
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function seed(store: Store, a: Args): Promise<void> {
  const now = new Date().toISOString();
  const roleNames = Array.from({ length: a.roles }, (_, i) => `bench-r${i}`);
  const impl = a.executor === 'builtin' ? { kind: 'builtin', handler: 'engine.noop' } : { kind: 'local', file: 'true.sh' };
  await store.objects('workloads').create({ name: 'bench', workloadVersion: '1.0.0', files: { 'true.sh': 'true\n' }, defaults: {} });
  for (const r of roleNames) {
    await store.objects('roles').create({
      name: r,
      workload: 'bench',
      spec: { name: r, workload: 'bench', requires: [], provides: [], conflicts: [], flags: [], inputs: {}, outputs: {}, implementation: impl },
    });
  }
  await store.objects('deployments').create({ name: 'bench', state: 'committed', attribs: {} });
  const base = (name: string) => ({ id: '', name, version: 1, labels: '{}', created_at: now, updated_at: now });
  await store.transaction(async (tx) => {
    const nodes = Array.from({ length: a.nodes }, (_, i) => ({ ...base(`b${i}`), id: newId('nd'), deployment: 'bench', state: 'ready', addresses: '[]' }));
    for (let i = 0; i < nodes.length; i += 500) await tx.db.insertInto('nodes').values(nodes.slice(i, i + 500)).execute();
    const rows: Array<Record<string, unknown>> = [];
    const links: Array<{ parent_id: string; child_id: string }> = [];
    for (const n of nodes) {
      let parent: string | undefined;
      for (const r of roleNames) {
        const id = newId('nr');
        rows.push({
          ...base(`bench:${n.name}:${r}`),
          id,
          deployment: 'bench',
          node: n.name,
          role: r,
          state: parent ? 'blocked' : 'todo',
          blocked_reason: parent ? 'waiting for parent' : null,
          parents: JSON.stringify(parent ? [parent] : []),
          attribs: '{}',
          attempts: 0,
        });
        if (parent) links.push({ parent_id: parent, child_id: id });
        parent = id;
      }
    }
    for (let i = 0; i < rows.length; i += 200) await tx.db.insertInto('noderoles').values(rows.slice(i, i + 200)).execute();
    for (let i = 0; i < links.length; i += 500) await tx.db.insertInto('noderole_links').values(links.slice(i, i + 500)).execute();
  });
}

async function runOne(a: Args): Promise<Record<string, number | string>> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'formwork-bench-'));
  const store = await Store.open({ dataDir, secretKey: randomBytes(32) });
  try {
    await seed(store, a);
    const total = a.nodes * a.roles;
    const annealer = new Annealer({ store, dataDir, appliers: new Map() }, { concurrency: a.concurrency, perProviderConcurrency: a.concurrency, tickMs: 50, leaseMs: 60_000 });
    const t0 = Date.now();
    await annealer.start();
    let last = -1;
    for (;;) {
      const row = await store.db.selectFrom('noderoles').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'active').executeTakeFirst();
      const n = Number(row?.n ?? 0);
      if (n === total) break;
      const failed = await store.db.selectFrom('noderoles').select('name').where('state', '=', 'error').executeTakeFirst();
      if (failed) throw new Error(`node-role ${failed.name} failed`);
      if (n !== last) last = n;
      await new Promise((r) => setTimeout(r, 100));
    }
    const elapsed = (Date.now() - t0) / 1000;
    await annealer.stop();

    // Scheduling overhead: parent's run end (or t0) → own run start.
    const runs = await store.db.selectFrom('runs').select(['noderole', 'started_at', 'ended_at']).execute();
    const byName = new Map(runs.map((r) => [r.noderole as string, r]));
    const overheads: number[] = [];
    for (const r of runs) {
      const [dep, node, role] = (r.noderole as string).split(':');
      const idx = Number(role.replace('bench-r', ''));
      const parent = idx > 0 ? byName.get(`${dep}:${node}:bench-r${idx - 1}`) : undefined;
      const readyAt = parent ? Date.parse(parent.ended_at as string) : t0;
      overheads.push(Date.parse(r.started_at as string) - readyAt);
    }
    overheads.sort((x, y) => x - y);
    const first = overheads.length; // every node-role counted
    return {
      executor: a.executor === 'builtin' ? 'builtin engine.noop' : 'local `true`',
      noderoles: total,
      concurrency: a.concurrency,
      seconds: Number(elapsed.toFixed(1)),
      'noderoles/s': Math.round(total / elapsed),
      'overhead p50 ms': pct(overheads, 50),
      'overhead p99 ms': pct(overheads, 99),
      runs: first,
    };
  } finally {
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const results = [];
for (const a of parseArgs(process.argv.slice(2))) {
  process.stderr.write(`bench: ${a.nodes} nodes × ${a.roles} roles, ${a.executor}, concurrency ${a.concurrency}…\n`);
  results.push(await runOne(a));
}
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model;
console.table(results);
console.log(`peak RSS: ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
console.log(`machine: ${os.cpus().length} CPUs (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`);
