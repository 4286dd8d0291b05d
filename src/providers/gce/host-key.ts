/**
 * The SSH host key of an instance, when the cloud offers it: the guest agent publishes the
 * host's public keys as guest attributes (`getGuestAttributes?queryPath=hostkeys/`, when the
 * instance has `enable-guest-attributes`), else the serial port output may print them between
 * `-----BEGIN SSH HOST KEY KEYS-----` lines. Neither there: none, and the yardstick trusts on
 * first use, marked unverified.
 *
 * @example
 *   await hostKeyOf(api, inst); // 'SHA256:…' or undefined
 */
import { createHash } from 'node:crypto';
import type { GceApi } from './api.js';
import type { GceInstance } from './machines.js';

/**
 * The OpenSSH fingerprint (`SHA256:…`) of a public key line (`ssh-ed25519 AAAA… comment`), or undefined.
 *
 * @example
 *   fingerprint('ssh-ed25519 AAAAC3Nza…'); // 'SHA256:…'
 */
export function fingerprint(line: string): string | undefined {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) return undefined;
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** The instance's host key fingerprint (ed25519 preferred), from guest attributes or the serial console; undefined when neither has it. */
export async function hostKeyOf(api: GceApi, inst: Pick<GceInstance, 'name' | 'status'>): Promise<string | undefined> {
  if (inst.status !== 'RUNNING') return undefined;
  const base = `zones/${api.zone}/instances/${encodeURIComponent(inst.name)}`;
  const attrs = await api.get<{ queryValue?: { items?: Array<{ namespace?: string; key?: string; value?: string }> } }>(`${base}/getGuestAttributes?queryPath=hostkeys%2F`, 'instances.getGuestAttributes').catch(() => undefined);
  const items = attrs?.queryValue?.items ?? [];
  const keyLines = items.filter((i) => i.value).map((i) => (i.value!.includes(' ') ? i.value! : `${i.key} ${i.value}`));
  const fromAttrs = pick(keyLines);
  if (fromAttrs) return fromAttrs;
  const serial = await api.get<{ contents?: string }>(`${base}/serialPort?port=1`, 'instances.getSerialPortOutput').catch(() => undefined);
  const block = /-----BEGIN SSH HOST KEY KEYS-----([\s\S]*?)-----END SSH HOST KEY KEYS-----/.exec(serial?.contents ?? '')?.[1];
  return block ? pick(block.split(/\r?\n/).filter((l) => /^(ssh|ecdsa)-/.test(l.trim()))) : undefined;
}

function pick(lines: string[]): string | undefined {
  const ed = lines.find((l) => l.trim().startsWith('ssh-ed25519')) ?? lines[0];
  return ed ? fingerprint(ed) : undefined;
}
