import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProviderContext } from './provider.js';
import { bootPoll } from './readiness.js';
import { loadDriver } from './registry.js';
import { runProviderContract } from './testing/contract-suite.js';
import { fakeDriver, type FakeDriver } from './testing/fake-driver.js';

// The provider contract, on the drivers that need nothing but this process.
bootPoll.ms = 5;
const quiet = { info: () => undefined, warn: () => undefined };
const context = (dataDir: string, providerName: string, settings: Record<string, unknown>): ProviderContext => ({ dataDir, providerName, settings, publicKey: 'ssh-ed25519 AAAA contract', log: quiet });

runProviderContract('in-memory fake', async () => ({ driver: fakeDriver({ bootPolls: 1 }), ctx: context('/nonexistent', 'fake', {}) }), {
  // Its machines have no sockets: TCP/22 answers where the fake says it would.
  probe: async ({ driver }, host) => {
    if (!(driver as FakeDriver).answers(host)) throw new Error(`${host}: connection refused`);
  },
  breakReadiness: ({ driver }) => (driver as FakeDriver).breakNextBoot('unreachable'),
});

let dir = '';
runProviderContract(
  'static',
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'fw-static-contract-'));
    const machines = [
      { name: 'm-1', address: '198.18.200.1', user: 'debian' },
      { name: 'm-2', address: '2001:db8::2', user: 'root', port: 2222 },
    ];
    return { driver: await loadDriver('static'), ctx: context(dir, 'byo', { machines }) };
  },
  { cleanup: () => rm(dir, { recursive: true, force: true }) },
);
