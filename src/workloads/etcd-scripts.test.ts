import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scriptHost, type ScriptHost } from './testing/scripts.js';

/** The built-in etcd pack's scripts (workloads/etcd), run against stub commands. */

let host: ScriptHost;
afterEach(() => fs.rmSync(host.dir, { recursive: true, force: true }));

const peers = JSON.stringify(['demo-0', 'demo-1', 'demo-2'].map((node, i) => ({ node, addresses: { private: [`10.0.0.${i + 1}`] } })));
const memberEnv = (h: ScriptHost) => ({
  FW_INPUT_BIND_ADDRESS: '10.0.0.1',
  FW_INPUT_CLIENT_PORT: '2379',
  FW_INPUT_PEER_PORT: '2380',
  FW_INPUT_PEERS: peers,
  FW_INPUT_CLUSTER_TOKEN: 'secret-token',
  FW_OUTPUTS: path.join(h.dir, 'outputs.json'),
});

/** A host as member.sh sees it: systemd (stubbed: `restart` fails while $ROOT/restart-fails exists), users etcd. */
function memberHost(): ScriptHost {
  const h = scriptHost();
  h.real('python3');
  h.stub('hostname', 'echo demo-0');
  h.stub('chown', 'echo "chown $*" >> "$CALLS"');
  // install -o/-g need the etcd user; this machine may not have it.
  h.stub('install', 'echo "install $*" >> "$CALLS"; for a; do last=$a; done; mkdir -p "$last"');
  h.stub(
    'systemctl',
    [
      'echo "systemctl $*" >> "$CALLS"',
      'case "$1" in',
      '  is-active) [ -e "$ROOT/active" ];;',
      '  restart) [ ! -e "$ROOT/restart-fails" ] && touch "$ROOT/active";;',
      '  stop) rm -f "$ROOT/active";;',
      'esac',
    ].join('\n'),
  );
  h.stub('etcd', 'exit 0');
  return h;
}

