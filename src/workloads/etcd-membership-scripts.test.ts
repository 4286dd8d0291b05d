import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scriptHost, type ScriptHost } from './testing/scripts.js';

/**
 * The etcd pack's membership changes (workloads/etcd: member.sh joining, remove.sh leaving,
 * health.sh counting started members), run against stub commands: etcdctl answers from
 * files under the fake root, and logs every call.
 */

let host: ScriptHost;
afterEach(() => fs.rmSync(host.dir, { recursive: true, force: true }));

const peerList = (n: number) => Array.from({ length: n }, (_v, i) => ({ node: `demo-${i}`, addresses: { private: [`10.0.0.${i + 1}`] } }));
const env = (h: ScriptHost, peers: unknown[], extra: Record<string, string> = {}) => ({
  FW_INPUT_BIND_ADDRESS: '10.0.0.1',
  FW_INPUT_CLIENT_PORT: '2379',
  FW_INPUT_PEER_PORT: '2380',
  FW_INPUT_PEERS: JSON.stringify(peers),
  FW_INPUT_CLUSTER_TOKEN: 'secret-token',
  FW_PREVIOUS_INPUTS: '{}',
  FW_OUTPUTS: path.join(h.dir, 'outputs.json'),
  ...extra,
});

/**
 * A host with systemd and etcdctl stubbed. etcdctl: endpoints listed in $ROOT/live answer
 * quorum reads; `member list` prints $ROOT/members.json (or its text form); `member add`
 * appends an unstarted member; `lock` prints its key and holds until SIGTERM ("unlock").
 */
function etcdHost(): ScriptHost {
  const h = scriptHost();
  h.real('python3', 'sed', 'seq');
  h.stub('hostname', 'echo demo-0');
  h.stub('chown', 'exit 0');
  h.stub('install', 'for a; do last=$a; done; mkdir -p "$last"');
  h.stub('etcd', 'exit 0');
  h.stub(
    'systemctl',
    ['echo "systemctl $*" >> "$CALLS"', 'case "$1" in', '  is-active) [ -e "$ROOT/active" ];;', '  restart) touch "$ROOT/active";;', '  stop) rm -f "$ROOT/active";;', 'esac'].join('\n'),
  );
  h.stub(
    'etcdctl',
    [
      'ep=""; args=""; purl=""',
      'for a; do case "$a" in --endpoints=*) ep=${a#--endpoints=};; --dial-timeout=*|--command-timeout=*) ;; *) args="$args $a";; esac; case "$a" in --peer-urls=*) purl=${a#--peer-urls=};; esac; done',
      'echo "etcdctl$args @$ep" >> "$CALLS"',
      'live() { grep -qxF "$ep" "$ROOT/live" 2>/dev/null; }',
      'case "$args" in',
      '  " get --consistency=l"*) live;;',
      '  " lock "*) live || exit 1; echo "formwork/membership/694d"; trap \'echo unlock >> "$CALLS"; exit 0\' TERM; while :; do sleep 0.05; done;;',
      '  " member list -w json") live && cat "$ROOT/members.json";;',
      // The text form: "ID, status, name, peer URLs, client URLs, learner".
      '  " member list") live && python3 -c \'import json,os; [print(format(m["ID"],"x")+", "+("started" if m.get("name") else "unstarted")+", "+m.get("name","")+", "+",".join(m["peerURLs"])+", "+",".join(m.get("clientURLs",[]))+", false") for m in json.load(open(os.environ["ROOT"]+"/members.json"))["members"]]\';;',
      // $ROOT/refusals: how many adds etcd refuses first, as it does right after a member started.
      '  " member add "*) if [ -s "$ROOT/refusals" ]; then n=$(cat "$ROOT/refusals"); echo $((n - 1)) > "$ROOT/refusals"; [ "$n" -le 0 ] || { echo "Error: etcdserver: unhealthy cluster" >&2; exit 1; }; fi; live && python3 -c \'import json,os,sys; p=os.environ["ROOT"]+"/members.json"; d=json.load(open(p)); d["members"].append({"ID":99,"peerURLs":[sys.argv[1]]}); json.dump(d,open(p,"w"))\' "$purl";;',
      '  " member remove "*) live;;',
      '  " endpoint health") [ -e "$ROOT/active" ];;',
      '  *) exit 2;;',
      'esac',
    ].join('\n'),
  );
  return h;
}

const member = (id: number, name: string, i: number) => ({ ID: id, name, peerURLs: [`http://10.0.0.${i}:2380`], clientURLs: [`http://10.0.0.${i}:2379`] });
const writeMembers = (h: ScriptHost, members: unknown[]) => fs.writeFileSync(h.file('members.json'), JSON.stringify({ members }));
const config = (h: ScriptHost) => JSON.parse(fs.readFileSync(h.file('etc/etcd/formwork.yml'), 'utf8')) as Record<string, string>;

