/**
 * The platform's SSH key pair and host key fingerprints.
 *
 * Keys are ed25519. The private key is in OpenSSH format (`-----BEGIN OPENSSH PRIVATE
 * KEY-----`), the public key is one authorized_keys line (`ssh-ed25519 AAAA... formwork`).
 * Fingerprints are in OpenSSH form: `SHA256:` + base64 of the SHA-256 of the key blob,
 * without `=` padding (what `ssh-keygen -lf` prints).
 *
 * Never log or put a private key into an error.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { FormworkError } from '../core/errors.js';
import { ssh2 } from './ssh2.js';

export interface KeyPair {
  /** OpenSSH-format private key (PEM-like text). Secret. */
  privateKey: string;
  /** One authorized_keys line: `ssh-ed25519 AAAA... <comment>`. */
  publicKey: string;
}

/**
 * Generates an ed25519 key pair, written in OpenSSH's own format (PROTOCOL.key:
 * "openssh-key-v1", unencrypted) by hand: node:crypto makes the key, and loading ssh2 for
 * its writer would cost the server's start-up more than these lines.
 */
export function generateKeyPair(comment = 'formwork'): KeyPair {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const str = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const blob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  const check = randomBytes(4).readUInt32BE();
  let section = Buffer.concat([u32(check), u32(check), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(blob), str(section)]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
  };
}

/** The platform key pair; same as generateKeyPair('formwork'). */
export function generatePlatformKeyPair(): KeyPair {
  return generateKeyPair('formwork');
}

/** The authorized_keys line for a private key (OpenSSH or PEM). Throws VALIDATION if it cannot be parsed. */
export function publicKeyFromPrivate(privateKey: string | Buffer, comment = 'formwork'): string {
  const parsed = parsePrivate(privateKey);
  const blob = parsed.getPublicSSH();
  return `${parsed.type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/**
 * OpenSSH fingerprint (`SHA256:...`) of a public key given as the raw key blob (what an SSH
 * server sends during key exchange) or as an authorized_keys / known_hosts style line.
 */
export function fingerprint(key: Buffer | string): string {
  let blob: Buffer;
  if (Buffer.isBuffer(key)) {
    blob = key;
  } else {
    const fields = key.trim().split(/\s+/);
    // Allow "type base64 [comment]" as well as a known_hosts line "host type base64".
    const b64 = fields.find((f, i) => i > 0 && /^AAAA[A-Za-z0-9+/]+={0,3}$/.test(f));
    if (!b64) throw new FormworkError('VALIDATION', 'not an OpenSSH public key line', { path: 'publicKey' });
    blob = Buffer.from(b64, 'base64');
  }
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Normalizes a fingerprint for comparison (accepts with or without `SHA256:` and padding). */
export function normalizeFingerprint(fp: string): string {
  const s = fp.trim().replace(/=+$/, '');
  return s.startsWith('SHA256:') ? s : `SHA256:${s}`;
}

export function fingerprintsEqual(a: string, b: string): boolean {
  return normalizeFingerprint(a) === normalizeFingerprint(b);
}

interface ParsedKeyLike {
  type: string;
  getPublicSSH(): Buffer;
  getPrivatePEM(): string | null;
}

function parsePrivate(privateKey: string | Buffer): ParsedKeyLike {
  const parsed = ssh2().utils.parseKey(privateKey) as unknown;
  const key = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKeyLike | Error | undefined;
  if (!key || key instanceof Error || key.getPrivatePEM() === null) {
    // Deliberately no key material in the error.
    throw new FormworkError('VALIDATION', 'the private key cannot be parsed (expected an OpenSSH or PEM private key)', { path: 'privateKey' });
  }
  return key;
}

/** Throws VALIDATION when the private key cannot be parsed. */
export function assertPrivateKey(privateKey: string | Buffer): void {
  parsePrivate(privateKey);
}
