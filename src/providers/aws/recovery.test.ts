import { EC2Client, GetConsoleOutputCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { callPolicyFor } from '../api-calls.js';
import type { MemoryBackend } from '../emulation/hosts.js';
import { ownershipTags, type MachineSpec } from '../provider.js';
import { awaitReadiness, readinessProbe, releaseMachine } from '../readiness.js';
import { awsDriver as driver } from './driver.js';
import type { AwsEmulator } from './emulator/index.js';
import { clientToken } from './tags.js';
import { awsContext, fastPolls, forgetAll, KeyedMemoryBackend, probeFor, startTestEmulator } from './testing.js';

fastPolls();

/** The aws driver recovering from half-done work: lost answers, crashes between two calls, failed launches. */
describe('aws driver recovery', () => {
  let emu: AwsEmulator & { backend: MemoryBackend };
  const realProbe = readinessProbe.tcp;
  const spec = (nodeId: string, over: Partial<MachineSpec> = {}): MachineSpec => ({ name: `web-${nodeId}`, nodeId, idempotencyToken: `formwork-${nodeId}-0`, tags: ownershipTags('aws1', nodeId), size: 'small', image: 'debian-12', ...over });
  const ourGroups = () => [...emu.state.securityGroups.values()].filter((g) => g.name !== 'default');
  beforeEach(async () => {
    emu = await startTestEmulator({ backend: new KeyedMemoryBackend() });
    readinessProbe.tcp = probeFor(emu.backend);
  });
  afterEach(async () => {
    readinessProbe.tcp = realProbe;
    forgetAll();
    await emu.close();
  });

  it('a lost CreateSecurityGroup answer still ends with the TCP/22 rule (the retry meets InvalidGroup.Duplicate)', async () => {
    emu.failNext('CreateSecurityGroup', 'lost');
    await driver.prepare!(awsContext(emu, 'aws1'));
    expect(ourGroups().map((g) => g.ingress)).toEqual([[{ protocol: 'tcp', from: 22, to: 22, cidrs: ['0.0.0.0/0'] }]]);
  });

  it('a group found without its TCP/22 rule (a crash between create and authorize) gets it, once', async () => {
    const ctx = awsContext(emu, 'aws1');
    await driver.prepare!(ctx);
    ourGroups()[0].ingress = [];
    await driver.prepare!(ctx);
    await driver.prepare!(ctx);
    expect(ourGroups().map((g) => g.ingress)).toEqual([[{ protocol: 'tcp', from: 22, to: 22, cidrs: ['0.0.0.0/0'] }]]);
  });

  it('an instance EC2 terminated by a launch failure (Client.*) is error with its reason, from getMachine, listMachines and createMachine; one Formwork deleted is gone', async () => {
    const ctx = awsContext(emu, 'aws1');
    const failed = await driver.createMachine(spec('f1'), ctx);
    const deleted = await driver.createMachine(spec('f2'), ctx);
    const message = 'Client.VolumeLimitExceeded: Volume limit exceeded';
    Object.assign(emu.state.instances.get(failed.nativeId)!, { state: 'terminated', terminatedAt: Date.now(), stateReason: { code: 'Client.VolumeLimitExceeded', message } });
    await releaseMachine(driver, deleted, ctx);
    expect(await driver.getMachine(failed.nativeId, ctx)).toMatchObject({ state: 'error', stateReason: message });
    expect(await driver.createMachine(spec('f1'), ctx)).toMatchObject({ nativeId: failed.nativeId, state: 'error', stateReason: message });
    expect((await driver.listMachines(ctx)).map((m) => [m.nativeId, m.state])).toEqual([[failed.nativeId, 'error']]);
    expect(await driver.getMachine(deleted.nativeId, ctx)).toBeUndefined();
  });

  it('an IdempotentParameterMismatch whose instance is not listed yet (EC2\'s lag) returns that instance, launching nothing', async () => {
    const sdk = new EC2Client({ endpoint: emu.endpoint, region: emu.region, credentials: emu.credentials, maxAttempts: 1 });
    const out = await sdk.send(new RunInstancesCommand({ ImageId: 'ami-0e86e20dae9224db8', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, ClientToken: clientToken('formwork-t1-0'), TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(ownershipTags('aws1', 't1')).map(([Key, Value]) => ({ Key, Value })) }] }));
    const id = out.Instances![0].InstanceId!;
    emu.state.instances.get(id)!.hiddenReads = 2; // missed by the create's first look and the first look after the refusal
    expect((await driver.createMachine(spec('t1'), awsContext(emu, 'aws1'))).nativeId).toBe(id);
    expect(emu.state.instances.size).toBe(1);
    sdk.destroy();
  });

  it('a policy without ec2:GetConsoleOutput (UnauthorizedOperation) leaves the machine without a host key, not failed', async () => {
    const send = EC2Client.prototype.send;
    const denied = vi.spyOn(EC2Client.prototype, 'send').mockImplementation(function (this: EC2Client, command: unknown, ...rest: unknown[]) {
      if (command instanceof GetConsoleOutputCommand) return Promise.reject(Object.assign(new Error('You are not authorized to perform this operation.'), { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } }));
      return (send as (...a: unknown[]) => Promise<unknown>).call(this, command, ...rest);
    } as never);
    try {
      const ctx = awsContext(emu, 'aws1');
      const ready = await awaitReadiness(driver, await driver.createMachine(spec('k1'), ctx), ctx, { waitSeconds: 3, log: () => undefined });
      expect(ready.state).toBe('running');
      expect(ready.hostKey).toBeUndefined();
      expect(denied.mock.calls.some(([c]) => c instanceof GetConsoleOutputCommand)).toBe(true);
    } finally {
      denied.mockRestore();
    }
  });

  it('a gone instance costs one try, not the call policy\'s six: reading and deleting it are answered at once', async () => {
    const ctx = awsContext(emu, 'aws1');
    expect(await driver.getMachine('i-0123456789abcdef0', ctx)).toBeUndefined();
    await driver.deleteMachine('i-0123456789abcdef0', ctx);
    expect(callPolicyFor(ctx).retries).toEqual({});
  });

  it('refuses before launch a node needing an Elastic IP when the account holds its quota (vpc-max-elastic-ips), launching nothing', async () => {
    await emu.close();
    emu = await startTestEmulator({ addressQuota: 1 });
    readinessProbe.tcp = probeFor(emu.backend);
    const ctx = awsContext(emu, 'aws1');
    await awaitReadiness(driver, await driver.createMachine(spec('q1'), ctx), ctx, { waitSeconds: 3, log: () => undefined });
    await expect(driver.createMachine(spec('q2'), ctx)).rejects.toMatchObject({ code: 'PROVIDER_QUOTA', message: expect.stringMatching(/node q2 needs an Elastic IP.*holds 1 of its quota of 1.*nothing was launched.*release unused ones/) });
    expect([...emu.state.instances.values()].map((i) => i.tags['formwork.io/node-id'])).toEqual(['q1']);
    expect((await driver.createMachine(spec('q2'), awsContext(emu, 'aws1', { publicAddress: 'none' }))).state).toBe('booting');
  });
});
