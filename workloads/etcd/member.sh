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
if ! command -v etcd >/dev/null; then
  echo "etcd: installing etcd-server and etcd-client"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
  systemctl stop etcd 2>/dev/null || true   # Debian starts it with defaults; we configure it first
fi
name=$(hostname)
config=/etc/etcd/formwork.yml
# JSON is YAML: python3 quotes every value, whatever it holds.
conf=$(python3 - "$name" <<'PY'
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
    "data-dir": "/var/lib/etcd/default",
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
changed=0
install -d -m 0755 /etc/etcd
if [ "$(cat "$config" 2>/dev/null)" != "$conf" ]; then
  (umask 077; printf '%s\n' "$conf" > "$config.tmp")
  chown etcd:etcd "$config.tmp" && mv -f "$config.tmp" "$config"
  echo "etcd: wrote $config ($(grep -o '"initial-cluster": "[^"]*"' <<< "$conf"))"
  changed=1
fi
if [ "$(cat /etc/default/etcd 2>/dev/null)" != "$defaults" ]; then
  printf '%s\n' "$defaults" > /etc/default/etcd
  changed=1
fi
# --no-reload: the unit file is already known (its package reloaded systemd); a reload costs ~0.4 s.
systemctl is-enabled -q etcd 2>/dev/null || systemctl enable --no-reload -q etcd
if [ "$changed" = 1 ] || ! systemctl is-active -q etcd; then
  systemctl restart --no-block etcd
  echo "etcd: (re)starting $name on $FW_INPUT_BIND_ADDRESS"
fi
printf '{"client-url":"http://%s:%s","member-name":"%s"}\n' "$FW_INPUT_BIND_ADDRESS" "$FW_INPUT_CLIENT_PORT" "$name" > "$FW_OUTPUTS"
