#!/usr/bin/env bash
# Stops a control plane started by start.sh DIR: each service recorded in DIR/pids, in reverse
# order of start, by its PID (its whole session: uwsgi's workers, RabbitMQ's Erlang helpers),
# SIGTERM first and SIGKILL after a bound. Leaves the folder (logs) in place.
# Usage: scripts/openstack/stop.sh DIR [SECONDS]  (default bound 20 s per service)
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [SECONDS]" >&2; exit 2; }
DIR=$1 BOUND=${2:-20}
[ -f "$DIR/pids" ] || { echo "openstack stop: nothing recorded in $DIR/pids"; exit 0; }

# PIDs in the session led by $1 (setsid made each service the leader of its own).
session_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'; }
alive() { [ -n "$(session_pids "$1")" ] || kill -0 "$1" 2>/dev/null; }

stop_one() {
  local name=$1 pid=$2
  alive "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  local deadline=$(( $(date +%s) + BOUND ))
  while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if alive "$pid"; then
    echo "openstack stop: $name ($pid) still running after ${BOUND}s: SIGKILL"
    for p in $(session_pids "$pid"); do kill -KILL "$p" 2>/dev/null; done
    kill -KILL "$pid" 2>/dev/null
  fi
}

# Services first, then RabbitMQ, epmd and MariaDB (the reverse of the start order).
tac "$DIR/pids" | while read -r name pid; do
  [ -n "${pid:-}" ] || continue
  # The services end together; the back ends one by one, after every service has ended.
  case "$name" in
    mariadb|rabbitmq|epmd) wait; stop_one "$name" "$pid" ;;
    *) stop_one "$name" "$pid" & ;;
  esac
done
wait
left=""
while read -r name pid; do [ -n "${pid:-}" ] && alive "$pid" && left+=" $name($pid)"; done < "$DIR/pids"
if [ -n "$left" ]; then echo "openstack stop: still running:$left" >&2; exit 1; fi
mv "$DIR/pids" "$DIR/pids.stopped"
echo "openstack stop: stopped"
