/**
 * Where a lab provider keeps things and what it names them: paths under the data dir, the
 * provider's two /24s inside 198.18.0.0/15, and kernel object names (bridges, veths, netns,
 * nspawn machine names) that are unique per (data dir, provider name) and fit 15 characters.
 *
 * @example
 *   const c = labConfig({ dataDir: '/d', providerName: 'lab', settings: { subnetIndex: 7 } });
 *   c.publicGateway;   // '198.18.14.1'
 *   c.publicBridge;    // 'fwlab1a2pub'
 *   hostAddresses(c, 11); // { public: '198.18.14.11', private: '198.18.15.11' }
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { FormworkError } from '../../core/errors.js';
import { baseDirFor } from './base.js';

export const FIRST_HOST_OCTET = 11;
export const LAST_HOST_OCTET = 254;
export const MAX_SUBNET_INDEX = 255;

export interface LabConfig {
  dataDir: string;
  providerName: string;
  /** 6 hex chars from sha1(dataDir + providerName): keeps kernel object names apart. */
  key: string;
  providerDir: string;
  hostsDir: string;
  machinesDir: string;
  proxyDir: string;
  baseDir: string;
  /** Whether baseDir came from settings (then it is not built by the driver unless missing). */
  baseDirFromSettings: boolean;
  mirror?: string;
  subnetIndex: number;
  /** First three octets of each /24, e.g. '198.18.14'. */
  publicPrefix: string;
  privatePrefix: string;
  publicGateway: string;
  publicCidr: string;
  privateCidr: string;
  publicBridge: string;
  privateBridge: string;
  bootTimeoutMs: number;
  stopTimeoutMs: number;
}

export interface LabConfigInput {
  dataDir: string;
  providerName: string;
  settings: Record<string, unknown>;
}

const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** A host name: one DNS label, short enough that `fw-KEY-NAME` is a valid machine name. */
const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$/;

export function validateHostName(name: string): void {
  if (!HOST_NAME.test(name)) {
    throw new FormworkError('VALIDATION', `lab host name "${name}" must be a DNS label: lowercase letters, digits and '-', 1 to 50 characters`, { name });
  }
}

function octets(n: number): string {
  // 198.18.0.0/15 holds 512 /24s: 198.18.0-255 and 198.19.0-255.
  return n < 256 ? `198.18.${n}` : `198.19.${n - 256}`;
}

function intSetting(settings: Record<string, unknown>, key: string, def: number, min: number, max: number): number {
  const v = settings[key];
  if (v === undefined || v === null || v === '') return def;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new FormworkError('VALIDATION', `lab setting ${key} must be an integer from ${min} to ${max}`, { setting: key, value: v });
  }
  return n;
}

export function labConfig(ctx: LabConfigInput): LabConfig {
  if (!PROVIDER_NAME.test(ctx.providerName)) {
    throw new FormworkError('VALIDATION', `lab provider name "${ctx.providerName}" must be letters, digits, '.', '_' or '-'`, { field: 'name', providerName: ctx.providerName });
  }
  const dataDir = resolve(ctx.dataDir);
  const s = ctx.settings ?? {};
  const subnetIndex = intSetting(s, 'subnetIndex', 0, 0, MAX_SUBNET_INDEX);
  const key = createHash('sha1').update(`${dataDir}\0${ctx.providerName}`).digest('hex').slice(0, 6);
  const slug = ctx.providerName.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 6);
  const providerDir = join(dataDir, 'providers', ctx.providerName);
  const publicPrefix = octets(2 * subnetIndex);
  const privatePrefix = octets(2 * subnetIndex + 1);
  const baseSetting = typeof s.baseDir === 'string' && s.baseDir ? resolve(s.baseDir) : undefined;
  return {
    dataDir,
    providerName: ctx.providerName,
    key,
    providerDir,
    hostsDir: join(providerDir, 'hosts'),
    machinesDir: join(providerDir, 'machines'),
    proxyDir: join(providerDir, 'apt-cacher-ng'),
    baseDir: baseSetting ?? baseDirFor(dataDir),
    baseDirFromSettings: !!baseSetting,
    mirror: typeof s.mirror === 'string' && s.mirror ? s.mirror : undefined,
    subnetIndex,
    publicPrefix,
    privatePrefix,
    publicGateway: `${publicPrefix}.1`,
    publicCidr: `${publicPrefix}.0/24`,
    privateCidr: `${privatePrefix}.0/24`,
    // fw + up to 6 of the name + 3 of the key + pub/prv: at most 14 characters.
    publicBridge: `fw${slug}${key.slice(0, 3)}pub`,
    privateBridge: `fw${slug}${key.slice(0, 3)}prv`,
    bootTimeoutMs: intSetting(s, 'bootTimeoutMs', 90_000, 100, 3_600_000),
    stopTimeoutMs: intSetting(s, 'stopTimeoutMs', 15_000, 1_000, 600_000),
  };
}

export interface HostNames {
  name: string;
  index: number;
  machine: string;
  netns: string;
  /** Host-side ends of the veth pairs (eth0 and eth1 inside). */
  vethPublic: string;
  vethPrivate: string;
  publicAddress: string;
  privateAddress: string;
  dir: string;
  root: string;
  upper: string;
  work: string;
  stateFile: string;
}

export function hostNames(c: LabConfig, name: string, index: number): HostNames {
  const dir = join(c.machinesDir, name);
  return {
    name,
    index,
    machine: `fw-${c.key}-${name}`,
    netns: `fw-${c.key}-${name}`,
    // fw + 6 key + up to 3 index + p/q: at most 12 characters.
    vethPublic: `fw${c.key}${index}p`,
    vethPrivate: `fw${c.key}${index}q`,
    publicAddress: `${c.publicPrefix}.${index}`,
    privateAddress: `${c.privatePrefix}.${index}`,
    dir,
    root: join(dir, 'root'),
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    stateFile: join(c.hostsDir, `${name}.json`),
  };
}