describe('etcd member.sh: joining and staying', () => {
  it('a member without data on a live cluster joins: lock, member add, state existing with the member list, lock released once it answers', async () => {
    host = etcdHost();
    fs.writeFileSync(host.file('live'), 'http://10.0.0.2:2379\nhttp://10.0.0.3:2379\n');
    writeMembers(host, [member(11, 'demo-1', 2), member(12, 'demo-2', 3)]);
    const r = await host.run('etcd/member.sh', env(host, peerList(3)));
    expect(r.code, r.stderr).toBe(0);
    const calls = host.calls().filter((c) => !c.startsWith('systemctl is-'));
    const at = (prefix: string) => calls.findIndex((c) => c.startsWith(prefix));
    expect(calls).toContain('etcdctl member add demo-0 --peer-urls=http://10.0.0.1:2380 @http://10.0.0.2:2379');
    // In order: lock, add, start, wait until it answers, unlock.
    const order = ['etcdctl lock formwork/membership', 'etcdctl member add', 'systemctl restart', 'etcdctl endpoint health', 'unlock'].map(at);
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(config(host)).toMatchObject({
      'initial-cluster-state': 'existing',
      'initial-cluster': 'demo-1=http://10.0.0.2:2380,demo-2=http://10.0.0.3:2380,demo-0=http://10.0.0.1:2380',
    });
    expect(JSON.parse(fs.readFileSync(host.file('outputs.json'), 'utf8'))).toMatchObject({ 'cluster-size': 3 });
  });

  it('a joiner waits out etcd refusing the add while the cluster is settling ("unhealthy cluster"), and gives up on other errors', async () => {
    host = etcdHost();
    fs.writeFileSync(host.file('live'), 'http://10.0.0.2:2379\n');
    writeMembers(host, [member(11, 'demo-1', 2)]);
    fs.writeFileSync(host.file('refusals'), '2');
    const r = await host.run('etcd/member.sh', env(host, peerList(2)));
    expect(r.code, r.stderr).toBe(0);
    expect(host.calls().filter((c) => c.startsWith('etcdctl member add'))).toHaveLength(3);
    expect(config(host)['initial-cluster-state']).toBe('existing');

    host = etcdHost();
    fs.writeFileSync(host.file('live'), 'http://10.0.0.2:2379\n');
    fs.writeFileSync(host.file('members.json'), 'not json'); // the add itself fails otherwise: no second try
    const failing = await host.run('etcd/member.sh', env(host, peerList(2)));
    expect(failing.code).not.toBe(0);
    expect(failing.stderr).toContain('member add demo-0 through http://10.0.0.2:2379 failed');
    expect(host.calls().filter((c) => c.startsWith('etcdctl member add'))).toHaveLength(1);
    expect(fs.existsSync(host.file('etc/etcd/formwork.yml'))).toBe(false); // nothing half-written
  });

  it('a joiner already listed (its add done by an earlier attempt) is not added twice', async () => {
    host = etcdHost();
    fs.writeFileSync(host.file('live'), 'http://10.0.0.2:2379\n');
    writeMembers(host, [member(11, 'demo-1', 2), { ID: 99, peerURLs: ['http://10.0.0.1:2380'] }]);
    const r = await host.run('etcd/member.sh', env(host, peerList(2)));
    expect(r.code, r.stderr).toBe(0);
    expect(host.calls().filter((c) => c.includes('member add'))).toEqual([]);
    expect(config(host)['initial-cluster']).toBe('demo-1=http://10.0.0.2:2380,demo-0=http://10.0.0.1:2380');
  });

  it('with no other peer answering a quorum read, a member founds the cluster: every peer, state new, no lock', async () => {
    host = etcdHost();
    const r = await host.run('etcd/member.sh', env(host, peerList(3)));
    expect(r.code, r.stderr).toBe(0);
    expect(config(host)).toMatchObject({ 'initial-cluster-state': 'new', 'initial-cluster': 'demo-0=http://10.0.0.1:2380,demo-1=http://10.0.0.2:2380,demo-2=http://10.0.0.3:2380' });
    expect(host.calls().filter((c) => c.includes(' lock ') || c.includes('member add'))).toEqual([]);
  });

  it('a member with data whose peers grow keeps its config and is not restarted; it reports the new size and what changed', async () => {
    host = etcdHost();
    // Founded with 3: its config and data are there, etcd runs.
    expect((await host.run('etcd/member.sh', env(host, peerList(3)))).code).toBe(0);
    const before = fs.readFileSync(host.file('etc/etcd/formwork.yml'), 'utf8');
    fs.mkdirSync(path.join(config(host)['data-dir'], 'member'), { recursive: true });
    fs.writeFileSync(host.file('live'), 'http://10.0.0.2:2379\n'); // the cluster is live: still no join for a member with data
    fs.writeFileSync(host.file('calls.log'), '');
    const r = await host.run('etcd/member.sh', env(host, peerList(5), { FW_PREVIOUS_INPUTS: JSON.stringify({ peers: peerList(3) }) }));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(host.file('etc/etcd/formwork.yml'), 'utf8')).toBe(before);
    expect(host.calls().filter((c) => c.includes('restart') || c.includes('member add') || c.includes(' lock '))).toEqual([]);
    expect(r.stdout).toContain('peers changed since the last run: added demo-3, demo-4; removed none');
    expect(JSON.parse(fs.readFileSync(host.file('outputs.json'), 'utf8'))).toMatchObject({ 'cluster-size': 5 });
  });
});

