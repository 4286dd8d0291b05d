import type { Command } from 'commander';
import type { RunLog } from '../../core/wire.js';
import type { CliContext } from '../context.js';

/**
 * Engine commands:
 *
 *   formwork logs NODEROLE [-f] [--run ID]   the latest run's log; -f follows a running one
 *                                           (the `logs` event stream) until it leaves running
 *   formwork retry NODEROLE | deployment/NAME
 */

export function register(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description("print a node-role's latest run log (-f: follow it while it runs)")
    .argument('<noderole>', 'node-role name, e.g. demo:web-1:nginx')
    .option('-f, --follow', 'follow the output of a running node-role until it leaves running')
    .option('--run <run>', 'a given run (id or name) instead of the latest')
    .action(async (name: string, opts: { follow?: boolean; run?: string }) => {
      const client = ctx.client();
      const nr = await client.get('noderoles', name);
      let latest: RunLog | undefined;
      try {
        latest = await client.runLog(name, opts.run);
      } catch (e) {
        if (!opts.follow) throw e; // never ran: with -f, wait for it
      }
      const running = nr.state === 'running';
      if (latest && (!opts.follow || !running || latest.state !== 'running')) {
        if (latest.log) ctx.io.stdout.write(latest.log.endsWith('\n') ? latest.log : `${latest.log}\n`);
        if (latest.error?.message) ctx.err(`run ${latest.run} ${latest.state}: ${latest.error.message}`);
        if (!opts.follow || !running) return;
      }
      if (!opts.follow) return;
      // Follow: replay this node-role's log chunks of the current run, then live ones,
      // until a node-role event shows it left `running`.
      const { signal, dispose } = ctx.shutdownSignal();
      const ac = new AbortController();
      signal.addEventListener('abort', () => ac.abort(), { once: true });
      let runId = latest?.state === 'running' ? latest.run : undefined;
      try {
        for await (const e of client.events({ types: ['logs', 'noderoles'], key: name, lastEventId: '0', signal: ac.signal })) {
          const o = (e.object ?? {}) as { runId?: string; chunk?: string; state?: string; version?: number };
          if (e.type === 'logs') {
            if (!runId && o.runId && running) runId = o.runId;
            if (o.runId === runId && o.chunk) ctx.io.stdout.write(o.chunk);
          } else if (e.type === 'noderoles' && (o.version ?? 0) > nr.version && o.state && o.state !== 'running') {
            ctx.err(`${name} is ${o.state}`);
            break;
          } else if (e.type === 'noderoles' && !running && o.state === 'running' && (o.version ?? 0) > nr.version) {
            // It started after we looked: follow the run it starts.
            runId = undefined;
          }
        }
      } finally {
        ac.abort();
        dispose();
      }
    });

  program
    .command('retry')
    .description('retry a failed node-role, or every failed node-role of a deployment (deployment/NAME)')
    .argument('<target>', 'node-role name, or deployment/NAME')
    .action(async (target: string) => {
      const m = /^deployments?\/(.+)$/.exec(target);
      const res = await ctx.client().retry(m ? { deployment: m[1] } : { noderole: target });
      if (!res.retried.length) ctx.out(`${target}: nothing in error to retry`);
      else for (const n of res.retried) ctx.out(`${n} queued again`);
    });
}
