/**
 * The login users to try on a new machine, most likely first, and why: the same distro has
 * different users on different clouds (Debian is `admin` on AWS's images, `debian` on
 * generic cloud images). In order of trust: the provider's `settings.loginUser`; the image's
 * own `os_admin_user` property; `settings.loginUsers` (OS family → user); the table below for
 * the provider's type (../shared/notes/cloud-normalization.md), else the cloud-init defaults;
 * then a bounded list to try. The yardstick's `node-ready` tries them in this order and
 * records the one that worked.
 *
 * @example
 *   chooseLoginUsers({ providerType: 'aws', image: { nativeId: 'ami-1', name: 'debian-12', osFamily: 'debian', properties: {} } });
 *   // { users: ['admin', 'root', 'debian', …], reason: 'the aws table for debian' }
 */
import type { CatalogImage } from './types.js';

/** Tried, in order, when nothing names a user: bounded, so a wrong guess costs a few seconds, not minutes. */
export const FALLBACK_LOGIN_USERS: readonly string[] = ['root', 'admin', 'debian', 'ubuntu', 'ec2-user', 'cloud-user', 'fedora', 'core'];

/** Generic cloud images (cloud-init's default user per distro): OpenStack and any type not listed below. */
const CLOUD_INIT_DEFAULTS: Readonly<Record<string, string>> = {
  ubuntu: 'ubuntu', debian: 'debian', amazon: 'ec2-user', rhel: 'cloud-user', centos: 'cloud-user', fedora: 'fedora',
  'fedora-coreos': 'core', flatcar: 'core', rocky: 'rocky', almalinux: 'almalinux', freebsd: 'freebsd', windows: 'Administrator',
};

/**
 * Per provider type, the users of its official images where they differ from cloud-init's.
 * A `family-major` key (`centos-8`) wins over the family's; `*` applies to every family
 * (Equinix Metal logs in as root).
 */
export const LOGIN_USER_TABLES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  aws: { ...CLOUD_INIT_DEFAULTS, debian: 'admin', rhel: 'ec2-user', centos: 'ec2-user', 'centos-7': 'centos', 'centos-8': 'centos', almalinux: 'ec2-user', freebsd: 'ec2-user' },
  equinix: { '*': 'root' },
  // GCE's guest agent makes the user named in the ssh-keys metadata: the driver names this one.
  gce: { '*': 'formwork' },
};

/** What the login users are chosen from. @example { providerType: 'openstack', osFamily: 'debian', settings: { loginUsers: { debian: 'ops' } } } */
export interface LoginUserInput {
  providerType: string;
  image?: CatalogImage;
  /** The requested OS family when no image was listed (`debian` of `debian-12`). */
  osFamily?: string;
  osVersion?: string;
  /** The provider's settings: `loginUser` (one user, trusted) and `loginUsers` (family → user). */
  settings?: Record<string, unknown>;
}

/** The users to try and why the first is first. @example { users: ['admin', 'root', …], reason: 'the aws table for debian' } */
export interface LoginUserChoice {
  users: string[];
  /** Why the first user is first. */
  reason: string;
}

/** The users to try, most likely first (deduplicated; the bounded fallback list last). */
export function chooseLoginUsers(input: LoginUserInput): LoginUserChoice {
  const s = input.settings ?? {};
  const family = (input.image?.properties.os_distro ?? input.image?.osFamily ?? input.osFamily)?.toLowerCase();
  const version = input.image?.properties.os_version ?? input.image?.osVersion ?? input.osVersion;
  const ranked: Array<[string | undefined, string]> = [
    [typeof s.loginUser === 'string' ? s.loginUser : undefined, 'settings.loginUser'],
    [input.image?.properties.os_admin_user, `image property os_admin_user of ${input.image?.nativeId}`],
    [family ? (s.loginUsers as Record<string, string> | undefined)?.[family] : undefined, `settings.loginUsers.${family}`],
    [family ? tableUser(input.providerType, family, version) : undefined, `the ${input.providerType in LOGIN_USER_TABLES ? input.providerType : 'cloud-init defaults'} table for ${family}`],
  ];
  const first = ranked.find(([u]) => !!u);
  const users = [...new Set([...ranked.map(([u]) => u).filter((u): u is string => !!u), ...FALLBACK_LOGIN_USERS])];
  return { users, reason: first ? first[1] : `nothing names a user: trying ${FALLBACK_LOGIN_USERS.length} common ones` };
}

function tableUser(providerType: string, family: string, version: string | undefined): string | undefined {
  const table = LOGIN_USER_TABLES[providerType];
  const major = version ? `${family}-${Number.parseInt(version, 10)}` : undefined;
  return table?.['*'] ?? (major ? table?.[major] : undefined) ?? table?.[family] ?? CLOUD_INIT_DEFAULTS[family];
}