describe('etcd remove.sh', () => {
  const removalEnv = (h: ScriptHost, remaining: number[]) => env(h, peerList(5).filter((_p, i) => remaining.includes(i)));
  const seedMember = (h: ScriptHost) => {
    const dataDir = h.file('var/lib/etcd/formwork-abc');
    fs.mkdirSync(path.join(dataDir, 'member'), { recursive: true });
    fs.mkdirSync(h.file('etc/etcd'), { recursive: true });
    fs.writeFileSync(h.file('etc/etcd/formwork.yml'), JSON.stringify({ name: 'demo-0', 'data-dir': dataDir }, null, 1));
    fs.writeFileSync(h.file('etc/default/etcd'), 'ETCD_CONFIG_FILE=x\n');
    fs.writeFileSync(h.file('active'), '');
    writeMembers(h, [member(0xa1, 'demo-0', 1), member(0xa2, 'demo-1', 2), member(0xa3, 'demo-2', 3)]);
    return dataDir;
  };

  it('removes the member by its ID through a remaining member under the lock, then stops etcd and wipes data and config', async () => {
    host = etcdHost();
    const dataDir = seedMember(host);
    fs.writeFileSync(host.file('live'), 'http://10.0.0.3:2379\n'); // demo-1 does not answer; demo-2 does
    const r = await host.run('etcd/remove.sh', removalEnv(host, [1, 2]));
    expect(r.code, r.stderr).toBe(0);
    const calls = host.calls();
    const lockAt = calls.findIndex((c) => c.startsWith('etcdctl lock'));
    const removeAt = calls.indexOf('etcdctl member remove a1 @http://10.0.0.3:2379');
    expect(lockAt).toBeGreaterThanOrEqual(0);
    expect(removeAt).toBeGreaterThan(lockAt);
    expect(calls.indexOf('unlock')).toBeGreaterThan(removeAt);
    expect(calls).toContain('systemctl stop etcd');
    expect(fs.existsSync(dataDir)).toBe(false);
    expect(fs.existsSync(host.file('etc/etcd/formwork.yml'))).toBe(false);
    expect(fs.existsSync(host.file('etc/default/etcd'))).toBe(false);
  });

  it('with members left and none answering, keeps its data and fails (to be retried)', async () => {
    host = etcdHost();
    const dataDir = seedMember(host);
    const r = await host.run('etcd/remove.sh', removalEnv(host, [1, 2]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no remaining member answers a quorum read');
    expect(fs.existsSync(path.join(dataDir, 'member'))).toBe(true);
    expect(host.calls().filter((c) => c.includes('member remove') || c.startsWith('systemctl stop'))).toEqual([]);
  });

  it('the last member (no peers left) is stopped and wiped without asking anyone', async () => {
    host = etcdHost();
    const dataDir = seedMember(host);
    const r = await host.run('etcd/remove.sh', removalEnv(host, []));
    expect(r.code, r.stderr).toBe(0);
    expect(host.calls().filter((c) => c.startsWith('etcdctl'))).toEqual([]);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});

describe('etcd health.sh: started members', () => {
  it('is not satisfied while a listed member is unstarted (a joiner added but not running)', async () => {
    host = scriptHost();
    const list = ['1, started, demo-0, http://10.0.0.1:2380, http://10.0.0.1:2379, false', '2, started, demo-1, http://10.0.0.2:2380, http://10.0.0.2:2379, false', '3, unstarted, , http://10.0.0.3:2380, , false'];
    host.stub(
      'etcdctl',
      [
        'for a; do case "$a" in',
        '  health) echo "http://10.0.0.1:2379 is healthy"; exit 0;;',
        `  status) echo '[{"Status":{"header":{"cluster_id":7}}}]'; exit 0;;`,
        `  list) printf '%s\\n' '${list.join("' '")}'; exit 0;;`,
        'esac; done; exit 2',
      ].join('\n'),
    );
    const r = await host.run('etcd/health.sh', { FW_INPUT_ENDPOINTS: '["http://10.0.0.1:2379"]', FW_INPUT_CLUSTER_SIZES: '[3]', FW_INPUT_TIMEOUT_SECONDS: '1', FW_OUTPUTS: host.file('outputs.json') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not one cluster of 3 started members: 1 cluster ID(s), 3 member(s) listed, 2 started');
  });
});
