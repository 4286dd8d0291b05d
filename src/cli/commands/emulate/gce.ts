import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { runInForeground, withEmulatorOptions, type EmulatorCliOptions } from './shared.js';

/**
 * `formwork emulate gce`: Google Compute Engine (the Compute REST API and an OAuth token
 * endpoint) in the foreground, with real lab hosts as its instances (or in-memory ones with
 * `--backend memory`). It prints a Secret holding the service account key it accepts (whose
 * `token_uri` is its own token endpoint) and the Provider document using it; Ctrl-C stops it
 * and deletes its lab hosts.
 *
 * @example
 *   formwork emulate gce --listen 127.0.0.1:8085 --faults throttle=20% --subnet-index 54 | formwork apply -f -
 */
export function register(emulate: Command, ctx: CliContext): void {
  const cmd = emulate.command('gce').description('Google Compute Engine (Compute REST API, OAuth token endpoint, instances as lab hosts); prints its Secret and Provider documents');
  withEmulatorOptions(cmd, 54).action((opts: EmulatorCliOptions) =>
    runInForeground(ctx, async (log) => {
      const { startGceForCli } = await import('../../../providers/gce/emulator/cli.js');
      const emu = await startGceForCli({ ...opts, dataDir: ctx.resolve().dataDir, log });
      return {
        banner: [
          `Google Compute Engine emulator: project ${emu.project}, zone ${emu.zone}${opts.faults ? `, faults ${opts.faults}` : ''}`,
          `Compute API at ${emu.emulator.endpoint}; ${opts.backend === 'lab' ? `instances are lab hosts on subnet index ${opts.subnetIndex}` : 'instances are in memory (no machines)'}.`,
        ],
        documents: emu.emulator.documents(`gce-emulator-${opts.subnetIndex}`),
        close: () => emu.emulator.close(),
      };
    }),
  );
}
