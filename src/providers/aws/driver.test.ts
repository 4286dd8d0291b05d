import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownershipTags, type MachineSpec } from '../provider.js';
import { awsDriver as driver } from './driver.js';
import { awaitReadiness, readinessProbe, releaseMachine } from '../readiness.js';
import { providerProblems } from '../registry.js';
import { runProviderContract } from '../testing/contract-suite.js';
import type { AwsEmulator } from './emulator/index.js';
import { clientToken } from './tags.js';
import { awsContext, fastPolls, forgetAll, KeyedMemoryBackend, probeFor, startTestEmulator } from './testing.js';
import type { MemoryBackend } from '../emulation/hosts.js';

fastPolls();

let contractEmu: (AwsEmulator & { backend: MemoryBackend }) | undefined;
const unreachable = new Set<string>();
let breakFrom: Set<string> | undefined;
runProviderContract(
  'aws (emulator, memory backend)',
  async () => {
    contractEmu = await startTestEmulator();
    return { driver, ctx: awsContext(contractEmu, 'contract') };
  },
  {
    probe: async (_s, host) => {
      const emu = contractEmu!;
      if (breakFrom) for (const id of emu.state.instances.keys()) if (!breakFrom.has(id)) unreachable.add(id);
      return probeFor(emu.backend, unreachable)(host);
    },
    breakReadiness: () => void (breakFrom = new Set(contractEmu!.state.instances.keys())),
    cleanup: async () => {
      forgetAll();
      await contractEmu?.close();
    },
  },
);

