/**
 * Shell quoting and the wrappers every remote command is sent in. Commands run as
 * `/bin/sh -c` on the node; environment variables travel on stdin (sshd's AcceptEnv usually
 * rejects `setenv` requests, and a command line is visible to every user), and sudo is
 * `sudo -n -E` when the login user is not root.
 */
import { FormworkError } from '../core/errors.js';

/**
 * What the remote wrapper prints on stderr, before the command's own output, followed by
 * the command's process group id.
 *
 * @example
 *   stderrText.includes(PGID_MARKER) // the pgid line has not been taken out yet
 */
export const PGID_MARKER = '__FORMWORK_PGID__=';

/**
 * The whole marker line as printed by `remoteCommand`; group 1 is the process group id.
 *
 * @example
 *   const pgid = Number(PGID_RE.exec(stderrText)?.[1]);
 */
export const PGID_RE = /__FORMWORK_PGID__=(\d+)\r?\n/;

/**
 * POSIX shell single-quoting; safe for any string (quotes, `$`, newlines, backslashes).
 *
 * @example
 *   shellQuote("a'b")  // → 'a'\''b'
 *   shellQuote('abc')  // → abc (nothing to quote)
 */
export function shellQuote(s: string): string {
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Shell text that reads the environment from stdin — a line with a count N, then N lines of
 * `export NAME='value'` — and evaluates it. Values travel on stdin, never on a command line,
 * which `ps`, /proc and sudo's log (`COMMAND=…`) would show: inputs can be secrets. `read`
 * takes stdin a byte at a time, so what follows the block reaches the command untouched.
 */
const ENV_READER =
  'IFS= read -r __fw_n || exit 125; __fw_e=; ' +
  'while [ "$__fw_n" -gt 0 ]; do IFS= read -r __fw_l || exit 125; __fw_e="$__fw_e$__fw_l\n"; __fw_n=$((__fw_n - 1)); done; ' +
  'eval "$__fw_e"; unset __fw_n __fw_e __fw_l; ';

function checkEnv(env: Record<string, string>): Array<[string, string]> {
  const entries = Object.entries(env);
  for (const [k, v] of entries) {
    if (!ENV_NAME_RE.test(k)) {
      throw new FormworkError('VALIDATION', `environment variable name ${JSON.stringify(k)} is not valid`, { path: `env.${k}` });
    }
    if (typeof v !== 'string' || v.includes('\0')) {
      throw new FormworkError('VALIDATION', `environment variable ${k} must be a string without NUL bytes`, { path: `env.${k}` });
    }
  }
  return entries;
}

/**
 * The block ENV_READER reads: what `wrapCommand(…, { env })` expects first on stdin.
 *
 * @example
 *   envBlock({ A: 'x y' })  // → "1\nexport A='x y'\n"
 */
export function envBlock(env: Record<string, string>): string {
  const text = checkEnv(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
  return `${text.split('\n').length - 1}\n${text}`;
}

/**
 * The shell text that runs `command` (via sudo when asked and the user is not root), with
 * the environment given as `envBlock(env)` at the start of its stdin when `env` has any
 * variable. Exported for tests and for callers that build their own wrapper.
 *
 * @example
 *   wrapCommand('id', { username: 'debian', sudo: true })  // → sudo -n -E sh -c '/bin/sh -c id'
 */
export function wrapCommand(command: string, opts: { env?: Record<string, string>; sudo?: boolean; username: string }): string {
  const withEnv = checkEnv(opts.env ?? {}).length > 0;
  const useSudo = opts.sudo === true && opts.username !== 'root';
  const run = `/bin/sh -c ${shellQuote(command)}`;
  // The environment is read inside the sudo'd shell, so that sudo's env_reset cannot drop it.
  const inner = withEnv ? `${ENV_READER}exec ${run}` : run;
  // sudo -n: never prompt; -E: keep the caller's environment where sudoers allows.
  if (useSudo) return `sudo -n -E sh -c ${shellQuote(inner)}`;
  return withEnv ? `/bin/sh -c ${shellQuote(inner)}` : run;
}

/**
 * The full text sent to sshd: print the process group id (the login shell is a session
 * leader, so its pid is the group id) on stderr as a marker, then exec the command.
 *
 * @example
 *   client.exec(remoteCommand('make', { username: 'root', env: {} }), onChannel);
 */
export function remoteCommand(command: string, opts: { env?: Record<string, string>; sudo?: boolean; username: string }): string {
  const wrapper = `printf '${PGID_MARKER}%s\\n' "$$" >&2; exec ${wrapCommand(command, opts)}`;
  return `exec /bin/sh -c ${shellQuote(wrapper)}`;
}

/**
 * A command that kills process group `pgid`: TERM, then KILL if it is still there after
 * about 3 s. Always exits 0.
 *
 * @example
 *   client.exec(killScript(4711, false), onChannel);
 */
export function killScript(pgid: number, useSudo: boolean): string {
  // dash's kill builtin cannot signal a group; fall back to /bin/kill (procps, busybox).
  const script =
    `P=${pgid}; k() { kill -s "$1" -- "-$P" 2>/dev/null || /bin/kill -s "$1" -- "-$P" 2>/dev/null; }; ` +
    `k TERM || exit 0; i=0; while k 0; do i=$((i+1)); if [ "$i" -ge 30 ]; then k KILL; exit 0; fi; sleep 0.1; done; exit 0`;
  return useSudo ? `sudo -n sh -c ${shellQuote(script)}` : `/bin/sh -c ${shellQuote(script)}`;
}
