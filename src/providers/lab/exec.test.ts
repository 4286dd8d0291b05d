import { afterEach, describe, expect, it } from 'vitest';
import { run, which } from './exec.js';

describe('run and which', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  // `su` without `-` leaves root with a PATH without sbin: what `which` finds there, `run` must run.
  it('run finds the system tools that which finds, with a PATH that lacks sbin', async () => {
    process.env.PATH = '/usr/bin:/bin';
    expect(which('useradd')).toBe('/usr/sbin/useradd'); // package passwd: on every Debian
    const { stdout } = await run('sh', ['-c', 'command -v useradd; echo "$PATH"']);
    const [found, childPath] = stdout.trim().split('\n');
    expect(found).toBe('/usr/sbin/useradd');
    expect(childPath.startsWith('/usr/bin:/bin:')).toBe(true); // the caller's own order first
    expect(childPath.split(':')).toContain('/usr/sbin');
    await expect(run('useradd', ['--help'])).resolves.toMatchObject({ stdout: expect.stringMatching(/Usage: useradd/) });
  });

  it('stops a command and its children (its process group) when the signal aborts', async () => {
    const ac = new AbortController();
    const p = run('sh', ['-c', 'sleep 381 & sleep 382'], { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'PROVIDER_ERROR', details: { aborted: true } });
    await new Promise((r) => setTimeout(r, 300));
    const { stdout } = await run('ps', ['-eo', 'args']);
    expect(stdout.split('\n').filter((l) => /^sleep 38[12]$/.test(l.trim()))).toEqual([]);
  });

  it('a tool that is nowhere is MISSING_TOOL', async () => {
    await expect(run('formwork-no-such-tool', [])).rejects.toMatchObject({ code: 'MISSING_TOOL' });
  });
});
