import type { Executor } from './db.js';
import { decrypt, encrypt } from './secrets.js';

/**
 * The platform's own key pairs (today one: the SSH key every worker logs in to nodes with),
 * kept in the store so that every worker on the database uses the same one. The private
 * half is sealed with the store's secret key, bound to its name; it is revealed to workers
 * only, never through the API.
 *
 * `ensure` is race-safe on both engines: the first insert wins (`on conflict do nothing`),
 * and every caller then reads the row that won, so workers starting together end with one key.
 *
 * @example
 *   const key = await store.platformKeys.ensure('ssh', () => generatePlatformKeyPair());
 */
export interface PlatformKeyPair {
  publicKey: string;
  privateKey: string;
}

const OWNER = (name: string) => `platform-key:${name}`;

export class PlatformKeys {
  constructor(
    private readonly db: Executor,
    private readonly key: Buffer,
  ) {}

  /** The stored pair named `name`, storing `candidate()` first when there is none. */
  async ensure(name: string, candidate: () => PlatformKeyPair): Promise<PlatformKeyPair> {
    const existing = await this.get(name);
    if (existing) return existing;
    const pair = candidate();
    await this.db
      .insertInto('platform_keys')
      .values({ name, public_key: pair.publicKey, ciphertext: encrypt(this.key, pair.privateKey, OWNER(name)), created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const stored = await this.get(name);
    if (!stored) throw new Error(`platform key ${name} vanished right after it was stored`);
    return stored;
  }

  /** The public half alone (safe to show), or undefined when none is stored yet. */
  async publicKey(name: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('platform_keys').select('public_key').where('name', '=', name).executeTakeFirst();
    return row ? (row.public_key as string) : undefined;
  }

  private async get(name: string): Promise<PlatformKeyPair | undefined> {
    const row = await this.db.selectFrom('platform_keys').select(['public_key', 'ciphertext']).where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    return { publicKey: row.public_key as string, privateKey: decrypt(this.key, row.ciphertext as string, OWNER(name)) };
  }
}
