/**
 * The emulator's instance actions: RunInstances (client tokens, tags at launch, the checks
 * EC2 makes on the image, type, subnet, key pair and groups), DescribeInstances (by id, by
 * filter, in pages; a new instance unknown for its first looks), TerminateInstances,
 * GetConsoleOutput (with cloud-init's host key block once the instance runs), and
 * CreateTags/DeleteTags on any resource.
 *
 * @example
 *   const answer = await INSTANCE_ACTIONS.RunInstances(state, params);
 */
import { createHash } from 'node:crypto';
import { DEFAULT_VPC_ID, EMULATED_INSTANCE_TYPES } from './catalog.js';
import { STATE_CODES, type Ec2State, type InstanceRecord } from './state.js';
import { ec2Xml, Ec2Error, invalid, matchesTagFilters, tagSet, type Ec2Answer, type QueryParams, type XmlValue } from './wire.js';

/** An action handler. @example const describe: Ec2Action = (state, q) => ec2Xml('DescribeRegionsResponse', { regionInfo: [] }); */
export type Ec2Action = (state: Ec2State, q: QueryParams) => Ec2Answer | Promise<Ec2Answer>;

function instanceXml(state: Ec2State, i: InstanceRecord): XmlValue {
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: { code: STATE_CODES[i.state], name: i.state },
    privateDnsName: i.privateIp ? `ip-${i.privateIp.replace(/\./g, '-')}.ec2.internal` : '',
    dnsName: '',
    reason: i.stateReason && i.state !== 'pending' && i.state !== 'running' ? i.stateReason.message : '',
    keyName: i.keyName,
    amiLaunchIndex: 0,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.zone, groupName: '', tenancy: 'default' },
    monitoring: { state: 'disabled' },
    subnetId: i.state === 'terminated' ? undefined : i.subnetId,
    vpcId: i.state === 'terminated' ? undefined : DEFAULT_VPC_ID,
    privateIpAddress: i.state === 'terminated' ? undefined : i.privateIp,
    ipAddress: i.publicIp,
    sourceDestCheck: true,
    groupSet: i.groupIds.map((id) => ({ groupId: id, groupName: state.securityGroups.get(id)?.name ?? id })),
    stateReason: i.stateReason && i.state !== 'pending' && i.state !== 'running' ? i.stateReason : undefined,
    architecture: 'x86_64',
    rootDeviceType: 'ebs',
    rootDeviceName: '/dev/xvda',
    clientToken: i.clientToken ?? '',
    tagSet: tagSet(i.tags),
    hypervisor: 'xen',
    virtualizationType: 'hvm',
  };
}

function reservationXml(state: Ec2State, list: InstanceRecord[]): XmlValue {
  const first = list[0];
  return { reservationId: first.reservationId, ownerId: state.accountId, groupSet: [], instancesSet: list.map((i) => instanceXml(state, i)) };
}

const runParams = (q: QueryParams) => JSON.stringify([q.get('ImageId'), q.get('InstanceType'), q.get('SubnetId'), q.get('KeyName'), q.get('MinCount'), q.get('MaxCount'), q.list('SecurityGroupId'), q.get('Placement.AvailabilityZone')]);

