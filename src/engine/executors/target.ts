/**
 * How the engine reaches a node over SSH: its address (`controlAddress`: public, then admin,
 * then private), port (`inventory.sshPort`, default 22), login user (`loginUser`, default root),
 * recorded host key, and the platform key at `<dataDir>/ssh/id_ed25519` (created when
 * missing).
 */
import fs from 'node:fs';
import path from 'node:path';
import { controlAddress } from '../../core/addresses.js';
import { FormworkError } from '../../core/errors.js';
import type { StoredObject } from '../../core/kinds.js';
import { generatePlatformKeyPair } from '../../ssh/keys.js';
import type { SshTarget } from '../../ssh/client.js';

export interface PlatformKey {
  privateKey: string;
  privateKeyPath: string;
  publicKey: string;
}

/** Reads the platform key, creating it (0600) on first use. */
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

export function sshTarget(node: StoredObject, key: PlatformKey): SshTarget {
  return {
    host: nodeAddress(node),
    port: nodePort(node),
    username: typeof node.loginUser === 'string' && node.loginUser ? node.loginUser : 'root',
    privateKey: key.privateKey,
    knownHostKey: typeof node.hostKey === 'string' && node.hostKey ? node.hostKey : undefined,
    connectTimeoutMs: 15_000,
  };
}
