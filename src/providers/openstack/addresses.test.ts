import { describe, expect, it } from 'vitest';
import { classifyAddresses, type AddressEvidence } from './addresses.js';
import type { NeutronNetwork, NeutronPort } from './client/neutron.js';
import { chooseBootNetwork, chooseExternalNetwork, type Topology } from './networks.js';

const net = (id: string, name: string, external = false): NeutronNetwork => ({ id, name, status: 'ACTIVE', subnets: [], 'router:external': external });
const portOn = (id: string, networkId: string, subnetId: string, ip: string, deviceId = 'srv', owner = 'compute:nova'): NeutronPort => ({ id, network_id: networkId, device_id: deviceId, device_owner: owner, status: 'ACTIVE', fixed_ips: [{ subnet_id: subnetId, ip_address: ip }] });
const topo: Topology = {
  networks: [net('ext', 'public', true), net('priv', 'private'), net('flat', 'private-but-routed'), net('iso', 'isolated'), net('ext2', 'other-ext', true)],
  subnets: [
    { id: 's-priv', name: 'private-subnet', network_id: 'priv', cidr: '10.0.0.0/24', ip_version: 4, gateway_ip: '10.0.0.1' },
    { id: 's-flat', name: 'flat-subnet', network_id: 'flat', cidr: '192.168.5.0/24', ip_version: 4, gateway_ip: '192.168.5.1' },
    { id: 's-iso', name: 'iso-subnet', network_id: 'iso', cidr: '10.9.0.0/24', ip_version: 4, gateway_ip: null },
  ],
  routers: [{ id: 'r1', name: 'router1', external_gateway_info: { network_id: 'ext' } }],
};
const interfacePorts = [portOn('rp', 'priv', 's-priv', '10.0.0.1', 'r1', 'network:router_interface')];
const ev = (over: Partial<AddressEvidence> = {}): AddressEvidence => ({
  topo,
  ports: [portOn('p1', 'priv', 's-priv', '10.0.0.5'), portOn('p2', 'flat', 's-flat', '192.168.5.7'), portOn('p3', 'iso', 's-iso', '10.9.0.3')],
  interfacePorts,
  floatingIps: [],
  config: { networks: [{ name: 'private-but-routed', routes_externally: true }] },
  ...over,
});

describe('OpenStack address classification, in its order of trust', () => {
  it('trusts evidence, not names: floating, router, no gateway, then the profile flags', () => {
    const server = {
      addresses: {
        private: [{ addr: '10.0.0.5', version: 4, 'OS-EXT-IPS:type': 'fixed' }, { addr: '192.168.77.9', version: 4, 'OS-EXT-IPS:type': 'floating' }],
        'private-but-routed': [{ addr: '192.168.5.7', version: 4, 'OS-EXT-IPS:type': 'fixed' }],
        isolated: [{ addr: '10.9.0.3', version: 4, 'OS-EXT-IPS:type': 'fixed' }],
      },
    };
    const byAddr = Object.fromEntries(classifyAddresses(server, ev()).map((a) => [a.address, `${a.role}: ${a.reason}`]));
    expect(byAddr['192.168.77.9']).toBe("public: Nova's OS-EXT-IPS:type is floating (network label private)");
    expect(byAddr['10.0.0.5']).toMatch(/^private: subnet private-subnet \(s-priv\): router router1 connects it to external network public/);
    expect(byAddr['192.168.5.7']).toBe('public: the vendor profile (or clouds.yaml) says network private-but-routed routes_externally');
    expect(byAddr['10.9.0.3']).toBe('private: subnet iso-subnet has no gateway_ip: not routed');
  });

  it('adds an attached floating IP Nova does not show yet, and calls an address on a router:external network public', () => {
    const fip = { id: 'f1', floating_ip_address: '198.18.0.20', floating_network_id: 'ext', port_id: 'p1', fixed_ip_address: '10.0.0.5', status: 'DOWN' };
    const out = classifyAddresses({ addresses: { public: [{ addr: '198.18.0.33', version: 4 }] } }, ev({ floatingIps: [fip], ports: [portOn('p9', 'ext', 's-ext', '198.18.0.33')] }));
    expect(out.map((a) => [a.address, a.role, a.reason])).toEqual([
      ['198.18.0.33', 'public', 'on network public, which is router:external'],
      ['198.18.0.20', 'public', 'floating IP f1 on external network public, attached to port p1'],
      // Its only fixed address is public: its peers reach it there too (a floating IP never is private).
      ['198.18.0.33', 'private', "the server's fixed address on public: no other, so its peers reach it there"],
    ]);
  });
});

describe('OpenStack network choices', () => {
  it('boots on the only non-external network, else refuses listing them', () => {
    const one = { ...topo, networks: [net('ext', 'public', true), net('priv', 'private')] };
    expect(chooseBootNetwork(one, { networks: [] }, {}).reason).toBe('the only network that is not router:external among the 2 this project sees');
    expect(() => chooseBootNetwork(topo, { networks: [] }, {})).toThrow(/sees 3 networks to boot on: private \(priv\), private-but-routed \(flat\), isolated \(iso\); name one in settings.network/);
    expect(chooseBootNetwork(topo, { networks: [{ name: 'isolated', default_interface: true }] }, {}).network.id).toBe('iso');
  });

  it('takes the external network a router reaches among several, the setting first', () => {
    expect(chooseExternalNetwork(topo, { networks: [] }, {}, { subnetId: 's-priv', interfacePorts }).network.id).toBe('ext');
    expect(chooseExternalNetwork(topo, { networks: [] }, { externalNetwork: 'other-ext' }, { subnetId: 's-priv', interfacePorts }).reason).toBe('settings.externalNetwork "other-ext"');
    expect(() => chooseExternalNetwork(topo, { networks: [] }, {}, { subnetId: 's-iso', interfacePorts })).toThrow(/several external networks .*name one in settings.externalNetwork/);
  });
});
