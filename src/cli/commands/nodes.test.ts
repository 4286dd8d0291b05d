import { describe, expect, it } from 'vitest';
import { renderNode } from './nodes.js';

describe('describe node', () => {
  it('shows each address with the reason for its role, and each decision with its reason', () => {
    const out = renderNode({
      id: 'n1', name: 'web-1', version: 3, labels: {}, createdAt: '', updatedAt: '',
      addresses: [
        { address: '192.0.2.7', family: 4, role: 'public', network: 'ext-net', reason: 'floating address on a router:external network; TCP/22 answered from the control plane' },
        { address: '10.0.0.7', family: 4, role: 'private' },
      ],
      decisions: [
        { subject: 'size', chosen: 'm1.small', reason: 'the smallest of 3 sizes meeting small' },
        { subject: 'login-user', chosen: 'debian', reason: 'logged in with the platform key at the first try' },
      ],
    });
    expect(out).toContain(
      [
        'Addresses:',
        '  192.0.2.7  public  (IPv4, ext-net): floating address on a router:external network; TCP/22 answered from the control plane',
        '  10.0.0.7   private (IPv4): no reason recorded',
      ].join('\n'),
    );
    expect(out).toContain(['Decisions:', '  size: m1.small — the smallest of 3 sizes meeting small', '  login-user: debian — logged in with the platform key at the first try'].join('\n'));
  });
});
