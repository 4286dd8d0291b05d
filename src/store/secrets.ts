import fs from 'node:fs';
import path from 'node:path';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { FormworkError } from '../core/errors.js';
import type { StoredObject } from '../core/kinds.js';
import type { ObjectRepository, WriteOptions } from './repository.js';

/**
 * Secrets encrypted at rest with AES-256-GCM. The key comes from FORMWORK_SECRET_KEY
 * (base64 of 32 bytes; give every process sharing a PostgreSQL database the same one)
 * or from `<dataDir>/secret.key`, created on first use with mode 0600.
 * The value never leaves through the API: objects carry only the names of their keys.
 *
 * @example
 *   await secrets.put('aws-prod', { accessKeyId: 'AKIA…', secretAccessKey: '…' });
 *   (await secrets.reveal('aws-prod')).secretAccessKey;
 */

export type SecretData = Record<string, string>;

export function loadSecretKey(dataDir: string, fromEnv = process.env.FORMWORK_SECRET_KEY): Buffer {
  if (fromEnv) {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) {
      throw new FormworkError('VALIDATION', 'FORMWORK_SECRET_KEY must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)');
    }
    return key;
  }
  const file = path.join(dataDir, 'secret.key');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new FormworkError('INTERNAL', `${file} does not hold a 32-byte base64 key`);
  return key;
}

/**
 * `v1:` base64(iv | tag | ciphertext). With `owner`, `v2:` and the owner as additional
 * authenticated data: the value then opens only for that owner, so a sealed value copied
 * into another object's attribs (where its readers would differ) does not open there.
 */
export function encrypt(key: Buffer, plaintext: string, owner?: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (owner !== undefined) cipher.setAAD(Buffer.from(owner, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return (owner !== undefined ? 'v2:' : 'v1:') + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
}

/** Whether a string is in the sealed format (`v1:` unbound, `v2:` bound to an owner). */
export function isSealedText(v: unknown): v is string {
  return typeof v === 'string' && /^v[12]:/.test(v);
}

export function decrypt(key: Buffer, sealed: string, owner?: string): string {
  const bound = sealed.startsWith('v2:');
  if (!bound && !sealed.startsWith('v1:')) throw new FormworkError('INTERNAL', 'unknown secret format');
  const raw = Buffer.from(sealed.slice(3), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  if (bound) decipher.setAAD(Buffer.from(owner ?? '', 'utf8'));
  decipher.setAuthTag(raw.subarray(12, 28));
  try {
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    throw new FormworkError(
      'INTERNAL',
      bound
        ? `a secret could not be decrypted for ${owner ?? 'no owner'}: it was sealed for another object, or with another secret key`
        : 'a secret could not be decrypted: the secret key differs from the one it was written with',
    );
  }
}

export function checkSecretData(data: unknown): SecretData {
  if (!data || typeof data !== 'object' || Array.isArray(data) || Object.values(data).some((v) => typeof v !== 'string')) {
    throw new FormworkError('VALIDATION', 'secret data must be an object of string values, e.g. {"token": "…"}', { field: 'data' });
  }
  return data as SecretData;
}

export class SecretStore {
  /** A key of its own, derived from the store's, for hashes that must not be guessable (node-roles' input hashes). */
  readonly hashKey: Buffer;

  constructor(
    private readonly repo: ObjectRepository,
    private readonly key: Buffer,
  ) {
    this.hashKey = createHmac('sha256', key).update('formwork: input hashes').digest();
  }

  async create(input: { name: string; description?: string; labels?: Record<string, string>; data: unknown }, opts: WriteOptions = {}): Promise<StoredObject> {
    const data = checkSecretData(input.data);
    return this.repo.create(
      { name: input.name, description: input.description, labels: input.labels, keys: Object.keys(data).sort() },
      opts,
      { ciphertext: encrypt(this.key, JSON.stringify(data)) },
    );
  }

  /** Changes metadata and, when `data` is given, the value (a new version even if equal: we cannot compare without revealing). */
  async update(idOrName: string, input: { description?: string; labels?: Record<string, string>; data?: unknown }, opts: WriteOptions = {}): Promise<StoredObject> {
    const patch: Record<string, unknown> = {};
    if (input.description !== undefined) patch.description = input.description;
    if (input.labels !== undefined) patch.labels = input.labels;
    let extra: Record<string, unknown> = {};
    if (input.data !== undefined) {
      const data = checkSecretData(input.data);
      patch.keys = Object.keys(data).sort();
      extra = { ciphertext: encrypt(this.key, JSON.stringify(data)) };
    }
    return this.repo.update(idOrName, patch, opts, extra);
  }

  async put(name: string, data: SecretData, opts: WriteOptions = {}): Promise<StoredObject> {
    return (await this.repo.find(name)) ? this.update(name, { data }, opts) : this.create({ name, data }, opts);
  }

  /**
   * Encrypts one value to keep inside another object (e.g. a generated cluster token in a
   * node-role's attribs). With `owner` (src/store/sealing.ts, `sealOwner`) it opens only
   * for that owner.
   */
  seal(plaintext: string, owner?: string): string {
    return encrypt(this.key, plaintext, owner);
  }

  /** The plaintext of a value from `seal`, for the owner it was sealed for. For executors only. */
  unseal(sealed: string, owner?: string): string {
    return decrypt(this.key, sealed, owner);
  }

  /** The decrypted value. For providers and executors only: never return it from the API. */
  async reveal(idOrName: string): Promise<SecretData> {
    const obj = await this.repo.get(idOrName);
    const sealed = (await this.repo.privateColumn(obj.id, 'ciphertext')) as string;
    return JSON.parse(decrypt(this.key, sealed)) as SecretData;
  }
}
