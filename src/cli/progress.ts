import type { FormworkClient } from '../client/client.js';
import type { DeploymentTree, TreeNodeRole } from '../core/wire.js';
import { formatDuration } from '../core/durations.js';
import { FormworkError } from '../core/errors.js';
import type { CliContext } from './context.js';
import { fit, oneLine } from './format.js';

/**
 * `formwork up`'s progress view: follows a deployment's tree until nothing is left to run,
 * as a live block (a row per node) on a terminal, plain lines of changes otherwise.
 *
 * @example
 *   const tree = await follow(ctx, client, 'demo', 20 * 60_000, signal);
 */

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Wakes a waiter when a node-role changes, from the server's event stream: `up` notices the
 * last node-role finishing when it happens, not at its next poll. `wait` also returns after
 * `ms` (a spinner's tick, or a safety net should the stream drop and miss something).
 */
function nodeRoleChanges(client: FormworkClient, signal: AbortSignal, interrupt: AbortSignal): { wait(ms: number): Promise<void> } {
  let changed = false;
  let wake: (() => void) | undefined;
  interrupt.addEventListener('abort', () => wake?.(), { once: true });
  void (async () => {
    try {
      for await (const _ of client.events({ types: ['noderoles'], signal })) {
        changed = true;
        wake?.();
      }
    } catch {
      // the timeout in wait() is the fallback
    }
  })();
  return {
    wait(ms) {
      if (changed || interrupt.aborted) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          changed = false;
          resolve();
        }
        wake = done;
      });
    },
  };
}

/**
 * Why a node-role is where it is, as `: reason`: its error, or what it is blocked on.
 *
 * @example
 *   ctx.err(`  ${nr.name}${reasonOf(nr)}`); // "  demo:demo-0:etcd-healthy: waiting for …"
 */
export function reasonOf(nr: TreeNodeRole): string {
  const why = nr.state === 'error' ? nr.lastError?.message : nr.state === 'blocked' ? nr.blockedReason : undefined;
  return why ? `: ${oneLine(why)}` : '';
}

/**
 * Follows a deployment until nothing is left to run; draws a live block on a terminal, plain lines otherwise.
 * Interrupted (`signal`) → INTERNAL; not done within `timeoutMs` → RUN_TIMEOUT naming what is pending.
 *
 * @example
 *   const tree = await follow(ctx, client, 'demo', 20 * 60_000, signal);
 */
export async function follow(ctx: CliContext, client: FormworkClient, deployment: string, timeoutMs: number, signal: AbortSignal): Promise<DeploymentTree> {
  const stream = new AbortController();
  try {
    return await followTree(ctx, client, deployment, timeoutMs, signal, nodeRoleChanges(client, stream.signal, signal));
  } finally {
    stream.abort();
  }
}

async function followTree(
  ctx: CliContext,
  client: FormworkClient,
  deployment: string,
  timeoutMs: number,
  signal: AbortSignal,
  changes: { wait(ms: number): Promise<void> },
): Promise<DeploymentTree> {
  const tty = Boolean((ctx.io.stdout as { isTTY?: boolean }).isTTY);
  const seen = new Map<string, string>();
  let drawn = 0;
  let tick = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = await client.deploymentTree(deployment);
    const all = [...tree.nodes.flatMap((n) => n.noderoles), ...tree.other];
    if (tty) {
      // One physical row per node, or the cursor-up count of the next frame is wrong: one
      // line of each message, no control characters, cut to the terminal's width.
      const width = Math.max(20, ((ctx.io.stdout as { columns?: number }).columns ?? 160) - 1);
      const lines = tree.nodes.map((n) => {
        const done = n.noderoles.filter((x) => x.state === 'active').length;
        const failed = n.noderoles.find((x) => x.state === 'error');
        const current = n.noderoles.find((x) => x.state === 'running') ?? n.noderoles.find((x) => x.state !== 'active');
        const mark = failed ? '✖' : done === n.noderoles.length ? '✔' : SPIN[tick % SPIN.length];
        const what = failed ? `${failed.role} failed: ${oneLine(failed.lastError?.message ?? '')}` : current ? `${current.role} ${current.state}${reasonOf(current)}` : 'ready';
        return fit(`${mark} ${n.name.padEnd(12)} ${String(done).padStart(2)}/${n.noderoles.length}  ${what}`, width);
      });
      if (drawn) ctx.io.stdout.write(`\x1b[${drawn}A`);
      ctx.io.stdout.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
      drawn = lines.length;
      tick++;
    } else {
      for (const nr of all) {
        // Keyed on the reason too: a node-role blocked on a running parent, then on a failed one, says so.
        const why = reasonOf(nr);
        if (seen.get(nr.name) === nr.state + why) continue;
        seen.set(nr.name, nr.state + why);
        ctx.out(`${new Date().toISOString().slice(11, 19)} ${nr.name} ${nr.state}${why}`);
      }
    }
    const pending = all.filter((x) => x.state === 'todo' || x.state === 'running' || x.state === 'proposed');
    const blockedOnError = all.filter((x) => x.state === 'blocked' && /failed/.test(x.blockedReason ?? ''));
    const waiting = all.filter((x) => x.state === 'blocked').length - blockedOnError.length;
    if (pending.length === 0 && waiting === 0) return tree;
    if (signal.aborted) throw new FormworkError('INTERNAL', 'interrupted: run `formwork up` again to converge, or `formwork down` to remove everything');
    if (Date.now() > deadline) throw new FormworkError('RUN_TIMEOUT', `deployment ${deployment} did not finish within ${formatDuration(timeoutMs / 1000)} (--wait): ${pending.map((p) => `${p.name} (${p.state})`).join(', ')}`);
    await changes.wait(tty ? 120 : 2000);
  }
}
