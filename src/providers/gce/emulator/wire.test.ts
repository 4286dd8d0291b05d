import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../emulation/hosts.js';
import { EMULATOR_STATE_PATH, parseFaults } from '../../emulation/faults.js';
import { signedAssertion, type ServiceAccountKey } from '../auth.js';
import { startGceEmulator, type GceEmulator } from './index.js';

const FIXTURES = join(import.meta.dirname, '../testing/fixtures/libcloud/gce');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
const keysOf = (o: unknown) => Object.keys(o as object).sort();

describe('gce emulator wire format', () => {
  let emu: GceEmulator;
  let token: string;
  const api = async (method: string, path: string, body?: unknown, auth = true) => {
    const res = await fetch(`${emu.endpoint}/projects/formwork-emulated${path}`, { method, headers: { ...(auth ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
  };
  const login = async (key: ServiceAccountKey) => {
    const res = await fetch(key.token_uri!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signedAssertion(key, Math.floor(Date.now() / 1000)) }) });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };
  const waitDone = async (op: Record<string, any>) => {
    for (let i = 0; i < 200 && op.status !== 'DONE'; i++) op = (await api('GET', `/zones/us-central1-a/operations/${op.name}`)).json;
    return op;
  };
  const insert = (name: string) => ({ name, machineType: 'zones/us-central1-a/machineTypes/e2-small', disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/debian-cloud/global/images/family/debian-12' } }], networkInterfaces: [{ network: 'global/networks/default' }], metadata: { items: [{ key: 'ssh-keys', value: 'admin:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q x' }] }, labels: { 'formwork-node-id': 'n1' } });

  beforeEach(async () => {
    emu = await startGceEmulator({ backend: new MemoryBackend(), bootDelayMs: 0, operationDelayMs: 0 });
    const r = await login(JSON.parse(emu.serviceAccountJson) as ServiceAccountKey);
    token = r.json.access_token as string;
  });
  afterEach(async () => emu.close());

  it('issues a token only for a JWT signed by its service account, and wants it on every call', async () => {
    const key = JSON.parse(emu.serviceAccountJson) as ServiceAccountKey & { type: string };
    expect(key).toMatchObject({ type: 'service_account', token_uri: emu.endpoint.replace('/compute/v1', '/token'), client_email: 'formwork@formwork-emulated.iam.gserviceaccount.com' });
    expect(keysOf((await login(key)).json)).toEqual(['access_token', 'expires_in', 'token_type']);
    const other = await startGceEmulator({ backend: new MemoryBackend() });
    try {
      const forged = { ...key, private_key: (JSON.parse(other.serviceAccountJson) as ServiceAccountKey).private_key };
      expect(await login(forged)).toEqual({ status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
    } finally {
      await other.close();
    }
    const anon = await api('GET', '', undefined, false);
    expect(anon.status).toBe(401);
    expect(anon.json.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', errors: [expect.objectContaining({ reason: 'required' })] });
  });

  it('answers in the recorded shapes: project, zone, machine types, images, instance, operations, serial port, errors', async () => {
    expect(keysOf((await api('GET', '')).json)).toEqual(expect.arrayContaining(keysOf(fixture('project.json')).filter((k) => k !== 'description' && k !== 'usageExportLocation')));
    expect(keysOf((await api('GET', '/zones/us-central1-a')).json)).toEqual(expect.arrayContaining(keysOf(fixture('zones_us-central1-a.json'))));
    const types = (await api('GET', '/zones/us-central1-a/machineTypes')).json;
    expect(keysOf(types.items[0])).toEqual(expect.arrayContaining(keysOf((fixture('zones_us-central1-a_machineTypes.json').items as object[])[0])));
    const images = await fetch(`${emu.endpoint}/projects/debian-cloud/global/images`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<{ items: object[] }>);
    expect(keysOf(images.items[1])).toEqual(expect.arrayContaining(keysOf((fixture('projects_debian-cloud_global_images.json').items as object[])[0]).filter((k) => k !== 'preferredKernel')));
    const op = (await api('POST', '/zones/us-central1-a/instances?requestId=r-1', insert('node-name'))).json;
    expect(keysOf(op)).toEqual(keysOf(fixture('zones_us-central1-a_instances_post.json')).filter((k) => k !== 'endTime').concat('targetId').sort());
    const done = await waitDone(op);
    expect(keysOf(done)).toEqual(expect.arrayContaining(keysOf(fixture('operations_operation_zones_us-central1-a_instances_post.json'))));
    expect((await api('POST', '/zones/us-central1-a/instances?requestId=r-1', insert('node-name'))).json.name).toBe(op.name); // the same requestId: the same operation
    const inst = (await api('GET', '/zones/us-central1-a/instances/node-name')).json;
    expect(keysOf(inst)).toEqual(expect.arrayContaining(keysOf(fixture('zones_us-central1-a_instances_node-name.json'))));
    expect(inst).toMatchObject({ kind: 'compute#instance', status: 'RUNNING', id: expect.stringMatching(/^\d+$/), networkInterfaces: [{ networkIP: expect.stringMatching(/^10\.20\.0\./), accessConfigs: [] }] });
    const serial = (await api('GET', '/zones/us-central1-a/instances/node-name/serialPort')).json;
    expect(keysOf(serial)).toEqual(expect.arrayContaining(keysOf(fixture('zones_us-central1-a_instances_node_name_getSerialOutput.json'))));
    const missing = await api('GET', '/global/images/family/coreos-stable');
    expect(missing.status).toBe(404);
    expect(keysOf(missing.json.error)).toEqual(expect.arrayContaining(keysOf(fixture('global_images_family_notfound.json').error)));
    expect(missing.json.error.errors[0]).toMatchObject({ domain: 'global', reason: 'notFound' });
  });

  it('pages lists with nextPageToken and filters instances by label; attaches an access config as the host\'s floating address', async () => {
    const first = (await api('GET', '/zones/us-central1-a/machineTypes?maxResults=3')).json;
    expect(first.items).toHaveLength(3);
    const second = (await api('GET', `/zones/us-central1-a/machineTypes?maxResults=3&pageToken=${first.nextPageToken}`)).json;
    expect(second.items[0].name).not.toBe(first.items[0].name);
    await waitDone((await api('POST', '/zones/us-central1-a/instances', insert('a1'))).json);
    await waitDone((await api('POST', '/zones/us-central1-a/instances', { ...insert('a2'), labels: { 'formwork-node-id': 'n2' } })).json);
    const filtered = (await api('GET', `/zones/us-central1-a/instances?filter=${encodeURIComponent('labels.formwork-node-id=n2')}`)).json;
    expect(filtered.items.map((i: { name: string }) => i.name)).toEqual(['a2']);
    const backend = (emu as unknown as { state: { instances: Map<string, { host?: { privateAddress: string } }> } }).state.instances.get('a2')!.host!;
    const op = await waitDone((await api('POST', '/zones/us-central1-a/instances/a2/addAccessConfig?networkInterface=nic0', { type: 'ONE_TO_ONE_NAT', name: 'External NAT' })).json);
    expect(op.error).toBeUndefined();
    const nat = (await api('GET', '/zones/us-central1-a/instances/a2')).json.networkInterfaces[0].accessConfigs[0];
    expect(nat).toMatchObject({ kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: 'External NAT', natIP: expect.stringMatching(/^203\.0\.113\.2\d\d$/) });
    expect(backend.privateAddress).toMatch(/^10\.20\.0\./);
    const state = (await (await fetch(`${emu.endpoint.replace('/compute/v1', '')}${EMULATOR_STATE_PATH}`)).json()) as { resources: Array<{ kind: string; id: string }> };
    expect(state.resources.map((r) => `${r.kind} ${r.id}`).sort()).toEqual(['access-config ' + nat.natIP, 'instance a1', 'instance a2'].sort());
  });

  it('answers faults as Google does: 429 rateLimitExceeded with Retry-After, 503 backendError', async () => {
    const faulty = await startGceEmulator({ backend: new MemoryBackend(), faults: parseFaults('throttle=100%,retry-after=3') });
    try {
      const res = await fetch(`${faulty.endpoint}/projects/formwork-emulated`);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('3');
      expect(((await res.json()) as { error: { errors: Array<{ reason: string }> } }).error.errors[0].reason).toBe('rateLimitExceeded');
      faulty.faults.spec.throttle = 0;
      faulty.faults.spec.error = 1;
      const err = await fetch(`${faulty.endpoint}/projects/formwork-emulated`);
      expect(err.status).toBe(503);
      expect(((await err.json()) as { error: { errors: Array<{ reason: string }> } }).error.errors[0].reason).toBe('backendError');
      expect((await fetch(`${faulty.endpoint.replace('/compute/v1', '')}${EMULATOR_STATE_PATH}`)).status).toBe(200); // never faulted
    } finally {
      await faulty.close();
    }
  });

  it('hands out a Secret and a Provider pointing at itself', () => {
    const [secret, provider] = emu.documents('gce-emu');
    expect(secret).toEqual({ kind: 'Secret', name: 'gce-emu-credentials', data: { serviceAccountJson: emu.serviceAccountJson } });
    expect(provider).toEqual({ kind: 'Provider', name: 'gce-emu', type: 'gce', credentialsSecret: 'gce-emu-credentials', settings: { project: 'formwork-emulated', zone: 'us-central1-a', apiEndpoint: emu.endpoint, readinessTimeoutSeconds: 300 } });
  });
});
