import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import * as apply from './apply.js';
import * as lab from './lab.js';
import * as conformance from './conformance.js';
import * as auth from './auth.js';
import * as resources from './resources.js';
import * as server from './server.js';
import * as version from './version.js';
import * as watch from './watch.js';
import * as deployments from './deployments.js';
import * as engine from './engine.js';
import * as nodes from './nodes.js';
import * as providers from './providers.js';
import * as emulate from './emulate/index.js';

/**
 * The CLI's command modules. Each area owns one file `src/cli/commands/<area>.ts` that
 * exports `register(program, ctx)` and adds its commands to `program`; to add an area,
 * write the file and append it to this list (order = order in `formwork --help`).
 *
 * @example
 *   // src/cli/commands/deploy.ts
 *   export function register(program: Command, ctx: CliContext): void {
 *     program.command('commit').argument('<deployment>').action(async (name: string) => {
 *       ctx.out(`${name} committed`);
 *     });
 *   }
 */

export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

export const COMMAND_MODULES: CommandModule[] = [lab, conformance, server, resources, apply, watch, auth, version, deployments, engine, nodes, providers, emulate];
