#!/bin/bash
# One etcd member: write /etc/default/etcd from the inputs, start etcd without waiting
# for quorum (each member's start blocks until a majority is up; etcd-healthy waits for it).
# Idempotent: an unchanged config on a running member changes nothing.
set -euo pipefail
# systemd runs the unit; skip mirroring it into SysV rc.d links (a second per systemctl call).
export SYSTEMCTL_SKIP_SYSV=1
if ! command -v etcd >/dev/null; then
  echo "etcd: installing etcd-server and etcd-client"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
  systemctl stop etcd 2>/dev/null || true   # Debian starts it with defaults; we configure it first
fi
name=$(hostname)
addr="$FW_INPUT_BIND_ADDRESS"
cport="$FW_INPUT_CLIENT_PORT"; pport="$FW_INPUT_PEER_PORT"
initial=$(python3 - "$pport" <<'PY'
import json, os, sys
peers = json.loads(os.environ["FW_INPUT_PEERS"])
port = sys.argv[1]
out = []
for p in peers:
    private = (p.get("addresses") or {}).get("private") or []
    if not private:
        sys.exit(f"peer {p.get('node')} has no private address")
    out.append(f"{p['node']}=http://{private[0]}:{port}")
print(",".join(out))
PY
)
conf=$(cat <<CONF
ETCD_NAME="$name"
ETCD_DATA_DIR="/var/lib/etcd/default"
ETCD_LISTEN_PEER_URLS="http://$addr:$pport"
ETCD_LISTEN_CLIENT_URLS="http://$addr:$cport,http://127.0.0.1:$cport"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://$addr:$pport"
ETCD_ADVERTISE_CLIENT_URLS="http://$addr:$cport"
ETCD_INITIAL_CLUSTER="$initial"
ETCD_INITIAL_CLUSTER_STATE="new"
ETCD_INITIAL_CLUSTER_TOKEN="$FW_INPUT_CLUSTER_TOKEN"
CONF
)
if [ "$(cat /etc/default/etcd 2>/dev/null)" != "$conf" ]; then
  printf '%s\n' "$conf" > /etc/default/etcd
  echo "etcd: wrote /etc/default/etcd (initial cluster $initial)"
  changed=1
else
  changed=0
fi
# --no-reload: the unit file is already known (its package reloaded systemd); a reload costs ~0.4 s.
systemctl is-enabled -q etcd 2>/dev/null || systemctl enable --no-reload -q etcd
if [ "$changed" = 1 ] || ! systemctl is-active -q etcd; then
  systemctl restart --no-block etcd
  echo "etcd: (re)starting $name on $addr"
fi
printf '{"client-url":"http://%s:%s","member-name":"%s"}\n' "$addr" "$cport" "$name" > "$FW_OUTPUTS"
