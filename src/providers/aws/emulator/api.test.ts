import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMULATOR_STATE_PATH, parseFaults } from '../../emulation/faults.js';
import { generateSshKeypair } from '../../emulation/keys.js';
import { MemoryBackend } from '../../emulation/hosts.js';
import { startAwsEmulator, type AwsEmulator } from './index.js';

const FIXTURES = join(import.meta.dirname, '../testing/fixtures/libcloud/ec2');

/** Every element path of an XML document (`Root/a/item/b`), attributes and text left out. */
function paths(xml: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const m of xml.replace(/<\?[^>]*\?>/g, '').matchAll(/<(\/?)([A-Za-z][\w:.-]*)[^>]*?(\/?)>/g)) {
    if (m[1]) stack.pop();
    else {
      stack.push(m[2]);
      out.add(stack.join('/'));
      if (m[3]) stack.pop();
    }
  }
  return out;
}

const rootOf = (xml: string) => /<([A-Za-z]+)[ >]/.exec(xml.replace(/<\?[^>]*\?>/g, ''))![1];
const nsOf = (xml: string) => /xmlns="([^"]+)"/.exec(xml)?.[1];

describe('aws emulator: the EC2 Query API in the recorded shapes', () => {
  let emu: AwsEmulator;
  let backend: MemoryBackend;
  const call = async (params: Record<string, string>, o: { key?: string; region?: string } = {}) => {
    const res = await fetch(emu.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', authorization: `AWS4-HMAC-SHA256 Credential=${o.key ?? emu.credentials.accessKeyId}/20261203/${o.region ?? 'us-east-1'}/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=0f` },
      body: new URLSearchParams({ Version: '2016-11-15', ...params }).toString(),
    });
    return { status: res.status, text: await res.text(), headers: res.headers };
  };
  /** The emulator's answer has the fixture's root, namespace and each of `expected` (checked in the fixture too). */
  const sameShape = (fixture: string, answer: string, expected: string[]) => {
    const recorded = readFileSync(join(FIXTURES, fixture), 'utf8');
    expect(rootOf(answer)).toBe(rootOf(recorded));
    expect(nsOf(answer)).toBe(nsOf(recorded));
    const mine = paths(answer);
    const theirs = paths(recorded);
    for (const p of expected) {
      expect(theirs, `${fixture} has ${p}`).toContain(p);
      expect(mine, `the emulator's answer has ${p}`).toContain(p);
    }
  };

  beforeEach(async () => {
    backend = new MemoryBackend();
    emu = await startAwsEmulator({ backend, bootDelayMs: 0 });
  });
  afterEach(async () => emu.close());

  it('answers the catalog, key pairs, groups, instances and addresses as the fixtures are shaped', async () => {
    sameShape('describe_availability_zones.xml', (await call({ Action: 'DescribeAvailabilityZones' })).text, ['DescribeAvailabilityZonesResponse/requestId', 'DescribeAvailabilityZonesResponse/availabilityZoneInfo/item/zoneName', 'DescribeAvailabilityZonesResponse/availabilityZoneInfo/item/zoneState', 'DescribeAvailabilityZonesResponse/availabilityZoneInfo/item/regionName']);
    sameShape('describe_images.xml', (await call({ Action: 'DescribeImages', 'Owner.1': '136693071363' })).text, ['DescribeImagesResponse/imagesSet/item/imageId', 'DescribeImagesResponse/imagesSet/item/imageOwnerId', 'DescribeImagesResponse/imagesSet/item/name', 'DescribeImagesResponse/imagesSet/item/imageState', 'DescribeImagesResponse/imagesSet/item/blockDeviceMapping/item/ebs/volumeSize', 'DescribeImagesResponse/imagesSet/item/creationDate']);
    sameShape('describe_subnets.xml', (await call({ Action: 'DescribeSubnets' })).text, ['DescribeSubnetsResponse/subnetSet/item/subnetId', 'DescribeSubnetsResponse/subnetSet/item/vpcId', 'DescribeSubnetsResponse/subnetSet/item/availabilityZone', 'DescribeSubnetsResponse/subnetSet/item/defaultForAz', 'DescribeSubnetsResponse/subnetSet/item/mapPublicIpOnLaunch']);
    const key = generateSshKeypair('me').publicKey;
    sameShape('import_key_pair.xml', (await call({ Action: 'ImportKeyPair', KeyName: 'k', PublicKeyMaterial: Buffer.from(key).toString('base64') })).text, ['ImportKeyPairResponse/keyName', 'ImportKeyPairResponse/keyFingerprint']);
    sameShape('describe_key_pairs.xml', (await call({ Action: 'DescribeKeyPairs', 'KeyName.1': 'k' })).text, ['DescribeKeyPairsResponse/keySet/item/keyName', 'DescribeKeyPairsResponse/keySet/item/keyFingerprint']);
    const sg = await call({ Action: 'CreateSecurityGroup', GroupName: 'g', GroupDescription: 'd' });
    sameShape('create_security_group.xml', sg.text, ['CreateSecurityGroupResponse/return', 'CreateSecurityGroupResponse/groupId']);
    const groupId = /<groupId>([^<]+)/.exec(sg.text)![1];
    await call({ Action: 'AuthorizeSecurityGroupIngress', GroupId: groupId, 'IpPermissions.1.IpProtocol': 'tcp', 'IpPermissions.1.FromPort': '22', 'IpPermissions.1.ToPort': '22', 'IpPermissions.1.IpRanges.1.CidrIp': '0.0.0.0/0' });
    sameShape('describe_security_groups.xml', (await call({ Action: 'DescribeSecurityGroups', 'GroupId.1': groupId })).text, ['DescribeSecurityGroupsResponse/securityGroupInfo/item/groupId', 'DescribeSecurityGroupsResponse/securityGroupInfo/item/ipPermissions/item/fromPort', 'DescribeSecurityGroupsResponse/securityGroupInfo/item/ipPermissions/item/ipRanges/item/cidrIp']);
    const run = await call({ Action: 'RunInstances', ImageId: 'ami-064519b8c76274859', InstanceType: 't3.micro', MinCount: '1', MaxCount: '1', KeyName: 'k', 'SecurityGroupId.1': groupId, ClientToken: 'tok-1', 'TagSpecification.1.ResourceType': 'instance', 'TagSpecification.1.Tag.1.Key': 'Name', 'TagSpecification.1.Tag.1.Value': 'web' });
    sameShape('run_instances.xml', run.text, ['RunInstancesResponse/reservationId', 'RunInstancesResponse/ownerId', 'RunInstancesResponse/instancesSet/item/instanceId', 'RunInstancesResponse/instancesSet/item/instanceState/name', 'RunInstancesResponse/instancesSet/item/instanceType', 'RunInstancesResponse/instancesSet/item/placement/availabilityZone', 'RunInstancesResponse/instancesSet/item/keyName']);
    const id = /<instanceId>([^<]+)/.exec(run.text)![1];
    // Unknown to DescribeInstances for its first look or two (EC2's eventual consistency).
    const first = await call({ Action: 'DescribeInstances', 'InstanceId.1': id });
    expect(first.status).toBe(400);
    expect(first.text).toContain('<Code>InvalidInstanceID.NotFound</Code>');
    let described = first;
    for (let i = 0; i < 2 && described.status !== 200; i++) described = await call({ Action: 'DescribeInstances', 'InstanceId.1': id });
    sameShape('describe_instances.xml', described.text, ['DescribeInstancesResponse/reservationSet/item/instancesSet/item/instanceId', 'DescribeInstancesResponse/reservationSet/item/instancesSet/item/privateIpAddress', 'DescribeInstancesResponse/reservationSet/item/instancesSet/item/tagSet/item/key', 'DescribeInstancesResponse/reservationSet/item/instancesSet/item/groupSet/item/groupId', 'DescribeInstancesResponse/reservationSet/item/instancesSet/item/clientToken', 'DescribeInstancesResponse/reservationSet/item/instancesSet/item/subnetId']);
    const eip = await call({ Action: 'AllocateAddress', Domain: 'vpc' });
    sameShape('allocate_vpc_address.xml', eip.text, ['AllocateAddressResponse/publicIp', 'AllocateAddressResponse/domain', 'AllocateAddressResponse/allocationId']);
    const allocationId = /<allocationId>([^<]+)/.exec(eip.text)![1];
    const assoc = await call({ Action: 'AssociateAddress', AllocationId: allocationId, InstanceId: id });
    sameShape('associate_vpc_address.xml', assoc.text, ['AssociateAddressResponse/return', 'AssociateAddressResponse/associationId']);
    sameShape('describe_addresses_multi.xml', (await call({ Action: 'DescribeAddresses' })).text, ['DescribeAddressesResponse/addressesSet/item/publicIp', 'DescribeAddressesResponse/addressesSet/item/instanceId']);
    sameShape('get_console_output.xml', (await call({ Action: 'GetConsoleOutput', InstanceId: id })).text, ['GetConsoleOutputResponse/instanceId', 'GetConsoleOutputResponse/timestamp', 'GetConsoleOutputResponse/output']);
    sameShape('terminate_instances.xml', (await call({ Action: 'TerminateInstances', 'InstanceId.1': id })).text, ['TerminateInstancesResponse/instancesSet/item/instanceId', 'TerminateInstancesResponse/instancesSet/item/previousState/name']);
  });

  it('refuses in the recorded error shape: a token reused with other parameters, an unknown caller or region, and says what it holds', async () => {
    const base = { Action: 'RunInstances', ImageId: 'ami-064519b8c76274859', InstanceType: 't3.micro', MinCount: '1', MaxCount: '1', ClientToken: 'tok-2' };
    expect((await call(base)).status).toBe(200);
    expect((await call(base)).status).toBe(200); // the same token and parameters: the same instance
    expect(emu.resources().filter((r) => r.kind === 'instance')).toHaveLength(1);
    const mismatch = await call({ ...base, InstanceType: 't3.small' });
    expect(mismatch.status).toBe(400);
    const recorded = readFileSync(join(FIXTURES, 'run_instances_idem_mismatch.xml'), 'utf8');
    expect([...paths(mismatch.text)].sort()).toEqual([...paths(recorded)].sort());
    expect(mismatch.text).toContain('<Code>IdempotentParameterMismatch</Code>');
    const stranger = await call({ Action: 'DescribeInstances' }, { key: 'AKIANOTTHEEMULATORS1' });
    expect([stranger.status, /<Code>([^<]+)/.exec(stranger.text)![1]]).toEqual([401, 'AuthFailure']);
    const region = await call({ Action: 'DescribeInstances' }, { region: 'eu-moon-1' });
    expect(region.status).toBe(401);
    expect(region.text).toContain("Credential should be scoped to a valid region, not 'eu-moon-1'");
    expect((await call({ Action: 'LaunchRocket' })).text).toContain('<Code>InvalidAction</Code>');
    const state = (await (await fetch(`${emu.endpoint}${EMULATOR_STATE_PATH}`)).json()) as { resources: { kind: string }[] };
    expect(state.resources.map((r) => r.kind)).toEqual(['instance']);
  });

  it('refuses an Elastic IP for a pending instance (IncorrectInstanceState), and a sixth address (AddressLimitExceeded); instances are private-side hosts with the image\'s user', async () => {
    await emu.close();
    backend = new MemoryBackend();
    emu = await startAwsEmulator({ backend, bootDelayMs: 60_000 });
    const run = await call({ Action: 'RunInstances', ImageId: 'ami-064519b8c76274859', InstanceType: 't3.micro', MinCount: '1', MaxCount: '1' });
    const id = /<instanceId>([^<]+)/.exec(run.text)![1];
    const [host] = backend.hosts.values();
    expect(host.request).toMatchObject({ side: 'private', onlyLoginUser: 'admin', rootLoginMessage: 'Please login as the user "admin" rather than the user "root".', halfProvisioned: true });
    expect(backend.reachable(host.privateAddress)).toBe(false);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(/<allocationId>([^<]+)/.exec((await call({ Action: 'AllocateAddress', Domain: 'vpc' })).text)![1]);
    const sixth = await call({ Action: 'AllocateAddress', Domain: 'vpc' });
    expect([sixth.status, /<Code>([^<]+)/.exec(sixth.text)![1]]).toEqual([400, 'AddressLimitExceeded']);
    const early = await call({ Action: 'AssociateAddress', AllocationId: ids[0], InstanceId: id });
    expect([early.status, /<Code>([^<]+)/.exec(early.text)![1]]).toEqual([400, 'IncorrectInstanceState']);
    emu.state.instances.get(id)!.state = 'running';
    expect((await call({ Action: 'AssociateAddress', AllocationId: ids[0], InstanceId: id })).status).toBe(200);
    const eip = emu.state.addresses.get(ids[0])!.publicIp;
    expect(backend.reachable(eip)).toBe(true);
    await call({ Action: 'TerminateInstances', 'InstanceId.1': id });
    await emu.settled();
    expect(backend.reachable(eip)).toBe(false);
    expect(backend.hosts.size).toBe(0);
  });

  it('answers faults in EC2\'s way: throttles with RequestLimitExceeded and a Retry-After, errors with a 5xx, loses answers after doing the call', async () => {
    await emu.close();
    emu = await startAwsEmulator({ backend: new MemoryBackend(), bootDelayMs: 0, faults: parseFaults('throttle=1,retry-after=3') });
    const t = await call({ Action: 'DescribeRegions' });
    expect([t.status, t.headers.get('retry-after'), /<Code>([^<]+)/.exec(t.text)![1]]).toEqual([503, '3', 'RequestLimitExceeded']);
    emu.failNext('AllocateAddress', 'lost');
    emu.failNext('DescribeRegions', 'error', 2);
    const lost = await call({ Action: 'AllocateAddress', Domain: 'vpc' });
    expect([lost.status, /<Code>([^<]+)/.exec(lost.text)![1]]).toEqual([500, 'InternalError']);
    expect(emu.resources().map((r) => r.kind)).toEqual(['address']); // done, though answered 500
    expect([(await call({ Action: 'DescribeRegions' })).status, (await call({ Action: 'DescribeRegions' })).status].sort()).toEqual([500, 503]);
    // The state path is never faulted.
    expect((await fetch(`${emu.endpoint}${EMULATOR_STATE_PATH}`)).status).toBe(200);
  });

  it('prints the documents that point Formwork at it', () => {
    const [secret, provider] = emu.documents('aws-emu');
    expect(secret).toEqual({ kind: 'Secret', name: 'aws-emu-credentials', data: { ...emu.credentials } });
    expect(provider).toEqual({ kind: 'Provider', name: 'aws-emu', type: 'aws', credentialsSecret: 'aws-emu-credentials', settings: { region: 'us-east-1', endpoint: emu.endpoint, readinessTimeoutSeconds: 300 } });
  });
});
