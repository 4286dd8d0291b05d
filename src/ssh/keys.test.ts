import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormworkError } from '../core/errors.js';
import {
  assertPrivateKey,
  fingerprint,
  fingerprintsEqual,
  generateKeyPair,
  generatePlatformKeyPair,
  normalizeFingerprint,
  publicKeyFromPrivate,
} from './keys.js';

describe('keys', () => {
  it('generates an ed25519 pair: OpenSSH private key, "ssh-ed25519 AAAA... formwork" public line', () => {
    const kp = generatePlatformKeyPair();
    expect(kp.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+-----END OPENSSH PRIVATE KEY-----\n?$/);
    expect(kp.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+=* formwork$/);
    expect(publicKeyFromPrivate(kp.privateKey)).toBe(kp.publicKey);
    expect(generatePlatformKeyPair().publicKey).not.toBe(kp.publicKey);
  });

  it('writes a private key OpenSSH itself reads: ssh-keygen -y derives the same public key', () => {
    const kp = generateKeyPair('root@host-1');
    const dir = mkdtempSync(join(tmpdir(), 'fw-keys-'));
    try {
      writeFileSync(join(dir, 'k'), kp.privateKey, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'k')], { encoding: 'utf8' }).trim();
      expect(derived).toBe(kp.publicKey);
      expect(kp.publicKey).toMatch(/ root@host-1$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('computes the same fingerprint as ssh-keygen -lf, from a line or from the raw blob', () => {
    const kp = generatePlatformKeyPair();
    const dir = mkdtempSync(join(tmpdir(), 'fw-keys-'));
    try {
      writeFileSync(join(dir, 'k.pub'), `${kp.publicKey}\n`);
      const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')], { encoding: 'utf8' });
      const expected = out.split(/\s+/)[1];
      expect(fingerprint(kp.publicKey)).toBe(expected);
      expect(fingerprint(Buffer.from(kp.publicKey.split(' ')[1], 'base64'))).toBe(expected);
      expect(fingerprint(`host.example ${kp.publicKey}`)).toBe(expected); // known_hosts style
      expect(expected).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compares fingerprints with or without prefix and padding', () => {
    expect(normalizeFingerprint('abc=')).toBe('SHA256:abc');
    expect(fingerprintsEqual('SHA256:abc', 'abc=')).toBe(true);
    expect(fingerprintsEqual('SHA256:abc', 'SHA256:abd')).toBe(false);
  });

  it('rejects unparseable keys with VALIDATION and without echoing the input', () => {
    const secret = '-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETGARBAGE\n-----END OPENSSH PRIVATE KEY-----\n';
    let err: unknown;
    try {
      assertPrivateKey(secret);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormworkError);
    expect((err as FormworkError).code).toBe('VALIDATION');
    expect(JSON.stringify((err as FormworkError).toJSON()) + String(err)).not.toContain('TOPSECRET');
    expect(() => fingerprint('not a key')).toThrow(FormworkError);
  });
});
