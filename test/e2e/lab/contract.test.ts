/**
 * The provider contract suite (src/providers/testing/contract-suite.ts) on real lab hosts:
 * the same tests the in-memory fake and static pass in every unit run. Needs root and the
 * lab's tools; the base image is shared with the other lab e2e tests (FORMWORK_LAB_CACHE).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../../src/ssh/keys.js';
import { baseDirFor, ensureBaseImage, labLeftovers, missingTools } from '../../../src/providers/lab/index.js';
import { loadDriver } from '../../../src/providers/registry.js';
import { runProviderContract } from '../../../src/providers/testing/contract-suite.js';
import { expect } from 'vitest';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingTools() : [];
const skip = !isRoot ? 'must run as root' : missing.length ? `missing tools: ${missing.map((m) => m.tool).join(', ')}` : undefined;
const CACHE = process.env.FORMWORK_LAB_CACHE ?? '/var/tmp/formwork-lab-cache';
const quiet = { info: () => undefined, warn: (m: string) => console.warn(m) };

let dir = '';
const settings = () => ({ subnetIndex: 13, baseDir: baseDirFor(CACHE) });

runProviderContract(
  'lab',
  async () => {
    await ensureBaseImage(CACHE, quiet);
    dir = await mkdtemp(join(tmpdir(), 'fw-lab-contract-'));
    return {
      driver: await loadDriver('lab'),
      ctx: { dataDir: dir, providerName: 'contract', settings: settings(), publicKey: generateKeyPair('contract').publicKey, log: quiet },
    };
  },
  {
    timeoutMs: 600_000,
    ...(skip ? { skip } : {}),
    cleanup: async () => {
      if (!dir) return;
      // The suite's teardown ran: nothing of this provider is left in the kernel or the data dir.
      const left = await labLeftovers({ dataDir: dir, providerName: 'contract', settings: settings() });
      await rm(dir, { recursive: true, force: true });
      expect(left).toMatchObject({ netns: [], links: [], mounts: [], processes: [], stateFiles: [] });
    },
  },
);
