import { randomBytes } from 'node:crypto';

/**
 * Text ids that sort by creation time and compare the same on SQLite and PostgreSQL
 * (lower-case Crockford base32, fixed width, so byte order is time order).
 *
 * @example
 *   newId('nd'); // 'nd_01jq3v5k7c8m2x4z6b0n9p1r3t'
 */

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
let lastTime = 0;
let counter = 0;

function base32(value: bigint, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

export function newId(prefix: string): string {
  const now = Date.now();
  // Within one millisecond a counter keeps ids of this process in creation order.
  counter = now === lastTime ? counter + 1 : 0;
  lastTime = now;
  const time = base32(BigInt(now), 10);
  const seq = base32(BigInt(counter), 3);
  const rand = base32(BigInt('0x' + randomBytes(8).toString('hex')), 13);
  return `${prefix}_${time}${seq}${rand}`;
}

export const ID_PREFIX: Record<string, string> = {
  providers: 'pv', nodes: 'nd', workloads: 'wl', roles: 'rl', deployments: 'dp',
  noderoles: 'nr', runs: 'rn', users: 'us', secrets: 'sc', tokens: 'tk',
};