async function runInstances(state: Ec2State, q: QueryParams): Promise<Ec2Answer> {
  const token = q.get('ClientToken');
  if (token !== undefined && token.length > 64) throw invalid('Value for parameter ClientToken is invalid: it is longer than 64 characters.', 'InvalidParameterValue');
  if (token) {
    const { instance, mismatch } = state.tokenInstance(token, runParams(q));
    if (mismatch) throw invalid('Arguments on this idempotent request are inconsistent with arguments used in previous request(s).', 'IdempotentParameterMismatch');
    if (instance) return ec2Xml('RunInstancesResponse', reservationXml(state, [instance]) as Record<string, XmlValue>);
  }
  const imageId = q.required('ImageId');
  if (!/^ami-[0-9a-f]{8,17}$/.test(imageId)) throw invalid(`Invalid id: "${imageId}"`, 'InvalidAMIID.Malformed');
  if (!state.image(imageId)) throw invalid(`The image id '[${imageId}]' does not exist`, 'InvalidAMIID.NotFound');
  const instanceType = q.get('InstanceType') ?? 'm1.small';
  if (!EMULATED_INSTANCE_TYPES.some((t) => t.type === instanceType)) throw invalid(`The requested configuration is currently not supported. Invalid value '${instanceType}' for InstanceType.`, 'InvalidParameterValue');
  const min = Number(q.get('MinCount') ?? '1');
  const max = Number(q.get('MaxCount') ?? '1');
  if (min !== 1 || max !== 1) throw invalid('The emulator launches one instance per call (MinCount=MaxCount=1)', 'Unsupported');
  const askedZone = q.get('Placement.AvailabilityZone');
  if (askedZone && !state.zones.includes(askedZone)) throw invalid(`Invalid availability zone: [${askedZone}]`, 'InvalidParameterValue');
  const subnetId = q.get('SubnetId') ?? state.subnets().find((s) => s.zone === (askedZone ?? state.zones[0]))!.subnetId;
  const subnet = state.subnets().find((s) => s.subnetId === subnetId);
  if (!subnet) throw invalid(`The subnet ID '${subnetId}' does not exist`, 'InvalidSubnetID.NotFound');
  if (askedZone && askedZone !== subnet.zone) throw invalid(`The subnet '${subnetId}' is in ${subnet.zone}, not in the requested zone ${askedZone}`, 'InvalidParameterCombination');
  const keyName = q.get('KeyName');
  const key = keyName ? [...state.keyPairs.values()].find((k) => k.name === keyName) : undefined;
  if (keyName && !key) throw invalid(`The key pair '${keyName}' does not exist`, 'InvalidKeyPair.NotFound');
  const groupIds = q.list('SecurityGroupId');
  for (const g of groupIds) if (!state.securityGroups.has(g)) throw invalid(`The security group '${g}' does not exist`, 'InvalidGroup.NotFound');
  for (const i of q.indexes('TagSpecification')) {
    const type = q.get(`TagSpecification.${i}.ResourceType`);
    if (type !== 'instance' && type !== 'volume' && type !== 'network-interface') throw invalid(`'${type}' is not a valid taggable resource type for this operation.`, 'InvalidParameterValue');
  }
  const tags = q.tagsFor('instance');
  const inst = await state.launch({ imageId, instanceType, zone: subnet.zone, subnetId, keyName, groupIds: groupIds.length ? groupIds : ['sg-0default0000000'], tags, clientToken: token }, runParams(q), key?.publicKey);
  return ec2Xml('RunInstancesResponse', reservationXml(state, [inst]) as Record<string, XmlValue>);
}

function describeInstances(state: Ec2State, q: QueryParams): Ec2Answer {
  state.expire();
  const ids = q.list('InstanceId');
  const maxResults = q.get('MaxResults');
  if (ids.length && maxResults) throw invalid('The parameter instancesSet cannot be used with the parameter maxResults', 'InvalidParameterCombination');
  const max = maxResults ? Number(maxResults) : Infinity;
  if (maxResults && (!Number.isInteger(max) || max < 5 || max > 1000)) throw invalid(`Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value greater than 5.`, 'InvalidParameterValue');
  const filters = q.filters();
  let list: InstanceRecord[];
  if (ids.length) {
    const missing = ids.filter((id) => {
      const i = state.instances.get(id);
      if (!i) return true;
      if (i.hiddenReads > 0) {
        i.hiddenReads--;
        return true;
      }
      return false;
    });
    if (missing.length) throw invalid(`The instance ID${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' do${missing.length > 1 ? '' : 'es'} not exist`, missing.some((m) => !/^i-[0-9a-f]{8,17}$/.test(m)) ? 'InvalidInstanceID.Malformed' : 'InvalidInstanceID.NotFound');
    list = ids.map((id) => state.instances.get(id)!);
  } else {
    list = [...state.instances.values()].filter((i) => {
      if (i.hiddenReads > 0) {
        i.hiddenReads--;
        return false;
      }
      return true;
    });
  }
  list = list.filter((i) => matchesTagFilters(i.tags, filters) && filters.every((f) => {
    switch (f.name) {
      case 'instance-state-name': return f.values.includes(i.state);
      case 'client-token': return f.values.includes(i.clientToken ?? '');
      case 'instance-id': return f.values.includes(i.id);
      default: return true;
    }
  }));
  const start = q.get('NextToken') ? Number(Buffer.from(q.get('NextToken')!, 'base64url').toString()) : 0;
  if (!Number.isInteger(start) || start < 0) throw invalid('Invalid NextToken', 'InvalidParameterValue');
  const page = list.slice(start, start + max);
  const next = start + page.length < list.length ? Buffer.from(String(start + page.length)).toString('base64url') : undefined;
  return ec2Xml('DescribeInstancesResponse', { reservationSet: page.map((i) => reservationXml(state, [i])), nextToken: next });
}

