#!/bin/bash
# haproxy in TCP mode: one frontend on the public address, the backends behind it.
set -euo pipefail
# systemd runs the unit; skip mirroring it into SysV rc.d links (a second per systemctl call).
export SYSTEMCTL_SKIP_SYSV=1
apt_install() {
  # A fresh cloud image often has empty package lists: "Unable to locate package".
  if ! apt-cache show "$@" >/dev/null 2>&1; then apt-get update -qq >/dev/null; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v python3 >/dev/null || { echo "haproxy: installing python3-minimal"; apt_install python3-minimal; }
if ! command -v haproxy >/dev/null; then
  echo "haproxy: installing haproxy"
  apt_install haproxy
fi
servers=$(python3 <<'PY'
import json, os, sys
from urllib.parse import urlparse
lines = []
for i, b in enumerate(json.loads(os.environ["FW_INPUT_BACKENDS"])):
    u = urlparse(b if "://" in b else "tcp://" + b)
    try:
        port = u.port
    except ValueError:
        port = None
    if not u.hostname or not port:
        sys.exit(f"haproxy: backend {b!r} has no host and port: give host:port or a URL with a port (http://host:2379)")
    lines.append(f"    server b{i} {u.hostname}:{port} check inter 1s fall 2 rise 1")
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
live=/etc/haproxy/haproxy.cfg
if [ "$(cat "$live" 2>/dev/null)" != "$conf" ]; then
  # Checked before it goes live, so the live file is never one haproxy refuses (a retry
  # would find it unchanged and reload it).
  tmp=$(mktemp "$live.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  printf '%s\n' "$conf" > "$tmp"
  if ! check=$(haproxy -c -f "$tmp" 2>&1); then
    echo "haproxy: the rendered config does not pass haproxy -c:" >&2; echo "$check" >&2; exit 1
  fi
  chmod 0644 "$tmp" && mv -f "$tmp" "$live"
  echo "haproxy: wrote config with $(grep -c '^    server ' "$live") backends"
fi
# --no-reload: the unit file is already known (its package reloaded systemd); a reload costs ~0.4 s.
systemctl is-enabled -q haproxy 2>/dev/null || systemctl enable --no-reload -q haproxy
if systemctl is-active -q haproxy; then systemctl reload haproxy; else systemctl start haproxy; fi
printf '{"frontend":"%s:%s"}\n' "$FW_INPUT_BIND_ADDRESS" "$FW_INPUT_PORT" > "$FW_OUTPUTS"
