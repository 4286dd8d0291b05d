#!/bin/bash
# etcd-member's removal step, run on the member's node when its binding is removed: takes
# the member out of its cluster (`etcdctl member remove`, through a remaining member, under
# the membership lock member.sh's joiners take), then stops etcd and wipes its data and
# config, so that the node could join again later as a new member.
#
# $FW_INPUT_PEERS names the remaining members (a member being removed is no peer). With
# none left (the whole cluster goes), there is nobody to tell: etcd is only stopped and wiped.
# With members left and none answering, nothing is wiped: the step fails and is retried.
set -euo pipefail
export SYSTEMCTL_SKIP_SYSV=1 ETCDCTL_API=3
config=/etc/etcd/formwork.yml
peer_url="http://$FW_INPUT_BIND_ADDRESS:$FW_INPUT_PEER_PORT"
name=$(hostname)
ctl() { etcdctl --dial-timeout=2s --command-timeout=5s "$@"; }

# The remaining members' client URLs, one a line (JSON read without python: it may be gone).
remaining=$(grep -o '"private":\["[^"]*"' <<< "$FW_INPUT_PEERS" | sed 's/.*\["//; s/"$//' | grep -vxF "$FW_INPUT_BIND_ADDRESS" | sed "s|.*|http://&:$FW_INPUT_CLIENT_PORT|" || true)

lock_pid=''
unlock() { if [ -n "$lock_pid" ]; then kill "$lock_pid" 2>/dev/null || true; wait "$lock_pid" 2>/dev/null || true; lock_pid=''; fi; }
lock() {
  local held=''
  exec {lock_fd}< <(exec etcdctl --endpoints="$1" lock formwork/membership 2>&1)
  lock_pid=$!
  trap unlock EXIT
  read -r -t 120 -u "$lock_fd" held || true
  case "$held" in formwork/membership/*) ;; *) echo "etcd: could not take the membership lock through $1 within 120 s: $held" >&2; exit 1;; esac
}

if [ -n "$remaining" ] && command -v etcdctl >/dev/null; then
  live=''
  for e in $remaining; do
    if etcdctl --endpoints="$e" --dial-timeout=1s --command-timeout=2s get --consistency=l formwork/probe >/dev/null 2>&1; then live=$e; break; fi
  done
  if [ -z "$live" ]; then
    echo "etcd: no remaining member answers a quorum read ($(tr '\n' ' ' <<< "$remaining")): $name stays in its cluster and keeps its data; the step is retried" >&2
    exit 1
  fi
  lock "$live"
  # The member's ID (hex, as member remove takes it) by its peer URL: `member list` prints
  # "ID, status, name, peer URLs, client URLs, learner".
  id=$(ctl --endpoints="$live" member list | grep -F " $peer_url," | cut -d, -f1 || true)
  if [ -n "$id" ]; then
    ctl --endpoints="$live" member remove "$id" >/dev/null
    echo "etcd: removed $name ($id, $peer_url) from the cluster through $live"
  else
    echo "etcd: $name ($peer_url) is not in the member list: nothing to remove"
  fi
  unlock
fi

systemctl stop etcd 2>/dev/null || true
systemctl disable -q --no-reload etcd 2>/dev/null || true
data_dir=$(grep -o '"data-dir": "[^"]*"' "$config" 2>/dev/null | sed 's/.*: "//; s/"$//' || true)
for d in "$data_dir" /var/lib/etcd/default; do
  case "$d" in /var/lib/etcd/*) rm -rf "$d"; echo "etcd: wiped $d";; esac
done
rm -f "$config" /etc/etcd/formwork.restart-pending /etc/default/etcd
echo '{}' > "$FW_OUTPUTS"
