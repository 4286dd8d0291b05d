import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { main } from '../../main.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function start(args: string[]) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-emulate-eq-'));
  dirs.push(dataDir);
  const ac = new AbortController();
  let out = '';
  let err = '';
  const done = main(['--data-dir', dataDir, 'emulate', 'equinix', '--backend', 'memory', ...args], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: (async function* () {})(), env: {}, cwd: os.tmpdir(), signal: ac.signal });
  const deadline = Date.now() + 10_000;
  while (!out.includes('kind: Provider') && Date.now() < deadline) {
    if (err.includes('error')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { stop: async () => (ac.abort(), done), out: () => out, err: () => err };
}

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