describe('etcd member.sh', () => {
  it('on a host without etcd: installs with service starts denied, updates package lists first, and uses a data dir of its own', async () => {
    host = memberHost();
    fs.rmSync(path.join(host.dir, 'bin', 'etcd'));
    fs.rmSync(path.join(host.dir, 'bin', 'python3'));
    host.stub('apt-cache', 'echo "apt-cache $*" >> "$CALLS"; [ -e "$ROOT/lists" ]');
    host.stub(
      'apt-get',
      [
        'echo "apt-get $*" >> "$CALLS"',
        'case "$1" in update) touch "$ROOT/lists"; exit 0;; esac',
        '[ -e "$ROOT/lists" ] || { echo "E: Unable to locate package" >&2; exit 100; }',
        'case "$*" in *python3*) ln -s /usr/bin/python3 "$ROOT/bin/python3"; exit 0;; esac',
        // Debian's postinst: starts etcd with its defaults unless policy-rc.d says no (101).
        'if [ -x "$ROOT/usr/sbin/policy-rc.d" ] && ! "$ROOT/usr/sbin/policy-rc.d" etcd start; then echo "start denied" >> "$CALLS"; else mkdir -p "$ROOT/var/lib/etcd/default/member"; touch "$ROOT/active"; fi',
        'printf "#!/bin/sh\\n" > "$ROOT/bin/etcd"; chmod +x "$ROOT/bin/etcd"',
      ].join('\n'),
    );
    const r = await host.run('etcd/member.sh', memberEnv(host));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const calls = host.calls();
    expect(calls).toContain('apt-get update -qq');
    expect(calls.some((c) => c.startsWith('apt-get install') && c.includes('python3-minimal'))).toBe(true);
    expect(calls).toContain('start denied');
    expect(fs.existsSync(host.file('usr/sbin/policy-rc.d'))).toBe(false); // not left behind
    const conf = JSON.parse(fs.readFileSync(host.file('etc/etcd/formwork.yml'), 'utf8')) as Record<string, string>;
    expect(conf['data-dir']).toMatch(new RegExp(`^${host.dir}/var/lib/etcd/formwork-[0-9a-f]{16}$`));
    expect(conf['initial-cluster']).toBe('demo-0=http://10.0.0.1:2380,demo-1=http://10.0.0.2:2380,demo-2=http://10.0.0.3:2380');
    expect(calls).toContain('systemctl restart --no-block etcd');
    expect(JSON.parse(fs.readFileSync(host.file('outputs.json'), 'utf8'))).toEqual({ 'client-url': 'http://10.0.0.1:2379', 'member-name': 'demo-0', 'cluster-size': 3 });
  });

  it('drops the data dir of an etcd the package started anyway (an image policy allowing starts)', async () => {
    host = memberHost();
    fs.rmSync(path.join(host.dir, 'bin', 'etcd'));
    fs.writeFileSync(host.file('usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    host.stub('apt-cache', 'exit 0');
    host.stub(
      'apt-get',
      [
        'echo "apt-get $*" >> "$CALLS"',
        'if "$ROOT/usr/sbin/policy-rc.d" etcd start; then mkdir -p "$ROOT/var/lib/etcd/default/member"; touch "$ROOT/active"; fi',
        'printf "#!/bin/sh\\n" > "$ROOT/bin/etcd"; chmod +x "$ROOT/bin/etcd"',
      ].join('\n'),
    );
    const r = await host.run('etcd/member.sh', memberEnv(host));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(host.file('var/lib/etcd/default'))).toBe(false);
    expect(fs.readFileSync(host.file('usr/sbin/policy-rc.d'), 'utf8')).toContain('exit 0'); // the image's own, kept
    expect(host.calls()).toContain('systemctl stop etcd');
  });

  it('keeps the data dir this cluster already uses (a config from before the pack named one), and not another cluster\'s', async () => {
    host = memberHost();
    const config = host.file('etc/etcd/formwork.yml');
    fs.mkdirSync(path.dirname(config), { recursive: true });
    const dataDir = () => (JSON.parse(fs.readFileSync(config, 'utf8')) as Record<string, string>)['data-dir'];
    fs.writeFileSync(config, JSON.stringify({ name: 'demo-0', 'initial-cluster-token': 'secret-token' }));
    expect((await host.run('etcd/member.sh', memberEnv(host))).code).toBe(0);
    expect(dataDir()).toBe(`${host.dir}/var/lib/etcd/default`); // the same cluster: its data stays
    fs.writeFileSync(config, JSON.stringify({ name: 'demo-0', 'initial-cluster-token': 'another-clusters', 'data-dir': '/var/lib/etcd/old' }));
    expect((await host.run('etcd/member.sh', memberEnv(host))).code).toBe(0);
    expect(dataDir()).toMatch(/\/var\/lib\/etcd\/formwork-[0-9a-f]{16}$/); // another cluster's data is not joined
  });

  it('restarts etcd on the retry of a run cut short after writing a new config', async () => {
    host = memberHost();
    fs.writeFileSync(host.file('active'), ''); // etcd runs, with an older config
    fs.writeFileSync(host.file('restart-fails'), '');
    const first = await host.run('etcd/member.sh', memberEnv(host));
    expect(first.code).not.toBe(0);
    expect(fs.existsSync(host.file('etc/etcd/formwork.yml'))).toBe(true);
    fs.rmSync(host.file('restart-fails'));
    fs.writeFileSync(host.file('calls.log'), '');
    expect((await host.run('etcd/member.sh', memberEnv(host))).code).toBe(0);
    expect(host.calls()).toContain('systemctl restart --no-block etcd');
    // A third run, nothing changed and etcd running: no restart.
    fs.writeFileSync(host.file('calls.log'), '');
    expect((await host.run('etcd/member.sh', memberEnv(host))).code).toBe(0);
    expect(host.calls().filter((c) => c.includes('restart'))).toEqual([]);
  });
});

describe('etcd health.sh', () => {
  const endpoints = ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379'];
  const healthEnv = (h: ScriptHost, given = endpoints) => ({
    FW_INPUT_ENDPOINTS: JSON.stringify(given),
    FW_INPUT_CLUSTER_SIZES: JSON.stringify(given.map(() => 3)),
    FW_INPUT_TIMEOUT_SECONDS: '1',
    FW_OUTPUTS: path.join(h.dir, 'outputs.json'),
  });
  /** etcdctl answering for members whose cluster IDs are `ids` (one per endpoint). */
  function etcdctl(h: ScriptHost, ids: string[]) {
    const status = JSON.stringify(endpoints.map((e, i) => ({ Endpoint: e, Status: { header: { cluster_id: Number(ids[i]), member_id: i + 1 } } })));
    const one = ids.every((x) => x === ids[0]);
    const list = one ? endpoints.map((_e, i) => `${i}, started, demo-${i}, http://10.0.0.${i + 1}:2380, http://10.0.0.${i + 1}:2379, false`).join('\n') : '1, started, demo-0, http://10.0.0.1:2380, http://10.0.0.1:2379, false';
    h.stub(
      'etcdctl',
      [
        'for a; do case "$a" in',
        `  health) for e in ${endpoints.join(' ')}; do echo "$e is healthy"; done; exit 0;;`,
        `  status) echo '${status}'; exit 0;;`,
        `  list) printf '%s\\n' '${list.split('\n').join("' '")}'; exit 0;;`,
        'esac; done; exit 2',
      ].join('\n'),
    );
  }

  it('fails when every endpoint is healthy but they are separate one-member clusters', async () => {
    host = scriptHost();
    etcdctl(host, ['111', '222', '333']);
    const r = await host.run('etcd/health.sh', healthEnv(host));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not one cluster of 3 started members: 3 cluster ID(s), 1 member(s) listed, 1 started');
    expect(fs.existsSync(host.file('outputs.json'))).toBe(false);
  });

  it('given only its own node\'s member (as the planner binds it), still wants the whole cluster', async () => {
    host = scriptHost();
    etcdctl(host, ['111', '222', '333']);
    const r = await host.run('etcd/health.sh', healthEnv(host, [endpoints[0]]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not one cluster of 3 started members');
  });

  it('passes for one cluster of all the endpoints, without python3', async () => {
    host = scriptHost();
    etcdctl(host, ['18446744073709551000', '18446744073709551000', '18446744073709551000']);
    const r = await host.run('etcd/health.sh', healthEnv(host));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(host.file('outputs.json'), 'utf8'))).toEqual({ healthy: endpoints });
  });
});
