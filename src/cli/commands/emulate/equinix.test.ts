import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { startEmulate } from './testing.js';

const start = (args: string[]) => startEmulate('equinix', args);

describe('formwork emulate equinix', () => {
  it('prints a Secret and a Provider whose token and baseUrl the API accepts; Ctrl-C stops it', async () => {
    const run = await start(['--subnet-index', '59', '--faults', 'slow=0%@1s']);
    const [secret, provider] = parseAllDocuments(run.out()).map((d) => d.toJSON()) as [{ kind: string; name: string; data: { apiToken: string } }, { kind: string; name: string; type: string; credentialsSecret: string; settings: Record<string, unknown> }];
    expect(secret).toMatchObject({ kind: 'Secret', name: 'equinix-emulator-59-credentials', data: { apiToken: expect.any(String) } });
    expect(provider).toMatchObject({ kind: 'Provider', name: 'equinix-emulator-59', type: 'equinix', credentialsSecret: 'equinix-emulator-59-credentials', settings: { metro: 'da', readinessTimeoutSeconds: 300, baseUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/metal\/v1$/) } });
    const project = await fetch(`${String(provider.settings.baseUrl)}/projects/${String(provider.settings.project)}`, { headers: { 'X-Auth-Token': secret.data.apiToken } });
    expect(project.status).toBe(200);
    const refused = await fetch(`${String(provider.settings.baseUrl)}/projects`, { headers: { 'X-Auth-Token': 'nope' } });
    expect(await refused.json()).toEqual({ errors: ['Invalid authentication token'] });
    expect(await run.stop()).toBe(0);
    expect(run.err()).toContain('emulator stopped.');
  });

  it('refuses a bad fault spec', async () => {
    const bad = await start(['--faults', 'throttle=200%']);
    expect(await bad.stop()).not.toBe(0);
    expect(bad.err()).toMatch(/a probability is from 0 to 1/);
  });
});
