#!/bin/bash
# One etcd member: write its configuration from the inputs, start etcd without waiting for
# quorum (each member's start blocks until a majority is up; etcd-healthy waits for it).
# Idempotent: an unchanged config on a running member changes nothing.
#
# Membership, as etcd requires it (docs: "runtime reconfiguration"):
# - a member with data is in its cluster: etcd reads the membership from its data, so its
#   cluster fields stay as written and a change of peers restarts nothing;
# - a member without data, when another peer answers a quorum read (a live cluster): a
#   joiner. Holding the cluster's membership lock (several join at once), it is added with
#   `etcdctl member add` unless listed already, and starts with initial-cluster-state
#   `existing` and the member list as its initial cluster; the lock is released once it
#   answers, so that the next joiner's add finds it started;
# - otherwise a founder: every peer in its initial cluster, state `new`.
# Members leave through remove.sh, the role's removal step.
#
# The configuration is a file only etcd can read (/etc/etcd/formwork.yml), named by
# /etc/default/etcd: the cluster token is a secret input, and etcd logs every ETCD_*
# variable it reads (with its value) to the journal, and /etc/default is world-readable.
set -euo pipefail
# systemd runs the unit; skip mirroring it into SysV rc.d links (a second per systemctl call).
export SYSTEMCTL_SKIP_SYSV=1 ETCDCTL_API=3

