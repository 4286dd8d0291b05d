/**
 * The emulator's other actions: the region's catalog (regions, zones, images by owner, id
 * and name, instance types), the default VPC and its subnets, security groups, key pairs
 * and Elastic IPs (a quota of 5, told by DescribeAccountAttributes vpc-max-elastic-ips; no
 * association with an instance still pending).
 *
 * @example
 *   const answer = RESOURCE_ACTIONS.DescribeSubnets(state, params);
 */
import { createHash } from 'node:crypto';
import { DEFAULT_VPC_ID, EMULATED_IMAGES, EMULATED_INSTANCE_TYPES } from './catalog.js';
import type { Ec2Action } from './instances.js';
import { ec2Xml, Ec2Error, globMatch, invalid, matchesTagFilters, tagSet, type QueryParams } from './wire.js';

const byFilter = (q: QueryParams, name: string, value: string | undefined) => q.filters().filter((f) => f.name === name).every((f) => value !== undefined && f.values.some((v) => globMatch(v, value)));

const catalog: Record<string, Ec2Action> = {
  DescribeRegions: (state) => ec2Xml('DescribeRegionsResponse', { regionInfo: [{ regionName: state.options.region, regionEndpoint: `ec2.${state.options.region}.amazonaws.com`, optInStatus: 'opt-in-not-required' }] }),
  DescribeAvailabilityZones: (state, q) => {
    const names = q.list('ZoneName');
    for (const n of names) if (!state.zones.includes(n)) throw invalid(`The zone '${n}' does not exist.`, 'InvalidParameterValue');
    const zones = state.zones.filter((z) => (!names.length || names.includes(z)) && byFilter(q, 'zone-name', z));
    return ec2Xml('DescribeAvailabilityZonesResponse', { availabilityZoneInfo: zones.map((z, i) => ({ zoneName: z, zoneState: 'available', regionName: state.options.region, zoneId: `use1-az${i + 1}`, zoneType: 'availability-zone', messageSet: [] })) });
  },
  DescribeImages: (_state, q) => {
    const ids = q.list('ImageId');
    for (const id of ids) {
      if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw invalid(`Invalid id: "${id}"`, 'InvalidAMIID.Malformed');
      if (!EMULATED_IMAGES.some((i) => i.imageId === id)) throw invalid(`The image id '[${id}]' does not exist`, 'InvalidAMIID.NotFound');
    }
    const owners = q.list('Owner');
    const images = EMULATED_IMAGES.filter((i) => (!ids.length || ids.includes(i.imageId)) && (!owners.length || owners.some((o) => o === i.ownerId || o === i.ownerAlias)) && byFilter(q, 'name', i.name) && byFilter(q, 'state', 'available') && byFilter(q, 'architecture', 'x86_64'));
    return ec2Xml('DescribeImagesResponse', {
      imagesSet: images.map((i) => ({
        imageId: i.imageId, imageLocation: `${i.ownerAlias ?? i.ownerId}/${i.name}`, imageState: 'available', imageOwnerId: i.ownerId, creationDate: i.creationDate, isPublic: true, architecture: 'x86_64', imageType: 'machine',
        imageOwnerAlias: i.ownerAlias, name: i.name, description: i.description, rootDeviceType: 'ebs', rootDeviceName: '/dev/xvda',
        blockDeviceMapping: [{ deviceName: '/dev/xvda', ebs: { snapshotId: `snap-0${i.imageId.slice(5)}`, volumeSize: 8, deleteOnTermination: true, volumeType: 'gp3', encrypted: false } }],
        virtualizationType: 'hvm', hypervisor: 'xen', enaSupport: true, bootMode: 'uefi-preferred',
      })),
    });
  },
  DescribeInstanceTypes: (_state, q) => {
    const asked = q.list('InstanceType');
    for (const t of asked) if (!EMULATED_INSTANCE_TYPES.some((x) => x.type === t)) throw invalid(`The following supplied instance types do not exist: [${t}]`, 'InvalidInstanceType');
    const types = EMULATED_INSTANCE_TYPES.filter((t) => !asked.length || asked.includes(t.type));
    return ec2Xml('DescribeInstanceTypesResponse', {
      instanceTypeSet: types.map((t) => ({ instanceType: t.type, currentGeneration: true, freeTierEligible: t.type === 't3.micro', bareMetal: false, hypervisor: 'nitro', processorInfo: { supportedArchitectures: ['x86_64'] }, vCpuInfo: { defaultVCpus: t.vcpus, defaultCores: t.vcpus / 2 || 1, defaultThreadsPerCore: 2 }, memoryInfo: { sizeInMiB: t.mib }, instanceStorageSupported: false })),
    });
  },
  DescribeVpcs: (state, q) => {
    const ids = q.list('VpcId');
    for (const id of ids) if (id !== DEFAULT_VPC_ID) throw invalid(`The vpc ID '${id}' does not exist`, 'InvalidVpcID.NotFound');
    const ok = byFilter(q, 'is-default', 'true') && byFilter(q, 'vpc-id', DEFAULT_VPC_ID);
    return ec2Xml('DescribeVpcsResponse', { vpcSet: ok ? [{ vpcId: DEFAULT_VPC_ID, state: 'available', cidrBlock: `${state.backend.privatePrefix}.0/24`, dhcpOptionsId: 'dopt-0c1d2e3f', instanceTenancy: 'default', isDefault: true, ownerId: state.accountId, tagSet: [] }] : [] });
  },
  DescribeSubnets: (state, q) => {
    const ids = q.list('SubnetId');
    const all = state.subnets();
    for (const id of ids) if (!all.some((s) => s.subnetId === id)) throw invalid(`The subnet ID '${id}' does not exist`, 'InvalidSubnetID.NotFound');
    const subnets = all.filter((s) => (!ids.length || ids.includes(s.subnetId)) && byFilter(q, 'availability-zone', s.zone) && byFilter(q, 'default-for-az', 'true') && byFilter(q, 'vpc-id', DEFAULT_VPC_ID) && byFilter(q, 'subnet-id', s.subnetId));
    return ec2Xml('DescribeSubnetsResponse', {
      subnetSet: subnets.map((s) => ({ subnetId: s.subnetId, state: 'available', vpcId: DEFAULT_VPC_ID, cidrBlock: s.cidr, availableIpAddressCount: 59, availabilityZone: s.zone, defaultForAz: true, mapPublicIpOnLaunch: false, ownerId: state.accountId, tagSet: [] })),
    });
  },
};

