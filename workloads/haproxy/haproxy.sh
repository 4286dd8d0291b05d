#!/bin/bash
# haproxy in TCP mode: one frontend on the public address, the backends behind it.
set -euo pipefail
# systemd runs the unit; skip mirroring it into SysV rc.d links (a second per systemctl call).
export SYSTEMCTL_SKIP_SYSV=1
if ! command -v haproxy >/dev/null; then
  echo "haproxy: installing haproxy"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
servers=$(python3 <<'PY'
import json, os
from urllib.parse import urlparse
lines = []
for i, b in enumerate(json.loads(os.environ["FW_INPUT_BACKENDS"])):
    u = urlparse(b if "://" in b else "tcp://" + b)
    lines.append(f"    server b{i} {u.hostname}:{u.port} check inter 1s fall 2 rise 1")
print("\n".join(lines))
PY
)
conf=$(cat <<CONF
global
    maxconn 4096
defaults
    mode tcp
    retries 3
    option redispatch
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend formwork
    bind $FW_INPUT_BIND_ADDRESS:$FW_INPUT_PORT
    default_backend formwork
backend formwork
    balance roundrobin
$servers
CONF
)
if [ "$(cat /etc/haproxy/haproxy.cfg 2>/dev/null)" != "$conf" ]; then
  printf '%s\n' "$conf" > /etc/haproxy/haproxy.cfg
  haproxy -c -q -f /etc/haproxy/haproxy.cfg
  echo "haproxy: wrote config with $(grep -c '^    server ' /etc/haproxy/haproxy.cfg) backends"
fi
# --no-reload: the unit file is already known (its package reloaded systemd); a reload costs ~0.4 s.
systemctl is-enabled -q haproxy 2>/dev/null || systemctl enable --no-reload -q haproxy
if systemctl is-active -q haproxy; then systemctl reload haproxy; else systemctl start haproxy; fi
printf '{"frontend":"%s:%s"}\n' "$FW_INPUT_BIND_ADDRESS" "$FW_INPUT_PORT" > "$FW_OUTPUTS"
