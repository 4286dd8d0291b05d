#!/usr/bin/env bash
# Installs what Formwork and its tests need on a fresh Debian 12 machine (as root), then
# the npm dependencies and the build. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "error: run as root (the lab provider makes network namespaces and mounts)" >&2; exit 1; }; }
need_root

PACKAGES=(postgresql debootstrap systemd-container apt-cacher-ng openssh-server openssh-client
          ansible-core iproute2 iputils-ping ca-certificates curl procps)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The distribution's apt-cacher-ng service is not used: the lab provider runs its own.
  systemctl disable --now apt-cacher-ng >/dev/null 2>&1 || true
fi
mkdir -p /run/sshd

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (better-sqlite3 builds from source: about 70 s)"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: building"
npm run -s build
