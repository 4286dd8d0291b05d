import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MemoryBackend } from '../emulation/hosts.js';
import { readinessProbe } from '../readiness.js';
import { awsDriver as driver } from './driver.js';
import type { AwsEmulator } from './emulator/index.js';
import { awsContext, fastPolls, forgetAll, KeyedMemoryBackend, probeFor, startTestEmulator } from './testing.js';

fastPolls();

/** The aws driver recovering from half-done work: lost answers, crashes between two calls, failed launches. */
describe('aws driver recovery', () => {
  let emu: AwsEmulator & { backend: MemoryBackend };
  const realProbe = readinessProbe.tcp;
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
});