const groups: Record<string, Ec2Action> = {
  DescribeSecurityGroups: (state, q) => {
    const ids = q.list('GroupId');
    const names = q.list('GroupName');
    for (const id of ids) if (!state.securityGroups.has(id)) throw invalid(`The security group '${id}' does not exist`, 'InvalidGroup.NotFound');
    const all = [...state.securityGroups.values()];
    for (const n of names) if (!all.some((g) => g.name === n)) throw invalid(`The security group '${n}' does not exist in default VPC '${DEFAULT_VPC_ID}'`, 'InvalidGroup.NotFound');
    const list = all.filter((g) => (!ids.length || ids.includes(g.id)) && (!names.length || names.includes(g.name)) && matchesTagFilters(g.tags, q.filters()) && byFilter(q, 'group-name', g.name) && byFilter(q, 'group-id', g.id));
    return ec2Xml('DescribeSecurityGroupsResponse', {
      securityGroupInfo: list.map((g) => ({
        ownerId: state.accountId, groupId: g.id, groupName: g.name, groupDescription: g.description, vpcId: g.vpcId,
        ipPermissions: g.ingress.map((r) => ({ ipProtocol: r.protocol, fromPort: r.from, toPort: r.to, groups: [], ipRanges: r.cidrs.map((c) => ({ cidrIp: c })), ipv6Ranges: [], prefixListIds: [] })),
        ipPermissionsEgress: [{ ipProtocol: '-1', groups: [], ipRanges: [{ cidrIp: '0.0.0.0/0' }], ipv6Ranges: [], prefixListIds: [] }],
        tagSet: tagSet(g.tags),
      })),
    });
  },
  CreateSecurityGroup: (state, q) => {
    const name = q.required('GroupName');
    const description = q.required('GroupDescription');
    const vpcId = q.get('VpcId') ?? DEFAULT_VPC_ID;
    if (vpcId !== DEFAULT_VPC_ID) throw invalid(`The vpc ID '${vpcId}' does not exist`, 'InvalidVpcID.NotFound');
    if ([...state.securityGroups.values()].some((g) => g.name === name)) throw invalid(`The security group '${name}' already exists for VPC '${vpcId}'`, 'InvalidGroup.Duplicate');
    const id = state.newId('sg');
    state.securityGroups.set(id, { id, name, description, vpcId, tags: q.tagsFor('security-group'), ingress: [] });
    return ec2Xml('CreateSecurityGroupResponse', { return: true, groupId: id, tagSet: tagSet(state.securityGroups.get(id)!.tags) });
  },
  AuthorizeSecurityGroupIngress: (state, q) => {
    const id = q.required('GroupId');
    const g = state.securityGroups.get(id);
    if (!g) throw invalid(`The security group '${id}' does not exist`, 'InvalidGroup.NotFound');
    for (const i of q.indexes('IpPermissions')) {
      const rule = { protocol: q.get(`IpPermissions.${i}.IpProtocol`) ?? 'tcp', from: Number(q.get(`IpPermissions.${i}.FromPort`) ?? -1), to: Number(q.get(`IpPermissions.${i}.ToPort`) ?? -1), cidrs: q.indexes(`IpPermissions.${i}.IpRanges`).map((j) => q.get(`IpPermissions.${i}.IpRanges.${j}.CidrIp`)!).filter(Boolean) };
      if (g.ingress.some((r) => r.protocol === rule.protocol && r.from === rule.from && r.to === rule.to && rule.cidrs.some((c) => r.cidrs.includes(c)))) {
        throw invalid(`the specified rule "peer: ${rule.cidrs[0]}, ${rule.protocol.toUpperCase()}, from port: ${rule.from}, to port: ${rule.to}, ALLOW" already exists`, 'InvalidPermission.Duplicate');
      }
      g.ingress.push(rule);
    }
    return ec2Xml('AuthorizeSecurityGroupIngressResponse', { return: true });
  },
  DeleteSecurityGroup: (state, q) => {
    const id = q.required('GroupId');
    const g = state.securityGroups.get(id);
    if (!g) throw invalid(`The security group '${id}' does not exist`, 'InvalidGroup.NotFound');
    if ([...state.instances.values()].some((i) => i.state !== 'terminated' && i.groupIds.includes(id))) throw new Ec2Error(400, 'DependencyViolation', `resource ${id} has a dependent object`);
    state.securityGroups.delete(id);
    return ec2Xml('DeleteSecurityGroupResponse', { return: true });
  },
};

