import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { runInForeground, withEmulatorOptions, type EmulatorCliOptions } from './shared.js';

/**
 * `formwork emulate aws`: the EC2 Query API of one region in the foreground, whose instances
 * are real lab hosts (or in-memory ones with `--backend memory`) reachable only through an
 * Elastic IP. It prints the Secret and Provider documents that use it (`| formwork apply -f -`);
 * Ctrl-C stops it and deletes its instances and hosts.
 *
 * @example
 *   formwork emulate aws --listen 127.0.0.1:4566 --faults throttle=20%,never-boot=1 > aws.yaml
 */
export function register(emulate: Command, ctx: CliContext): void {
  const cmd = emulate
    .command('aws')
    .description('an AWS EC2 region (the EC2 Query API: instances, key pairs, security groups, Elastic IPs) whose instances are lab hosts; prints its Secret and Provider documents')
    .option('--region <name>', 'the region it plays', 'us-east-1')
    .option('--provider-name <name>', 'the name of the Provider document it prints', 'aws-emulator');
  withEmulatorOptions(cmd, 50).action((opts: EmulatorCliOptions & { region: string; providerName: string }) =>
    runInForeground(ctx, async (log) => {
      const [{ startAwsEmulator }, { parseFaults }, { parseListen }, hosts, lab] = await Promise.all([
        import('../../../providers/aws/emulator/index.js'),
        import('../../../providers/emulation/faults.js'),
        import('../../../core/listen.js'),
        import('../../../providers/emulation/hosts.js'),
        import('../../../providers/emulation/lab-hosts.js'),
      ]);
      const faults = parseFaults(opts.faults);
      const { host, port } = parseListen(opts.listen);
      const backend = opts.backend === 'lab' ? new lab.LabBackend({ emulator: 'aws', dataDir: ctx.resolve().dataDir, subnetIndex: opts.subnetIndex, baseDir: opts.baseDir, log }) : new hosts.MemoryBackend();
      const emu = await startAwsEmulator({ backend, host, port, faults, region: opts.region, log });
      return {
        banner: [
          `AWS emulator: EC2 Query API at ${emu.endpoint}, region ${emu.region}; ${opts.backend === 'lab' ? `instances are lab hosts on subnet index ${opts.subnetIndex}` : 'instances are in memory (no machines)'}.`,
          'Default subnets map no public IP: instances are reached through an Elastic IP (5 at most).',
          ...(opts.faults ? [`Faults: ${opts.faults}`] : []),
        ],
        documents: emu.documents(opts.providerName),
        close: () => emu.close(),
      };
    }),
  );
}
