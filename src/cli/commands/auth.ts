import { InvalidArgumentError, type Command } from 'commander';
import { DURATION_HINT } from '../../core/durations.js';
import { USER_ROLES as ROLES, type UserRole } from '../../core/users.js';
import type { CliContext } from '../context.js';
import { durationOption, humanAge, parseOutputFormat, renderTable, toJson, toYaml, type OutputFormat } from '../format.js';

/**
 * `formwork token create|list|revoke` and `formwork whoami`.
 *
 * `token create` prints only the token on stdout (so `T=$(formwork token create ...)`
 * works) and what it is for on stderr; `-o json` prints `{token, info}`.
 * Without `--user`: the user is named after `--role` when one is given (created with
 * that role if new), else it is the caller's own user.
 */

const parseRole = (v: string): UserRole => {
  if (!(ROLES as string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${ROLES.join(', ')}.`);
  return v as UserRole;
};


function status(t: { expiresAt?: string; revokedAt?: string }, now: number): string {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= now) return 'expired';
  return 'active';
}

export function register(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('manage API tokens (admin)');

  token
    .command('create')
    .description('create a token (shown once)')
    .option('--user <user>', 'the user the token acts as')
    .option('--role <role>', `the user's role when the user is new: ${ROLES.join(', ')}`, parseRole)
    .option('--description <text>', 'what the token is for')
    .option('--expires <duration>', `lifetime (${DURATION_HINT}; default: never)`, durationOption)
    .option('-o, --output <format>', 'table (the token only), json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .action(async (opts: { user?: string; role?: UserRole; description?: string; expires?: number; output: OutputFormat }) => {
      const client = ctx.client();
      const user = opts.user ?? opts.role ?? (await client.whoami()).user;
      const created = await client.createToken({
        user,
        ...(opts.role ? { role: opts.role } : {}),
        ...(opts.description ? { description: opts.description } : {}),
        ...(opts.expires ? { expiresInSeconds: opts.expires } : {}),
      });
      if (opts.output === 'json') return ctx.out(toJson(created));
      if (opts.output === 'yaml') return ctx.out(toYaml(created));
      ctx.out(created.token);
      const exp = created.info.expiresAt ? `expires ${created.info.expiresAt}` : 'does not expire';
      ctx.err(`token ${created.info.id} for user ${created.info.user} (${exp}); it is not shown again`);
    });

  token
    .command('list')
    .description('list tokens (never their values)')
    .option('-o, --output <format>', 'table, json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .action(async (opts: { output: OutputFormat }) => {
      const items = await ctx.client().listTokens();
      if (opts.output === 'json') return ctx.out(toJson({ items }));
      if (opts.output === 'yaml') return ctx.out(toYaml(items));
      if (!items.length) return ctx.err('No tokens found.');
      const now = Date.now();
      ctx.out(
        renderTable(
          ['ID', 'USER', 'STATUS', 'EXPIRES', 'LAST USED', 'AGE', 'DESCRIPTION'],
          items.map((t) => [
            t.id,
            t.user,
            status(t, now),
            t.expiresAt ?? '',
            t.lastUsedAt ? `${humanAge(t.lastUsedAt, now)} ago` : '',
            humanAge(t.createdAt, now),
            t.description ?? '',
          ]),
        ),
      );
    });

  token
    .command('revoke')
    .description('revoke tokens by id')
    .argument('<ids...>', 'token ids (tk_...)')
    .action(async (ids: string[]) => {
      const client = ctx.client();
      for (const id of ids) {
        await client.revokeToken(id);
        ctx.out(`token ${id} revoked`);
      }
    });

  program
    .command('whoami')
    .description('show the user and role of the token in use')
    .option('-o, --output <format>', 'table, json or yaml', parseOutputFormat, 'table' as OutputFormat)
    .action(async (opts: { output: OutputFormat }) => {
      const me = await ctx.client().whoami();
      if (opts.output === 'json') return ctx.out(toJson(me));
      if (opts.output === 'yaml') return ctx.out(toYaml(me));
      const r = ctx.resolve();
      ctx.out(`${me.user} (${me.role}) at ${r.endpoint}${r.tokenSource ? `, token from ${r.tokenSource === 'admin.token' ? 'the data dir' : r.tokenSource === 'env' ? 'FORMWORK_TOKEN' : '--token'}` : ''}`);
    });
}
