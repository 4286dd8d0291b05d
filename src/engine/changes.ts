/**
 * Which active node-roles' inputs may have changed, and sending back to `todo` those whose
 * inputs no longer hash to their `inputHash` (docs/attribs.md, "Re-running on change").
 * The annealer polls the events for changes (`poll`), asks for everything at start and on
 * its periodic sweep (`markAll`), and re-checks what was marked (`check`). A running
 * node-role is not checked here: its finishing transaction re-checks it.
 */
import { FormworkError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import { requeue } from './graph.js';
import type { ContextLoader } from './inputs.js';

export class InputChanges {
  private cursor = -1;
  private all = false;
  private readonly deployments = new Set<string>();
  private readonly nodes = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly loader: ContextLoader,
    private readonly actor: string,
    /** Called with the id of a node-role deleted (its run, if any, must stop). */
    private readonly onDeleted: (id: string) => void = () => {},
  ) {}

  /** Events from now on; everything is checked once (inputs may have changed while no worker watched). */
  async startFromNow(): Promise<void> {
    this.cursor = await this.store.events.latestSeq();
    this.all = true;
  }

  /** Every active node-role is checked next time. */
  markAll(): void {
    this.all = true;
  }

  get pending(): boolean {
    return this.all || this.deployments.size > 0 || this.nodes.size > 0;
  }

  /** Reads new events for changes that may alter resolved inputs (attribs, nodes, roles). */
  async poll(): Promise<void> {
    if (this.cursor < 0) this.cursor = await this.store.events.latestSeq();
    for (;;) {
      const rows = await this.store.db
        .selectFrom('events')
        .select(['seq', 'type', 'action', 'key', 'object'])
        .where('seq', '>', this.cursor)
        .where('type', 'in', ['nodes', 'deployments', 'noderoles', 'roles', 'workloads'])
        .where((eb) => eb.or([eb('type', '<>', 'noderoles'), eb('action', 'in', ['updated', 'deleted'])]))
        .orderBy('seq')
        .limit(1000)
        .execute();
      for (const r of rows) {
        this.cursor = Number(r.seq);
        const type = r.type as string;
        if (type === 'roles' || type === 'workloads') {
          this.loader.invalidate();
          this.all = true;
        } else if (type === 'nodes') {
          this.nodes.add(r.key as string);
        } else if (type === 'deployments') {
          this.deployments.add(r.key as string);
        } else if (type === 'noderoles' && r.object) {
          const o = JSON.parse(r.object as string) as { id?: string; changed?: string[]; deployment?: string };
          if (r.action === 'deleted' && o.id) this.onDeleted(o.id);
          else if (o.changed?.includes('attribs') && o.deployment) this.deployments.add(o.deployment);
        }
      }
      if (rows.length < 1000) break;
    }
  }

  /**
   * Active node-roles (of what was marked) whose resolved inputs no longer hash to their
   * `inputHash` go back to `todo`, or `blocked` behind a parent not active (destructive roles never re-run on their own). Returns how many.
   */
  async check(): Promise<number> {
    const all = this.all;
    const deployments = new Set(this.deployments);
    const nodes = [...this.nodes];
    this.all = false;
    this.deployments.clear();
    this.nodes.clear();
    if (!all && nodes.length) {
      const rows = await this.store.db.selectFrom('noderoles').select('deployment').distinct().where('node', 'in', nodes).execute();
      for (const r of rows) deployments.add(r.deployment as string);
    }
    if (!all && deployments.size === 0) return 0;
    let q = this.store.db.selectFrom('noderoles').selectAll().where('state', '=', 'active').where('input_hash', 'is not', null);
    if (!all) q = q.where('deployment', 'in', [...deployments]);
    const rows = await q.orderBy('id').execute();
    const repo = this.store.objects('noderoles');
    let n = 0;
    for (const row of rows) {
      const nr = repo.toObject(row);
      if (!(await this.loader.stale(nr, nr.inputHash, this.store))) continue;
      try {
        await this.store.transaction((tx) => requeue(tx, nr, this.actor, nr.version));
        n++;
      } catch (e) {
        if (!(e instanceof FormworkError && e.code === 'VERSION_MISMATCH')) throw e;
      }
    }
    return n;
  }
}
