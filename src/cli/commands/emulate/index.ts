import type { Command } from 'commander';
import type { CliContext } from '../../context.js';
import * as aws from './aws.js';
import * as equinix from './equinix.js';
import * as gce from './gce.js';
import * as openstack from './openstack.js';

/**
 * `formwork emulate <cloud>`: a cloud's API in the foreground, for tests and demos, whose
 * instances are real lab hosts (or in memory). One module per cloud, each adding its subcommand.
 *
 * @example
 *   register(program, ctx); // formwork emulate openstack --scenario late-error --backend memory
 */
export function register(program: Command, ctx: CliContext): void {
  const emulate = program.command('emulate').description('run an emulated cloud in the foreground (for tests and demos)');
  for (const cloud of [aws, equinix, gce, openstack]) cloud.register(emulate, ctx);
}
