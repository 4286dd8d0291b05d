import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { gceDriver } from '../../../providers/gce/driver.js';
import { startEmulate } from './testing.js';

const start = (args: string[]) => startEmulate('gce', args);

describe('formwork emulate gce', () => {
  it('prints a Secret and a Provider whose service account logs our driver in; Ctrl-C stops it', async () => {
    const run = await start(['--subnet-index', '55']);
    const [secret, provider] = parseAllDocuments(run.out()).map((d) => d.toJS()) as [{ kind: string; name: string; data: { serviceAccountJson: string } }, { kind: string; name: string; type: string; credentialsSecret: string; settings: Record<string, unknown> }];
    expect(secret).toMatchObject({ kind: 'Secret', name: 'gce-emulator-55-credentials' });
    expect(provider).toMatchObject({ kind: 'Provider', name: 'gce-emulator-55', type: 'gce', credentialsSecret: 'gce-emulator-55-credentials', settings: { project: 'formwork-emulated', zone: 'us-central1-a', apiEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/compute\/v1$/), readinessTimeoutSeconds: 300 } });
    expect(JSON.parse(secret.data.serviceAccountJson).token_uri).toBe(String(provider.settings.apiEndpoint).replace('/compute/v1', '/token'));
    await gceDriver.check!({ providerName: provider.name, settings: provider.settings, credentials: secret.data, log: { info: () => undefined, warn: () => undefined } });
    expect(run.out()).toMatch(/# Google Compute Engine emulator: project formwork-emulated, zone us-central1-a/);
    expect(await run.stop()).toBe(0);
    expect(run.err()).toContain('emulator stopped.');
  });

  it('refuses a fault spec it cannot read', async () => {
    const bad = await start(['--faults', 'throttle=2']);
    expect(await bad.stop()).not.toBe(0);
    expect(bad.err()).toMatch(/--faults throttle=2: a probability is from 0 to 1/);
  });
});
