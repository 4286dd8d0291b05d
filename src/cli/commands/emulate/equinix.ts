import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { runInForeground, withEmulatorOptions, type EmulatorCliOptions } from './shared.js';

/**
 * `formwork emulate equinix`: the Equinix Metal API (the Packet API: devices, project SSH
 * keys, plans, operating systems, metros) in the foreground, its devices real lab hosts on
 * the public side (or in memory with `--backend memory`), root the login user, with the
 * faults asked for. It prints the Secret holding the API token it accepts and the Provider
 * document (`type: equinix`, `settings.baseUrl` pointing at it); Ctrl-C stops it and deletes
 * its hosts.
 *
 * @example
 *   formwork emulate equinix --listen 127.0.0.1:8090 --faults throttle=20%,never-boot=1 --subnet-index 58 | formwork apply -f -
 */
export function register(emulate: Command, ctx: CliContext): void {
  const cmd = emulate.command('equinix').description('the Equinix Metal API (devices, project SSH keys, plans, operating systems, metros); prints its Secret and Provider documents');
  withEmulatorOptions(cmd, 58).action((opts: EmulatorCliOptions) =>
    runInForeground(ctx, async (log) => {
      const { startEquinixEmulator } = await import('../../../providers/equinix/emulator/index.js');
      const { parseFaults } = await import('../../../providers/emulation/faults.js');
      const { parseListen } = await import('../../../core/listen.js');
      const { MemoryBackend } = await import('../../../providers/emulation/hosts.js');
      const { LabBackend } = await import('../../../providers/emulation/lab-hosts.js');
      const { host, port } = parseListen(opts.listen);
      const faults = parseFaults(opts.faults);
      const backend = opts.backend === 'lab' ? new LabBackend({ emulator: 'equinix', dataDir: ctx.resolve().dataDir, subnetIndex: opts.subnetIndex, baseDir: opts.baseDir, log }) : new MemoryBackend();
      const emu = await startEquinixEmulator({ backend, host, port, faults, log });
      const name = `equinix-emulator-${opts.subnetIndex}`;
      return {
        banner: [
          `Equinix Metal emulator: API at ${emu.endpoint}, project ${emu.projectId}, metros da, sv, am.`,
          opts.backend === 'lab' ? `Devices are lab hosts on subnet index ${opts.subnetIndex}, reachable on their public address; root logs in.` : 'Devices are in memory (no machines).',
          ...(opts.faults ? [`Faults: ${opts.faults}`] : []),
        ],
        documents: emu.documents(name),
        close: () => emu.close(),
      };
    }),
  );
}
