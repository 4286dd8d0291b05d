import { DescribeAvailabilityZonesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startEmulate } from './testing.js';

const start = (args: string[]) => startEmulate('aws', args);

describe('formwork emulate aws', () => {
  it('prints a Secret and a Provider whose credentials and endpoint the SDK accepts; Ctrl-C stops it', async () => {
    const run = await start(['--faults', 'slow=10%@10ms', '--provider-name', 'aws-demo']);
    expect(run.out()).toContain('# AWS emulator: EC2 Query API at http://127.0.0.1:');
    const [secret, provider] = parseAllDocuments(run.out()).map((d) => d.toJS()) as [{ kind: string; name: string; data: { accessKeyId: string; secretAccessKey: string } }, { kind: string; name: string; type: string; credentialsSecret: string; settings: { region: string; endpoint: string; readinessTimeoutSeconds: number } }];
    expect(secret).toMatchObject({ kind: 'Secret', name: 'aws-demo-credentials' });
    expect(provider).toMatchObject({ kind: 'Provider', name: 'aws-demo', type: 'aws', credentialsSecret: 'aws-demo-credentials', settings: { region: 'us-east-1', readinessTimeoutSeconds: 300 } });
    const sdk = new EC2Client({ endpoint: provider.settings.endpoint, region: provider.settings.region, credentials: secret.data, maxAttempts: 1 });
    expect((await sdk.send(new DescribeAvailabilityZonesCommand({}))).AvailabilityZones?.map((z) => z.ZoneName)).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    sdk.destroy();
    expect(await run.stop()).toBe(0);
    expect(run.err()).toContain('emulator stopped.');
  });

  it('refuses a malformed fault spec, naming the faults it knows', async () => {
    const run = await start(['--faults', 'meteor=1']);
    expect(await run.stop()).not.toBe(0);
    expect(run.err()).toMatch(/unknown fault "meteor"/);
  });
});
