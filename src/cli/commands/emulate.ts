import { InvalidArgumentError, type Command } from 'commander';
import { rm } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { CliContext } from '../context.js';

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

function subnetIndex(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError('expected an integer from 0 to 255.');
  return n;
}

function backendName(v: string): 'lab' | 'memory' {
  if (v !== 'lab' && v !== 'memory') throw new InvalidArgumentError('expected lab or memory.');
  return v;
}

/**
 * Adds `emulate openstack` to the program.
 *
 * @example
 *   register(program, ctx); // formwork emulate openstack --scenario late-error --backend memory
 */
export function register(program: Command, ctx: CliContext): void {
  const emulate = program.command('emulate').description('run an emulated cloud in the foreground (for tests and demos)');
  emulate
    .command('openstack')
    .description('an OpenStack cloud (Keystone, Nova, Neutron, Glance) playing one snowflake scenario or a vendor profile; prints its Provider document')
    .option('--scenario <name>', 'floating-ip-required (default), naming-chaos, private-is-public, login-user, no-metadata, half-provisioned, late-error, several-externals, no-neutron-fip')
    .option('--profile <vendor>', "a vendor profile's behaviour (requires_floating_ip, floating_ip_source, per-network flags), e.g. citycloud, limestonenetworks")
    .option('--listen <host:port>', 'address to listen on; port 0 picks a free one', '127.0.0.1:0')
    .option('--subnet-index <n>', "the lab subnet index of the emulator's hosts (0–255)", subnetIndex, 40)
    .option('--backend <kind>', 'lab (real lab hosts; root) or memory (no machines)', backendName, 'lab' as const)
    .option('--base-dir <dir>', 'a prebuilt lab base image (the lab setting baseDir)')
    .action(async (opts: { scenario?: string; profile?: string; listen: string; subnetIndex: number; backend: 'lab' | 'memory'; baseDir?: string }) => {
      const { runEmulator } = await import('../../providers/openstack/emulator/index.js');
      const log = {
        info: (msg: string, fields?: Record<string, unknown>) => ctx.err(`${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
        warn: (msg: string, fields?: Record<string, unknown>) => ctx.err(`warning: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
      };
      const { signal, dispose } = ctx.shutdownSignal();
      const running = await runEmulator({ ...opts, dataDir: ctx.resolve().dataDir, log });
      try {
        const emu = running.emulator;
        ctx.out(
          [
            `# OpenStack emulator, ${emu.scenario.name}: ${emu.scenario.summary}`,
            `# Keystone at ${emu.authUrl}, region ${emu.region}; ${opts.backend === 'lab' ? `instances are lab hosts on subnet index ${opts.subnetIndex}` : 'instances are in memory (no machines)'}.`,
            `# clouds.yaml: ${running.cloudsFile}`,
            `#   export OS_CLIENT_CONFIG_FILE=${running.cloudsFile}   (for the Formwork server and for openstack CLI users)`,
            '# Ctrl-C stops the emulator and deletes its hosts.',
            stringify(running.provider).trimEnd(),
          ].join('\n'),
        );
        if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        ctx.err('stopping the emulator: deleting its servers and hosts…');
      } finally {
        dispose();
        await running.emulator.close();
        await rm(running.cloudsFile, { force: true }); // its password dies with the emulator
      }
      ctx.err('emulator stopped.');
    });
}
