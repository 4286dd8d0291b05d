/**
 * How the engine reaches a node over SSH: its address (`controlAddress`: public, then admin,
 * then private), port (`inventory.sshPort`, default 22), login user (`loginUser`, default root),
 * recorded host key, and the platform key.
 *
 * The platform key lives in the store (`store.platformKeys`, sealed), so that every worker on
 * one database logs in with the same key; `syncPlatformKey` (at a worker's start) writes it
 * to `<dataDir>/ssh/id_ed25519`, where the executors read it (ansible needs a file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { controlAddress } from '../../core/addresses.js';
import { FormworkError } from '../../core/errors.js';
import type { StoredObject } from '../../core/kinds.js';
import { fingerprint, generatePlatformKeyPair, publicKeyFromPrivate } from '../../ssh/keys.js';
import type { Store } from '../../store/store.js';
import type { SshTarget } from '../../ssh/connection.js';

export interface PlatformKey {
  privateKey: string;
  privateKeyPath: string;
  publicKey: string;
}

/** The name of the SSH key in `store.platformKeys`. */
export const PLATFORM_SSH_KEY = 'ssh';

/** The public half of the store's platform key and its SHA256 fingerprint; undefined before a worker made one. */
export async function platformPublicKey(store: Store): Promise<{ publicKey: string; fingerprint: string } | undefined> {
  const publicKey = await store.platformKeys.publicKey(PLATFORM_SSH_KEY);
  return publicKey ? { publicKey, fingerprint: fingerprint(publicKey) } : undefined;
}

/**
 * Makes the store's platform key this data dir's: stores one first when the store has none
 * (the data dir's existing key, so that an install's nodes stay reachable, else a new one),
 * then writes the stored key to `<dataDir>/ssh/id_ed25519`. A data dir key that differs from
 * the stored one (a worker that ran alone before) is kept beside it as `id_ed25519.replaced`.
 */
export async function syncPlatformKey(store: Store, dataDir: string, log?: (message: string) => void): Promise<PlatformKey> {
  const dir = path.join(dataDir, 'ssh');
  const privateKeyPath = path.join(dir, 'id_ed25519');
  const local = fs.existsSync(privateKeyPath) ? fs.readFileSync(privateKeyPath, 'utf8') : undefined;
  const stored = await store.platformKeys.ensure(PLATFORM_SSH_KEY, () => {
    if (local === undefined) return generatePlatformKeyPair();
    const pubPath = `${privateKeyPath}.pub`;
    const pub = fs.existsSync(pubPath) ? fs.readFileSync(pubPath, 'utf8').trim() : '';
    return { privateKey: local, publicKey: pub || publicKeyFromPrivate(local) };
  });
  if (local !== stored.privateKey) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (local !== undefined) {
      fs.renameSync(privateKeyPath, `${privateKeyPath}.replaced`);
      log?.(`the platform SSH key in ${privateKeyPath} differs from the store's: it was moved to ${privateKeyPath}.replaced and the store's key written in its place (nodes that trust only the old key need the new public key)`);
    }
    const tmp = `${privateKeyPath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, stored.privateKey, { mode: 0o600 });
    fs.renameSync(tmp, privateKeyPath);
  }
  fs.writeFileSync(`${privateKeyPath}.pub`, stored.publicKey + '\n', { mode: 0o644 });
  return { privateKey: stored.privateKey, privateKeyPath, publicKey: stored.publicKey };
}

/** Reads the data dir's platform key (written by `syncPlatformKey`), creating it (0600) when a process runs without a store. */
export function ensurePlatformKey(dataDir: string): PlatformKey {
  const dir = path.join(dataDir, 'ssh');
  const privateKeyPath = path.join(dir, 'id_ed25519');
  if (!fs.existsSync(privateKeyPath)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const kp = generatePlatformKeyPair();
    const tmp = `${privateKeyPath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, kp.privateKey, { mode: 0o600 });
    fs.writeFileSync(`${privateKeyPath}.pub`, kp.publicKey + '\n', { mode: 0o644 });
    try {
      fs.linkSync(tmp, privateKeyPath); // another process may have won the race: keep its key
    } catch {
      /* exists */
    }
    fs.rmSync(tmp, { force: true });
  }
  const privateKey = fs.readFileSync(privateKeyPath, 'utf8');
  const pubPath = `${privateKeyPath}.pub`;
  const publicKey = fs.existsSync(pubPath) ? fs.readFileSync(pubPath, 'utf8').trim() : '';
  return { privateKey, privateKeyPath, publicKey };
}

export function nodeAddress(node: StoredObject): string {
  const address = controlAddress(node.addresses);
  if (address) return address;
  throw new FormworkError('SSH_UNREACHABLE', `node ${node.name} has no public, admin or private address to connect to`, { node: node.name }, { retryable: false });
}

export function nodePort(node: StoredObject): number {
  const inv = (node.inventory ?? {}) as Record<string, unknown>;
  const p = Number(inv.sshPort ?? 22);
  return Number.isInteger(p) && p > 0 && p < 65536 ? p : 22;
}

/**
 * Which machine a node is now, for the SSH pool (SshTarget.machine): its id and its
 * machine's native id, so a replaced machine or another node on a reused address never
 * shares a connection with it.
 *
 * @example
 *   machineIdentity(node); // 'nd_01…/i-0abc'
 */
export function machineIdentity(node: StoredObject): string {
  return `${node.id}/${typeof node.nativeId === 'string' ? node.nativeId : ''}`;
}

export function sshTarget(node: StoredObject, key: PlatformKey): SshTarget {
  return {
    machine: machineIdentity(node),
    host: nodeAddress(node),
    port: nodePort(node),
    username: typeof node.loginUser === 'string' && node.loginUser ? node.loginUser : 'root',
    privateKey: key.privateKey,
    knownHostKey: typeof node.hostKey === 'string' && node.hostKey ? node.hostKey : undefined,
    connectTimeoutMs: 15_000,
  };
}
