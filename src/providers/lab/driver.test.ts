import { describe, expect, it } from 'vitest';
import { toMachine } from './driver.js';
import { procRef } from './exec.js';
import type { HostState } from './host.js';

describe('toMachine', () => {
  // A host whose launcher is alive (this test process stands in for it).
  const host = (stage: HostState['stage']): HostState =>
    ({
      name: 'h1',
      stage,
      launcher: procRef(process.pid),
      creator: undefined,
      nspawnPidFile: '/nonexistent',
      publicAddress: '198.18.0.10',
      privateAddress: '198.18.1.10',
      spec: {},
    }) as unknown as HostState;

  it('reports a running host as running, and one whose delete did not finish as error, even with its processes alive', () => {
    expect(toMachine(host('running')).state).toBe('running');
    // A server stopped mid-delete leaves the stage at 'deleting': that host is not one to keep and use.
    expect(toMachine(host('deleting')).state).toBe('error');
  });
});