function terminateInstances(state: Ec2State, q: QueryParams): Ec2Answer {
  const ids = q.list('InstanceId');
  if (!ids.length) throw invalid('The request must contain the parameter InstanceId', 'MissingParameter');
  const unknown = ids.filter((id) => !state.instances.has(id));
  if (unknown.length) throw invalid(`The instance ID '${unknown.join(', ')}' does not exist`, 'InvalidInstanceID.NotFound');
  const changes = ids.map((id) => {
    const i = state.instances.get(id)!;
    const previous = i.state;
    state.terminate(i);
    return { instanceId: id, currentState: { code: STATE_CODES[i.state], name: i.state }, previousState: { code: STATE_CODES[previous], name: previous } };
  });
  return ec2Xml('TerminateInstancesResponse', { instancesSet: changes });
}

/** A host key's SHA256 fingerprint as ssh-keygen prints it. */
function fingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function getConsoleOutput(state: Ec2State, q: QueryParams): Ec2Answer {
  const id = q.required('InstanceId');
  const i = state.instances.get(id);
  if (!i) throw invalid(`The instance ID '${id}' does not exist`, 'InvalidInstanceID.NotFound');
  // Nothing is printed before the instance has booted; cloud-init prints the host keys once it has.
  let text = '';
  if (i.state === 'running') {
    const host = `ip-${(i.privateIp ?? '').replace(/\./g, '-')}`;
    text = `[    0.000000] Linux version 6.1.0-23-cloud-amd64\nCloud-init v. 22.4.2 running 'modules:config'\n`;
    if (i.hostPublicKey) {
      const type = i.hostPublicKey.split(' ')[0].replace(/^ssh-/, '').toUpperCase();
      text += `-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 ${fingerprint(i.hostPublicKey)} root@${host} (${type})\n-----END SSH HOST KEY FINGERPRINTS-----\n`;
      text += `-----BEGIN SSH HOST KEY KEYS-----\n${i.hostPublicKey.split(/\s+/).slice(0, 2).join(' ')} root@${host}\n-----END SSH HOST KEY KEYS-----\n`;
    }
    text += `Cloud-init v. 22.4.2 finished. Datasource DataSourceEc2Local.\n`;
  }
  return ec2Xml('GetConsoleOutputResponse', { instanceId: id, timestamp: new Date().toISOString(), output: text ? Buffer.from(text).toString('base64') : undefined });
}

/** The tags of any resource by id, or EC2's NotFound error for its kind. */
function taggable(state: Ec2State, id: string): Record<string, string> {
  const found = state.instances.get(id)?.tags ?? state.addresses.get(id)?.tags ?? state.securityGroups.get(id)?.tags ?? [...state.keyPairs.values()].find((k) => k.id === id)?.tags;
  if (found) return found;
  const kind = id.split('-')[0];
  const code = { i: 'InvalidInstanceID.NotFound', eipalloc: 'InvalidAllocationID.NotFound', sg: 'InvalidGroup.NotFound', key: 'InvalidKeyPair.NotFound' }[kind] ?? 'InvalidID';
  throw new Ec2Error(400, code, `The ID '${id}' does not exist`);
}

function createTags(state: Ec2State, q: QueryParams): Ec2Answer {
  const ids = q.list('ResourceId');
  const tags = q.tagList('Tag');
  for (const id of ids) Object.assign(taggable(state, id), tags);
  return ec2Xml('CreateTagsResponse', { return: true });
}

function deleteTags(state: Ec2State, q: QueryParams): Ec2Answer {
  const ids = q.list('ResourceId');
  const keys = q.indexes('Tag').map((j) => q.get(`Tag.${j}.Key`)!);
  for (const id of ids) {
    const t = taggable(state, id);
    for (const k of keys) delete t[k];
  }
  return ec2Xml('DeleteTagsResponse', { return: true });
}

/** The instance actions by name. @example await INSTANCE_ACTIONS.TerminateInstances(state, new QueryParams('InstanceId.1=i-0abc')); */
export const INSTANCE_ACTIONS: Record<string, Ec2Action> = {
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  TerminateInstances: terminateInstances,
  GetConsoleOutput: getConsoleOutput,
  CreateTags: createTags,
  DeleteTags: deleteTags,
};

