/**
 * Where clouds.yaml, secure.yaml and clouds-public.yaml are found, as openstacksdk looks:
 * `OS_CLIENT_CONFIG_FILE` (`OS_CLIENT_SECURE_FILE`, `OS_CLIENT_VENDOR_FILE`) first, then the
 * working directory, `~/.config/openstack`, `/etc/openstack`; `.yaml`, `.yml` or `.json`.
 * The first file that exists is the one read (files are not merged with each other), and a
 * file that does not parse is an error naming it, never a crash.
 *
 * @example
 *   const files = await readConfigFiles({ env: process.env, cwd: process.cwd(), home: os.homedir() });
 *   files.clouds?.path; // '/home/me/.config/openstack/clouds.yaml'
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FormworkError } from '../../../core/errors.js';

/** Where to look: the environment, the working directory, the home directory and the system folder. */
export interface ConfigLocations {
  env?: Record<string, string | undefined>;
  cwd?: string;
  home?: string;
  /** Default /etc/openstack. */
  systemDir?: string;
}

/** A config file found and parsed. */
export interface ConfigFile {
  path: string;
  doc: Record<string, unknown>;
}

/** The three files, each when one was found. */
export interface ConfigFiles {
  clouds?: ConfigFile;
  secure?: ConfigFile;
  publicClouds?: ConfigFile;
  /** Every path looked at for clouds.yaml, for the message when a cloud is not found. */
  searched: string[];
}

const EXTENSIONS = ['yaml', 'yml', 'json'];

/**
 * The paths to try for one file, in order (`base` is `clouds`, `secure` or `clouds-public`).
 *
 * @example
 *   candidatePaths('clouds', { env: { OS_CLIENT_CONFIG_FILE: '/tmp/c.yaml' }, cwd: '/w', home: '/h' })[0]; // '/tmp/c.yaml'
 */
export function candidatePaths(base: 'clouds' | 'secure' | 'clouds-public', loc: ConfigLocations): string[] {
  const envName = { clouds: 'OS_CLIENT_CONFIG_FILE', secure: 'OS_CLIENT_SECURE_FILE', 'clouds-public': 'OS_CLIENT_VENDOR_FILE' }[base];
  const dirs = [loc.cwd, loc.home && join(loc.home, '.config', 'openstack'), loc.systemDir ?? '/etc/openstack'].filter((d): d is string => !!d);
  const fromEnv = loc.env?.[envName];
  return [...(fromEnv ? [fromEnv] : []), ...dirs.flatMap((d) => EXTENSIONS.map((ext) => join(d, `${base}.${ext}`)))];
}

async function firstFile(paths: string[]): Promise<ConfigFile | undefined> {
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw new FormworkError('PROVIDER_INVALID', `${path} cannot be read: ${(e as Error).message}`, { file: path });
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new FormworkError('PROVIDER_INVALID', `${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { file: path });
    }
    if (doc === null || doc === undefined) doc = {};
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new FormworkError('PROVIDER_INVALID', `${path} must be a mapping (with a top-level \`clouds:\`)`, { file: path });
    return { path, doc: doc as Record<string, unknown> };
  }
  return undefined;
}

/**
 * Finds and parses clouds.yaml, secure.yaml and clouds-public.yaml.
 *
 * @example
 *   const { clouds, secure } = await readConfigFiles({ env: { OS_CLIENT_CONFIG_FILE: '/tmp/clouds.yaml' } });
 */
export async function readConfigFiles(loc: ConfigLocations): Promise<ConfigFiles> {
  const searched = candidatePaths('clouds', loc);
  return {
    clouds: await firstFile(searched),
    secure: await firstFile(candidatePaths('secure', loc)),
    publicClouds: await firstFile(candidatePaths('clouds-public', loc)),
    searched,
  };
}
