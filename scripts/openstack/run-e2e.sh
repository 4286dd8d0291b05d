#!/usr/bin/env bash
# Runs test/e2e/openstack against a real OpenStack control plane: installs it when missing
# (setup.sh, a no-op when installed), starts it into a temporary folder, runs vitest with
# FORMWORK_OPENSTACK_REAL_DIR pointing there, and stops it whatever happens. When
# FORMWORK_OPENSTACK_REAL_DIR already names a running control plane (its clouds.yaml exists),
# that one is used and left running. Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${FORMWORK_OPENSTACK_REAL_DIR:-}" ] && [ -f "$FORMWORK_OPENSTACK_REAL_DIR/clouds.yaml" ]; then
  exec npx vitest run test/e2e/openstack --no-file-parallelism "$@"
fi
bash scripts/openstack/setup.sh
dir=$(mktemp -d /tmp/formwork-openstack.XXXXXX)
stop() {
  bash scripts/openstack/stop.sh "$dir" || echo "run-e2e: stop.sh failed; the control plane's PIDs are in $dir/pids" >&2
  # Keep the logs of a failed run; a passing run leaves nothing behind.
  if [ "${rc:-1}" = 0 ]; then rm -rf "$dir"; else echo "run-e2e: logs kept in $dir/logs" >&2; fi
}
trap 'rc=$?; stop; exit $rc' EXIT
trap 'exit 130' INT TERM
bash scripts/openstack/start.sh "$dir"
FORMWORK_OPENSTACK_REAL_DIR="$dir" npx vitest run test/e2e/openstack --no-file-parallelism "$@"
