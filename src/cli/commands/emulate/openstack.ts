import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import type { CliContext } from '../../context.js';
import { runInForeground, withEmulatorOptions, type EmulatorCliOptions } from './shared.js';

/**
 * `formwork emulate openstack`: an OpenStack cloud (Keystone, Nova, Neutron, Glance) in
 * the foreground, playing one snowflake scenario or a vendor profile, with real lab hosts
 * as its instances (or in-memory ones with `--backend memory`). It prints the Provider
 * document that uses it and writes the clouds.yaml that document names; Ctrl-C stops it,
 * deletes its lab hosts and removes the clouds.yaml.
 *
 * @example
 *   formwork emulate openstack --scenario private-is-public --listen 127.0.0.1:5000 --subnet-index 40 > provider.yaml
 */
export function register(emulate: Command, ctx: CliContext): void {
  const cmd = emulate
    .command('openstack')
    .description('an OpenStack cloud (Keystone, Nova, Neutron, Glance) playing one snowflake scenario or a vendor profile; prints its Provider document')
    .option('--scenario <name>', 'floating-ip-required (default), naming-chaos, private-is-public, login-user, no-metadata, half-provisioned, late-error, several-externals, no-neutron-fip')
    .option('--profile <vendor>', "a vendor profile's behaviour (requires_floating_ip, floating_ip_source, per-network flags), e.g. citycloud, limestonenetworks");
  withEmulatorOptions(cmd, 40).action((opts: EmulatorCliOptions & { scenario?: string; profile?: string }) =>
    runInForeground(ctx, async (log) => {
      const { runEmulator } = await import('../../../providers/openstack/emulator/index.js');
      const running = await runEmulator({ ...opts, dataDir: ctx.resolve().dataDir, log });
      const emu = running.emulator;
      return {
        banner: [
          `OpenStack emulator, ${emu.scenario.name}: ${emu.scenario.summary}`,
          `Keystone at ${emu.authUrl}, region ${emu.region}; ${opts.backend === 'lab' ? `instances are lab hosts on subnet index ${opts.subnetIndex}` : 'instances are in memory (no machines)'}.`,
          `clouds.yaml: ${running.cloudsFile}`,
          `  export OS_CLIENT_CONFIG_FILE=${running.cloudsFile}   (for the Formwork server and for openstack CLI users)`,
        ],
        documents: [running.provider],
        close: async () => {
          await emu.close();
          await rm(running.cloudsFile, { force: true }); // its password dies with the emulator
        },
      };
    }),
  );
}
