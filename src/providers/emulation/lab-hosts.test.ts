import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabBackend } from './lab-hosts.js';

describe('LabBackend (without making hosts)', () => {
  it("lies on its subnet index's two /24s, in a lab provider of its own; closing with no host made touches nothing", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-osemu-lab-'));
    const backend = new LabBackend({ emulator: 'openstack', dataDir, subnetIndex: 40, log: { info: () => undefined, warn: () => undefined } });
    expect([backend.publicPrefix, backend.privatePrefix, backend.publicGateway, backend.providerName]).toEqual(['198.18.80', '198.18.81', '198.18.80.1', 'openstack-emulator-40']);
    expect(backend.settings).toEqual({ subnetIndex: 40 });
    await backend.close();
    expect(fs.readdirSync(dataDir)).toEqual([]);
    fs.rmSync(dataDir, { recursive: true });
  });
});
