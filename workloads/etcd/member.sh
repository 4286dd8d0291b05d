#!/bin/bash
# One etcd member: write its configuration from the inputs, start etcd without waiting for
# quorum (each member's start blocks until a majority is up; etcd-healthy waits for it).
# Idempotent: an unchanged config on a running member changes nothing.
#
# The configuration is a file only etcd can read (/etc/etcd/formwork.yml), named by
# /etc/default/etcd: the cluster token is a secret input, and etcd logs every ETCD_*
# variable it reads (with its value) to the journal, and /etc/default is world-readable.
set -euo pipefail
# systemd runs the unit; skip mirroring it into SysV rc.d links (a second per systemctl call).
export SYSTEMCTL_SKIP_SYSV=1

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
# JSON is YAML: python3 quotes every value, whatever it holds.
conf=$(python3 - "$name" "$data_dir" <<'PY'
import json, os, sys
env = os.environ
addr, cport, pport = env["FW_INPUT_BIND_ADDRESS"], env["FW_INPUT_CLIENT_PORT"], env["FW_INPUT_PEER_PORT"]
members = []
for p in json.loads(env["FW_INPUT_PEERS"]):
    private = (p.get("addresses") or {}).get("private") or []
    if not private:
        sys.exit(f"peer {p.get('node')} has no private address")
    members.append(f"{p['node']}=http://{private[0]}:{pport}")
print(json.dumps({
    "name": sys.argv[1],
    "data-dir": sys.argv[2],
    "listen-peer-urls": f"http://{addr}:{pport}",
    "listen-client-urls": f"http://{addr}:{cport},http://127.0.0.1:{cport}",
    "initial-advertise-peer-urls": f"http://{addr}:{pport}",
    "advertise-client-urls": f"http://{addr}:{cport}",
    "initial-cluster": ",".join(members),
    "initial-cluster-state": "new",
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
  echo "etcd: (re)starting $name on $FW_INPUT_BIND_ADDRESS"
fi
# cluster-size: how many members etcd-healthy must find (it may see only its own node's member).
size=$(grep -o '"initial-cluster": "[^"]*"' <<< "$conf" | tr ',' '\n' | grep -c .)
printf '{"client-url":"http://%s:%s","member-name":"%s","cluster-size":%s}\n' "$FW_INPUT_BIND_ADDRESS" "$FW_INPUT_CLIENT_PORT" "$name" "$size" > "$FW_OUTPUTS"
