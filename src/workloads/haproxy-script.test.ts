import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scriptHost, type ScriptHost } from './testing/scripts.js';

/** The built-in haproxy pack's script (workloads/haproxy/haproxy.sh), run against stub commands. */

let host: ScriptHost;
afterEach(() => fs.rmSync(host.dir, { recursive: true, force: true }));

/** haproxy -c refuses a config binding 203.0.113.9 (as if that address were not the host's). */
function haproxyHost(): ScriptHost {
  const h = scriptHost();
  h.real('python3');
  fs.mkdirSync(h.file('etc/haproxy'));
  h.stub('haproxy', 'echo "haproxy $*" >> "$CALLS"; if grep -q "bind 203.0.113.9" "$3"; then echo "[ALERT] cannot bind socket (Cannot assign requested address) [203.0.113.9:2379]"; exit 1; fi; echo "Configuration file is valid"');
  h.stub('systemctl', 'echo "systemctl $*" >> "$CALLS"; case "$1" in is-active) [ -e "$ROOT/active" ];; start|reload) touch "$ROOT/active";; esac');
  return h;
}
const env = (h: ScriptHost, bind: string, backends: string[]) => ({
  FW_INPUT_BIND_ADDRESS: bind,
  FW_INPUT_PORT: '2379',
  FW_INPUT_BACKENDS: JSON.stringify(backends),
  FW_OUTPUTS: path.join(h.dir, 'outputs.json'),
});

describe('haproxy.sh', () => {
  it('checks the config before it goes live, saying why haproxy refuses it, and a retry does not reload it', async () => {
    host = haproxyHost();
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await host.run('haproxy/haproxy.sh', env(host, '203.0.113.9', ['http://10.0.0.1:2379']));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('the rendered config does not pass haproxy -c');
      expect(r.stderr).toContain('cannot bind socket (Cannot assign requested address)');
    }
    expect(fs.existsSync(host.file('etc/haproxy/haproxy.cfg'))).toBe(false);
    expect(fs.readdirSync(host.file('etc/haproxy'))).toEqual([]); // no temp file left
    expect(host.calls().filter((c) => c.startsWith('systemctl'))).toEqual([]);
  });

  it('refuses a backend without a port, naming it', async () => {
    host = haproxyHost();
    const r = await host.run('haproxy/haproxy.sh', env(host, '198.51.100.1', ['10.0.0.1:2379', '10.0.0.2']));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("haproxy: backend '10.0.0.2' has no host and port");
    expect(fs.existsSync(host.file('etc/haproxy/haproxy.cfg'))).toBe(false);
  });

  it('writes a checked config and starts haproxy, then reloads it on the next run', async () => {
    host = haproxyHost();
    const backends = ['http://10.0.0.1:2379', '10.0.0.2:2379'];
    const r = await host.run('haproxy/haproxy.sh', env(host, '198.51.100.1', backends));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('haproxy: wrote config with 2 backends');
    const cfg = fs.readFileSync(host.file('etc/haproxy/haproxy.cfg'), 'utf8');
    expect(cfg).toContain('    bind 198.51.100.1:2379\n');
    expect(cfg).toContain('    server b1 10.0.0.2:2379 check');
    expect(host.calls()).toContain('systemctl start haproxy');
    expect(JSON.parse(fs.readFileSync(host.file('outputs.json'), 'utf8'))).toEqual({ frontend: '198.51.100.1:2379' });
    const again = await host.run('haproxy/haproxy.sh', env(host, '198.51.100.1', backends));
    expect(again.stdout).not.toContain('wrote config');
    expect(host.calls()).toContain('systemctl reload haproxy');
  });
});