describe('aws driver', () => {
  let emu: AwsEmulator & { backend: MemoryBackend };
  const realProbe = readinessProbe.tcp;
  const spec = (nodeId: string, over: Partial<MachineSpec> = {}): MachineSpec => ({ name: `web-${nodeId}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('aws1', nodeId), size: 'small', image: 'debian-12', ...over });
  const wait = { waitSeconds: 3, log: () => undefined };
  beforeEach(async () => {
    emu = await startTestEmulator({ backend: new KeyedMemoryBackend() });
    readinessProbe.tcp = probeFor(emu.backend);
  });
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    forgetAll();
    await emu.close();
  });

  it('checks its settings at apply: a region is required, the public address path is one of four, no unknown setting', () => {
    expect(providerProblems({ type: 'aws', settings: {} })[0].message).toMatch(/region/);
    expect(providerProblems({ type: 'aws', settings: { region: 'eu-west-1', endpoint: 'http://127.0.0.1:4566', subnetId: 'subnet-0abc', publicAddress: 'elastic-ip', sizes: { small: 't3.small' }, rateLimit: { requestsPerSecond: 5 }, readinessTimeoutSeconds: 300 } })).toEqual([]);
    expect(providerProblems({ type: 'aws', settings: { region: 'eu-west-1', publicAddress: 'floating' } }).map((p) => p.path)).toContain('/settings/publicAddress');
    expect(providerProblems({ type: 'aws', settings: { region: 'eu-west-1', flavor: 'x' } })[0].message).toContain('unknown aws setting "flavor"');
  });

  it('refuses at check, naming what to fix: wrong credentials, an unknown region, zone or subnet, a malformed endpoint; never a secret in the message', async () => {
    const wrong = awsContext(emu, 'aws1', {}, { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'the-secret-never-shown' });
    const auth = await driver.check!(wrong).catch((e: Error) => e);
    expect(auth).toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringContaining("fix the access key in the provider's credentialsSecret") });
    expect(JSON.stringify({ m: (auth as Error).message, d: (auth as unknown as { details: unknown }).details })).not.toContain('the-secret-never-shown');
    await expect(driver.check!(awsContext(emu, 'aws1', {}, { accessKeyId: 'AKIA1' }))).rejects.toMatchObject({ code: 'PROVIDER_AUTH', message: expect.stringContaining('holds no secretAccessKey') });
    await expect(driver.check!(awsContext(emu, 'aws1', { region: 'eu-moon-1' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/region "eu-moon-1".*fix settings\.region/) });
    await expect(driver.check!(awsContext(emu, 'aws1', { region: 'Moon' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('fix settings.region') });
    await expect(driver.check!(awsContext(emu, 'aws1', { endpoint: 'not a url' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('fix settings.endpoint') });
    await expect(driver.check!(awsContext(emu, 'aws1', { zone: 'us-east-1z' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringMatching(/no zone "us-east-1z"; its zones are: us-east-1a, us-east-1b, us-east-1c; fix settings\.zone/) });
    await expect(driver.check!(awsContext(emu, 'aws1', { subnetId: 'subnet-0123abcd' }))).rejects.toMatchObject({ code: 'PROVIDER_INVALID', message: expect.stringContaining('fix settings.subnetId') });
    await driver.check!(awsContext(emu, 'aws1'));
    expect(emu.resources()).toEqual([]); // check makes nothing
  });

  it('prepares one key pair and one tagged group allowing TCP/22 from settings.sshSourceCidr, and tears them down', async () => {
    const ctx = awsContext(emu, 'aws1', { sshSourceCidr: '198.18.0.0/15' });
    await driver.prepare!(ctx);
    await driver.prepare!(ctx);
    expect([...emu.state.keyPairs.values()].map((k) => [k.name, k.tags])).toEqual([['formwork-aws1', { 'formwork.io/managed-by': 'formwork', 'formwork.io/provider': 'aws1' }]]);
    const groups = [...emu.state.securityGroups.values()].filter((g) => g.name !== 'default');
    expect(groups.map((g) => [g.name, g.ingress])).toEqual([['formwork-aws1', [{ protocol: 'tcp', from: 22, to: 22, cidrs: ['198.18.0.0/15'] }]]]);
    await driver.teardown!(ctx);
    expect(emu.resources()).toEqual([]);
  });

  it('launches tagged, with a ClientToken, decides the address path before launch, and makes an Elastic IP once running; the host key comes from the console', async () => {
    const ctx = awsContext(emu, 'aws1');
    const m = await driver.createMachine(spec('n1'), ctx);
    expect(m.state).toBe('booting');
    expect(m.addresses).toEqual([expect.objectContaining({ role: 'private', reason: expect.stringMatching(/^PrivateIpAddress of the instance in subnet subnet-0default00a/) })]);
    expect(m.loginUsers[0]).toBe('admin');
    expect(m.decisions).toEqual(expect.arrayContaining([
      { subject: 'public-address', chosen: 'elastic-ip', reason: 'subnet subnet-0default00a maps no public IP (MapPublicIpOnLaunch=false): an Elastic IP is associated once the instance runs' },
      expect.objectContaining({ subject: 'login-users', reason: 'the aws table for debian' }),
    ]));
    const inst = emu.state.instances.get(m.nativeId)!;
    expect(inst.clientToken).toBe(clientToken('formwork-n1-0'));
    expect(inst).toMatchObject({ instanceType: 't3.small', imageId: 'ami-064519b8c76274859', keyName: 'formwork-aws1' });
    const ready = await awaitReadiness(driver, m, ctx, wait);
    const pub = ready.addresses.find((a) => a.role === 'public')!;
    expect(pub.reason).toMatch(/^PublicIpAddress: Elastic IP eipalloc-\w+ associated with the instance \(eipassoc-\w+\); TCP\/22 answered from the control plane$/);
    const [eip] = emu.state.addresses.values();
    expect(eip.tags).toEqual(ownershipTags('aws1', 'n1'));
    expect(ready.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(ready.decisions?.find((d) => d.subject === 'elastic-ip')?.reason).toMatch(/^allocated: Elastic IP eipalloc-\w+ associated with the instance once it ran/);
    await releaseMachine(driver, ready, ctx);
    await emu.settled();
    expect(emu.resources().filter((r) => r.tags['formwork.io/node-id'])).toEqual([]);
  });

  it('a create whose answer is lost returns the same instance on retry (ClientToken); EC2\'s lag after launch is waited out', async () => {
    const ctx = awsContext(emu, 'aws1');
    emu.failNext('RunInstances', 'lost');
    const m = await driver.createMachine(spec('n2'), ctx);
    expect(emu.state.instances.size).toBe(1);
    expect(m.nativeId).toBe([...emu.state.instances.keys()][0]);
    // Every retry of the policy answered lost: the create fails, the next one finds the instance.
    emu.failNext('RunInstances', 'lost', 6);
    await expect(driver.createMachine(spec('n3'), ctx)).rejects.toMatchObject({ code: 'PROVIDER_ERROR' });
    const again = await driver.createMachine(spec('n3'), ctx);
    expect(emu.state.instances.size).toBe(2);
    // Unknown to DescribeInstances for its first looks: getMachine waits, never says "gone".
    expect((await driver.getMachine(again.nativeId, ctx))?.nativeId).toBe(again.nativeId);
  });

  it('an AllocateAddress whose answer is lost makes no second Elastic IP: the retry takes the one tagged for the node', async () => {
    const ctx = awsContext(emu, 'aws1');
    emu.failNext('AllocateAddress', 'lost');
    const ready = await awaitReadiness(driver, await driver.createMachine(spec('e1'), ctx), ctx, wait);
    expect(emu.state.addresses.size).toBe(1);
    expect(ready.decisions?.find((d) => d.subject === 'elastic-ip')?.reason).toMatch(/^taken \(made earlier for this node, unattached\)/);
  });

  it('says truthfully when another request used the token (IdempotentParameterMismatch) and no instance of the provider has it: retryable, launching nothing', async () => {
    const sdk = new EC2Client({ endpoint: emu.endpoint, region: emu.region, credentials: emu.credentials, maxAttempts: 1 });
    await sdk.send(new RunInstancesCommand({ ImageId: 'ami-0e86e20dae9224db8', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, ClientToken: clientToken('formwork-n4-0') }));
    await expect(driver.createMachine(spec('n4'), awsContext(emu, 'aws1'))).rejects.toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, message: expect.stringMatching(/was used, within the last day, by a RunInstances with other parameters.*The next attempt looks for that instance again with the same token/) });
    expect(emu.state.instances.size).toBe(1);
    sdk.destroy();
  });

  it('an Elastic IP quota used up is PROVIDER_QUOTA naming the fix, and the readiness wait leaves nothing of the node', async () => {
    await emu.close();
    emu = await startTestEmulator({ addressQuota: 1 });
    readinessProbe.tcp = probeFor(emu.backend);
    const ctx = awsContext(emu, 'aws1');
    // Both launched before either holds an address, so the check before launch lets both through.
    const first = await driver.createMachine(spec('q1'), ctx);
    const second = await driver.createMachine(spec('q2'), ctx);
    await awaitReadiness(driver, first, ctx, wait);
    await expect(awaitReadiness(driver, second, ctx, wait)).rejects.toMatchObject({ code: 'PROVIDER_QUOTA', message: expect.stringContaining('release unused ones') });
    expect(emu.resources().filter((r) => r.kind === 'address').map((r) => r.tags['formwork.io/node-id'])).toEqual(['q1']);
  });

  it('with publicAddress none, says before launch why there is no public path and makes no address', async () => {
    const warned: string[] = [];
    const ctx = { ...awsContext(emu, 'aws1', { publicAddress: 'none' }), log: { info: () => undefined, warn: (m: string) => void warned.push(m) } };
    const m = await driver.createMachine(spec('p1'), ctx);
    expect(warned[0]).toMatch(/node p1 gets no public address: settings.publicAddress is none: no public path/);
    expect(m.decisions).toEqual(expect.arrayContaining([expect.objectContaining({ subject: 'public-address', chosen: 'none' })]));
    const reachable = await driver.makeReachable!({ ...m, state: 'running' }, ctx).catch(() => undefined);
    expect(emu.state.addresses.size).toBe(0);
    expect(reachable === undefined || reachable.addresses.every((a) => a.role === 'private')).toBe(true);
  });

  it('lists machines page by page, and what it owns; deletes an orphan of each kind', async () => {
    const { instancePage } = await import('./machines.js');
    instancePage.size = 5;
    try {
      const ctx = awsContext(emu, 'aws1');
      const made = [];
      for (let i = 0; i < 7; i++) made.push(await driver.createMachine(spec(`l${i}`), ctx));
      await awaitReadiness(driver, made[0], ctx, wait);
      let listed = await driver.listMachines(ctx);
      for (let i = 0; i < 3 && listed.length < 7; i++) listed = await driver.listMachines(ctx); // EC2's lag after launch
      expect(listed.map((m) => m.nativeId).sort()).toEqual(made.map((m) => m.nativeId).sort());
      const owned = await driver.listOwned!(ctx);
      expect([...new Set(owned.map((r) => r.kind))].sort()).toEqual(['address', 'key-pair', 'machine', 'security-group']);
      for (const r of owned.filter((x) => x.tags['formwork.io/node-id'])) await driver.deleteOwned!(r, ctx);
      for (const r of owned.filter((x) => !x.tags['formwork.io/node-id'])) await driver.deleteOwned!(r, ctx);
      await emu.settled();
      expect(emu.resources()).toEqual([]);
    } finally {
      instancePage.size = 100;
    }
  });

  it('lists its catalog: x86_64 sizes, the official images with their OS, zones, subnets with MapPublicIpOnLaunch as evidence', async () => {
    const ctx = awsContext(emu, 'aws1');
    expect(await driver.listSizes!(ctx)).toContainEqual({ nativeId: 't3.small', cpus: 2, ramMiB: 2048 });
    const images = await driver.listImages!(ctx);
    expect(images.map((i) => [i.osFamily, i.osVersion, i.owner])).toEqual([['debian', '12', '136693071363'], ['ubuntu', '22.04', '099720109477'], ['amazon', '2023', '137112412989']]);
    expect((await driver.listZones!(ctx)).map((z) => z.name)).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    expect((await driver.listNetworks!(ctx))[0]).toMatchObject({ id: 'subnet-0default00a', flags: { maps_public_ip: false }, evidence: expect.arrayContaining(['MapPublicIpOnLaunch=false']) });
  });

  it('reads instances with the SDK the emulator answers (DescribeInstances by tag)', async () => {
    const ctx = awsContext(emu, 'aws1');
    await driver.createMachine(spec('s1'), ctx);
    const sdk = new EC2Client({ endpoint: emu.endpoint, region: emu.region, credentials: emu.credentials, maxAttempts: 1 });
    let found = 0;
    for (let i = 0; i < 3 && !found; i++) found = (await sdk.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:formwork.io/node-id', Values: ['s1'] }] }))).Reservations?.length ?? 0;
    expect(found).toBe(1);
    sdk.destroy();
  });
});