/** An MD5 fingerprint of an imported key (EC2's for imported keys, over the key blob here). */
const md5Fingerprint = (publicKey: string) => createHash('md5').update(Buffer.from(publicKey.split(/\s+/)[1] ?? publicKey, 'base64')).digest('hex').match(/../g)!.join(':');

const keys: Record<string, Ec2Action> = {
  ImportKeyPair: (state, q) => {
    const name = q.required('KeyName');
    const material = Buffer.from(q.required('PublicKeyMaterial'), 'base64').toString('utf8').trim();
    if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(material)) throw invalid('Key is not in valid OpenSSH public key format', 'InvalidKey.Format');
    if ([...state.keyPairs.values()].some((k) => k.name === name)) throw invalid(`The keypair '${name}' already exists.`, 'InvalidKeyPair.Duplicate');
    const rec = { name, id: state.newId('key'), fingerprint: md5Fingerprint(material), publicKey: material, createTime: new Date().toISOString(), tags: q.tagsFor('key-pair') };
    state.keyPairs.set(rec.id, rec);
    return ec2Xml('ImportKeyPairResponse', { keyName: name, keyFingerprint: rec.fingerprint, keyPairId: rec.id, tagSet: tagSet(rec.tags) });
  },
  DescribeKeyPairs: (state, q) => {
    const names = q.list('KeyName');
    const ids = q.list('KeyPairId');
    const all = [...state.keyPairs.values()];
    for (const n of names) if (!all.some((k) => k.name === n)) throw invalid(`The key pair '${n}' does not exist`, 'InvalidKeyPair.NotFound');
    for (const n of ids) if (!all.some((k) => k.id === n)) throw invalid(`The key pair '${n}' does not exist`, 'InvalidKeyPair.NotFound');
    const withKey = q.get('IncludePublicKey') === 'true';
    const list = all.filter((k) => (!names.length || names.includes(k.name)) && (!ids.length || ids.includes(k.id)) && matchesTagFilters(k.tags, q.filters()) && byFilter(q, 'key-name', k.name));
    return ec2Xml('DescribeKeyPairsResponse', { keySet: list.map((k) => ({ keyPairId: k.id, keyName: k.name, keyFingerprint: k.fingerprint, keyType: k.publicKey.startsWith('ssh-rsa') ? 'rsa' : 'ed25519', tagSet: tagSet(k.tags), publicKey: withKey ? k.publicKey : undefined, createTime: k.createTime })) });
  },
  DeleteKeyPair: (state, q) => {
    const name = q.get('KeyName');
    const id = q.get('KeyPairId');
    if (!name && !id) throw invalid('The request must contain the parameter KeyName or KeyPairId', 'MissingParameter');
    // EC2 answers true for a key pair that does not exist.
    for (const k of [...state.keyPairs.values()]) if (k.name === name || k.id === id) state.keyPairs.delete(k.id);
    return ec2Xml('DeleteKeyPairResponse', { return: true });
  },
};