apt_install() {
  # A fresh cloud image often has empty package lists: "Unable to locate package".
  if ! apt-cache show "$@" >/dev/null 2>&1; then apt-get update -qq >/dev/null; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v python3 >/dev/null || { echo "etcd: installing python3-minimal"; apt_install python3-minimal; }
if ! command -v etcd >/dev/null; then
  echo "etcd: installing etcd-server and etcd-client"
  # Debian's postinst starts etcd at once with its defaults (a one-member cluster named after
  # the host, in /var/lib/etcd/default): deny service starts while installing.
  policy=/usr/sbin/policy-rc.d ours=''
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && ours=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt_install etcd-server etcd-client
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
  # Should it have started anyway (a policy-rc.d of the image's that allows it), nothing of
  # that one-member cluster may survive: stop it and drop its data.
  systemctl stop etcd 2>/dev/null || true
  rm -rf /var/lib/etcd/default
fi
name=$(hostname)
config=/etc/etcd/formwork.yml
# The data dir: the one this cluster already uses on this host (its config has the same token),
# so that a member keeps its data across pack upgrades (configs written before the pack named
# a data dir used Debian's default); else one of the cluster's own, named by a hash of its
# token (which is secret): etcd ignores initial-cluster when its data dir already holds a
# cluster, such as one the package started.
data_dir=$(python3 - "$config" <<'PY'
import json, os, sys
try:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
except (OSError, ValueError):
    sys.exit(0)
if cfg.get("initial-cluster-token") == os.environ["FW_INPUT_CLUSTER_TOKEN"]:
    print(cfg.get("data-dir") or "/var/lib/etcd/default")
PY
)
[ -n "$data_dir" ] || data_dir=/var/lib/etcd/formwork-$(printf '%s' "$FW_INPUT_CLUSTER_TOKEN" | sha256sum | cut -c1-16)
peer_url="http://$FW_INPUT_BIND_ADDRESS:$FW_INPUT_PEER_PORT"
ctl() { etcdctl --dial-timeout=2s --command-timeout=5s "$@"; }

# What changed since the last successful run ($FW_PREVIOUS_INPUTS is {} on a first run).
python3 <<'PY'
import json, os
before = json.loads(os.environ.get("FW_PREVIOUS_INPUTS") or "{}").get("peers")
if isinstance(before, list):
    now = [p["node"] for p in json.loads(os.environ["FW_INPUT_PEERS"])]
    was = [p.get("node") for p in before]
    added, gone = [n for n in now if n not in was], [n for n in was if n not in now]
    if added or gone:
        print(f"etcd: peers changed since the last run: added {', '.join(added) or 'none'}; removed {', '.join(gone) or 'none'}")
PY

# The other peers' client URLs, one a line (this member's own address left out).
others=$(python3 <<'PY'
import json, os, sys
env = os.environ
for p in json.loads(env["FW_INPUT_PEERS"]):
    private = (p.get("addresses") or {}).get("private") or []
    if not private:
        sys.exit(f"peer {p.get('node')} has no private address")
    if private[0] != env["FW_INPUT_BIND_ADDRESS"]:
        print(f"http://{private[0]}:{env['FW_INPUT_CLIENT_PORT']}")
PY
)

lock_pid=''
unlock() { if [ -n "$lock_pid" ]; then kill "$lock_pid" 2>/dev/null || true; wait "$lock_pid" 2>/dev/null || true; lock_pid=''; fi; }
# The cluster's membership lock, held by a background `etcdctl lock` until unlock (SIGTERM
# releases it; a lost process's session expires).
lock() {
  local held=''
  exec {lock_fd}< <(exec etcdctl --endpoints="$1" lock formwork/membership 2>&1)
  lock_pid=$!
  trap unlock EXIT
  read -r -t 120 -u "$lock_fd" held || true
  case "$held" in formwork/membership/*) ;; *) echo "etcd: could not take the membership lock through $1 within 120 s: $held" >&2; exit 1;; esac
}

mode=founder
live=''
if [ -d "$data_dir/member" ]; then
  mode=member
else
  for e in $others; do
    if etcdctl --endpoints="$e" --dial-timeout=1s --command-timeout=2s get --consistency=l formwork/probe >/dev/null 2>&1; then live=$e; mode=joiner; break; fi
  done
fi

# initial-cluster and initial-cluster-state, by mode.
case "$mode" in
  member)
    # Only read on a member's first start: kept as they are, so the config does not change.
    cluster=$(python3 - "$config" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
print(json.dumps({"initial-cluster": cfg.get("initial-cluster", ""), "initial-cluster-state": cfg.get("initial-cluster-state", "new")}))
PY
) ;;
  joiner)
    lock "$live"
    list=$(ctl --endpoints="$live" member list -w json)
    if ! grep -qF "\"$peer_url\"" <<< "$list"; then
      echo "etcd: adding $name ($peer_url) to the cluster through $live"
      # etcd refuses a new voting member ("unhealthy cluster") until every member has been
      # connected for 5 s: right after the previous joiner started, say.
      deadline=$(( $(date +%s) + 60 ))
      until added=$(ctl --endpoints="$live" member add "$name" --peer-urls="$peer_url" 2>&1); do
        if ! grep -q 'unhealthy cluster' <<< "$added" || [ "$(date +%s)" -ge "$deadline" ]; then
          echo "etcd: member add $name through $live failed: $added" >&2; exit 1
        fi
        sleep 1
      done
      list=$(ctl --endpoints="$live" member list -w json)
    fi
    cluster=$(FW_MEMBERS="$list" python3 - "$name" "$peer_url" <<'PY'
import json, os, sys
name, me = sys.argv[1], sys.argv[2]
pairs = []
for m in json.loads(os.environ["FW_MEMBERS"]).get("members", []):
    for u in m.get("peerURLs", []):
        pairs.append(f"{name if me in m['peerURLs'] else m.get('name', '')}={u}")
print(json.dumps({"initial-cluster": ",".join(pairs), "initial-cluster-state": "existing"}))
PY
) ;;
  founder)
    cluster=$(python3 <<'PY'
import json, os
env = os.environ
members = [f"{p['node']}=http://{p['addresses']['private'][0]}:{env['FW_INPUT_PEER_PORT']}" for p in json.loads(env["FW_INPUT_PEERS"])]
print(json.dumps({"initial-cluster": ",".join(members), "initial-cluster-state": "new"}))
PY
) ;;
esac

# JSON is YAML: python3 quotes every value, whatever it holds.
conf=$(FW_CLUSTER="$cluster" python3 - "$name" "$data_dir" <<'PY'
import json, os, sys
env = os.environ
addr, cport, pport = env["FW_INPUT_BIND_ADDRESS"], env["FW_INPUT_CLIENT_PORT"], env["FW_INPUT_PEER_PORT"]
cluster = json.loads(env["FW_CLUSTER"])
print(json.dumps({
    "name": sys.argv[1],
    "data-dir": sys.argv[2],
    "listen-peer-urls": f"http://{addr}:{pport}",
    "listen-client-urls": f"http://{addr}:{cport},http://127.0.0.1:{cport}",
    "initial-advertise-peer-urls": f"http://{addr}:{pport}",
    "advertise-client-urls": f"http://{addr}:{cport}",
    "initial-cluster": cluster["initial-cluster"],
    "initial-cluster-state": cluster["initial-cluster-state"],
    "initial-cluster-token": env["FW_INPUT_CLUSTER_TOKEN"],
    # On by default as a flag, off when read from a file: clients (haproxy's, `up`'s proof) use it.
    "enable-grpc-gateway": True,
}, indent=1))
PY
)
defaults="ETCD_CONFIG_FILE=\"$config\""
# Set before a change is written, removed once the restart is queued: a run cut short in
# between leaves it, and the retry (seeing an unchanged config) still restarts etcd.
pending=/etc/etcd/formwork.restart-pending
install -d -m 0755 /etc/etcd
install -d -o etcd -g etcd -m 0700 "$data_dir"
if [ "$(cat "$config" 2>/dev/null)" != "$conf" ]; then
  touch "$pending"
  (umask 077; printf '%s\n' "$conf" > "$config.tmp")
  chown etcd:etcd "$config.tmp" && mv -f "$config.tmp" "$config"
  echo "etcd: wrote $config ($(grep -o '"initial-cluster": "[^"]*"' <<< "$conf"))"
fi
if [ "$(cat /etc/default/etcd 2>/dev/null)" != "$defaults" ]; then
  touch "$pending"
  printf '%s\n' "$defaults" > /etc/default/etcd
fi
# --no-reload: the unit file is already known (its package reloaded systemd); a reload costs ~0.4 s.
systemctl is-enabled -q etcd 2>/dev/null || systemctl enable --no-reload -q etcd
if [ -e "$pending" ] || ! systemctl is-active -q etcd; then
  systemctl restart --no-block etcd
  rm -f "$pending"
  echo "etcd: (re)starting $name on $FW_INPUT_BIND_ADDRESS as a $mode"
fi
if [ "$mode" = joiner ]; then
  # Holding the lock until this member answers: the next joiner's add then finds a started
  # member (etcd refuses an add that a stalled joiner would leave without quorum).
  deadline=$(( $(date +%s) + 90 ))
  until ctl --endpoints="http://127.0.0.1:$FW_INPUT_CLIENT_PORT" endpoint health >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "etcd: $name did not join within 90 s: journalctl -u etcd on $name says why" >&2; exit 1; }
    sleep 0.5
  done
  echo "etcd: $name joined the cluster"
  unlock
fi
# cluster-size: how many members etcd-healthy must find started (it may see only its own node's member).
size=$(python3 -c 'import json, os; print(len(json.loads(os.environ["FW_INPUT_PEERS"])))')
printf '{"client-url":"http://%s:%s","member-name":"%s","cluster-size":%s}\n' "$FW_INPUT_BIND_ADDRESS" "$FW_INPUT_CLIENT_PORT" "$name" "$size" > "$FW_OUTPUTS"
