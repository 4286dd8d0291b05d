/**
 * SSH keys as clouds make them: an emulator that generates a key pair for its user (Nova's
 * keypair create without a public key, EC2's CreateKeyPair) or holds a host key of its own.
 *
 * @example
 *   const { publicKey, privateKey } = generateSshKeypair('Generated-by-Nova');
 */
import { generateKeyPairSync } from 'node:crypto';

/**
 * A fresh Ed25519 key pair: the public half as one authorized_keys line (with `comment`),
 * the private half as PKCS#8 PEM.
 *
 * @example
 *   generateSshKeypair().publicKey; // 'ssh-ed25519 AAAA… Generated-by-Nova'
 */
export function generateSshKeypair(comment = 'Generated-by-Nova'): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  return { publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}