const addresses: Record<string, Ec2Action> = {
  AllocateAddress: (state, q) => {
    if (state.addresses.size >= state.addressQuota) throw invalid('The maximum number of addresses has been reached.', 'AddressLimitExceeded');
    const publicIp = state.freePublicIp();
    if (!publicIp) throw new Ec2Error(400, 'InsufficientAddressCapacity', 'There are not enough free addresses in the pool');
    const rec = { allocationId: state.newId('eipalloc'), publicIp, tags: q.tagsFor('elastic-ip') };
    state.addresses.set(rec.allocationId, rec);
    return ec2Xml('AllocateAddressResponse', { publicIp, domain: 'vpc', allocationId: rec.allocationId, networkBorderGroup: state.options.region, publicIpv4Pool: 'amazon' });
  },
  AssociateAddress: async (state, q) => {
    const allocationId = q.required('AllocationId');
    const instanceId = q.required('InstanceId');
    const a = state.addresses.get(allocationId);
    if (!a) throw invalid(`The allocation ID '${allocationId}' does not exist`, 'InvalidAllocationID.NotFound');
    const inst = state.instances.get(instanceId);
    if (!inst || inst.state === 'terminated') throw invalid(`The instance ID '${instanceId}' does not exist`, 'InvalidInstanceID.NotFound');
    if (inst.state !== 'running') throw new Ec2Error(400, 'IncorrectInstanceState', `The instance '${instanceId}' is not in a valid state for this operation.`);
    if (a.instanceId === instanceId) return ec2Xml('AssociateAddressResponse', { return: true, associationId: a.associationId });
    if (a.instanceId && q.get('AllowReassociation') !== 'true') throw invalid(`The address with allocation id [${allocationId}] is already associated`, 'Resource.AlreadyAssociated');
    if (a.instanceId) state.disassociate(a);
    for (const other of state.addresses.values()) if (other.instanceId === instanceId) state.disassociate(other);
    a.instanceId = instanceId;
    a.associationId = state.newId('eipassoc');
    inst.publicIp = a.publicIp;
    if (inst.hostId) await state.backend.setFloatingAddress(inst.hostId, a.publicIp);
    return ec2Xml('AssociateAddressResponse', { return: true, associationId: a.associationId });
  },
  DisassociateAddress: (state, q) => {
    const associationId = q.required('AssociationId');
    const a = [...state.addresses.values()].find((x) => x.associationId === associationId);
    if (!a) throw invalid(`The association ID '${associationId}' does not exist`, 'InvalidAssociationID.NotFound');
    state.disassociate(a);
    return ec2Xml('DisassociateAddressResponse', { return: true });
  },
  ReleaseAddress: (state, q) => {
    const allocationId = q.required('AllocationId');
    const a = state.addresses.get(allocationId);
    if (!a) throw invalid(`The allocation ID '${allocationId}' does not exist`, 'InvalidAllocationID.NotFound');
    if (a.instanceId) throw invalid(`The address with allocation id [${allocationId}] is in use`, 'InvalidIPAddress.InUse');
    state.addresses.delete(allocationId);
    return ec2Xml('ReleaseAddressResponse', { return: true });
  },
  // The account's attributes as EC2 documents them; vpc-max-elastic-ips is the emulated Elastic IP quota.
  DescribeAccountAttributes: (state, q) => {
    const all: Record<string, string[]> = { 'supported-platforms': ['VPC'], 'default-vpc': [DEFAULT_VPC_ID], 'max-instances': ['20'], 'vpc-max-security-groups-per-interface': ['5'], 'max-elastic-ips': ['5'], 'vpc-max-elastic-ips': [String(state.addressQuota)] };
    const names = q.list('AttributeName');
    for (const n of names) if (!all[n]) throw invalid(`Value (${n}) for parameter attributeName is invalid. Unknown attribute.`, 'InvalidParameterValue');
    const chosen = Object.entries(all).filter(([n]) => !names.length || names.includes(n));
    return ec2Xml('DescribeAccountAttributesResponse', { accountAttributeSet: chosen.map(([attributeName, values]) => ({ attributeName, attributeValueSet: values.map((attributeValue) => ({ attributeValue })) })) });
  },
  DescribeAddresses: (state, q) => {
    const ids = q.list('AllocationId');
    for (const id of ids) if (!state.addresses.has(id)) throw invalid(`The allocation ID '${id}' does not exist`, 'InvalidAllocationID.NotFound');
    const ips = q.list('PublicIp');
    const list = [...state.addresses.values()].filter((a) => (!ids.length || ids.includes(a.allocationId)) && (!ips.length || ips.includes(a.publicIp)) && matchesTagFilters(a.tags, q.filters()) && byFilter(q, 'instance-id', a.instanceId) && byFilter(q, 'allocation-id', a.allocationId));
    return ec2Xml('DescribeAddressesResponse', {
      addressesSet: list.map((a) => {
        const inst = a.instanceId ? state.instances.get(a.instanceId) : undefined;
        return { publicIp: a.publicIp, allocationId: a.allocationId, domain: 'vpc', instanceId: a.instanceId, associationId: a.associationId, privateIpAddress: inst?.privateIp, networkBorderGroup: state.options.region, publicIpv4Pool: 'amazon', tagSet: tagSet(a.tags) };
      }),
    });
  },
};

/** The catalog, VPC, security group, key pair and address actions by name. @example RESOURCE_ACTIONS.AllocateAddress(state, new QueryParams('Domain=vpc')); */
export const RESOURCE_ACTIONS: Record<string, Ec2Action> = { ...catalog, ...groups, ...keys, ...addresses };
