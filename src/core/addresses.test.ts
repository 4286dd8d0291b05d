import { describe, expect, it } from 'vitest';
import { controlAddress, type NodeAddress } from './addresses.js';

const a = (address: string, role: NodeAddress['role']): NodeAddress => ({ address, family: 4, role });

describe('controlAddress', () => {
  it('prefers public, then admin, then private, whatever the order given', () => {
    const all = [a('10.0.0.5', 'private'), a('192.0.2.9', 'admin'), a('198.18.0.11', 'public')];
    expect(controlAddress(all)).toBe('198.18.0.11');
    // Metal: an admin (provisioning) network and a private one, no public: admin wins.
    expect(controlAddress([a('10.0.0.5', 'private'), a('192.0.2.9', 'admin')])).toBe('192.0.2.9');
    expect(controlAddress([a('10.0.0.5', 'private')])).toBe('10.0.0.5');
  });
  it('never picks a BMC address, and has none for nothing', () => {
    expect(controlAddress([a('192.0.2.200', 'bmc')])).toBeUndefined();
    expect(controlAddress(undefined)).toBeUndefined();
    expect(controlAddress('198.18.0.1')).toBeUndefined();
  });
});
