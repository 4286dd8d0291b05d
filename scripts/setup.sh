#!/usr/bin/env bash
# Installs what Formwork and its tests need on a fresh Debian 12 machine (as root), then
# the npm dependencies and the build. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "error: run as root (the lab provider makes network namespaces and mounts)" >&2; exit 1; }; }
need_root

# Formwork needs Node.js 20 or newer (package.json engines); Debian 12's nodejs is 18.
# Checked first, and not installed from here: adding a third-party apt repository is the
# machine owner's choice.
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  found="Node.js $node_major"; [ -n "$node_major" ] || found="no node on PATH"
  echo "error: Formwork needs Node.js 20 or newer; found $found." >&2
  echo "  Debian 12's nodejs package is 18. Install Node.js 20, e.g. the Linux x64 tarball from" >&2
  echo "  https://nodejs.org/en/download unpacked into /usr/local (tar -xJf node-v20*.tar.xz -C /usr/local --strip-components=1)," >&2
  echo "  or NodeSource's apt repository (https://github.com/nodesource/distributions); then run this again." >&2
  exit 1
fi

PACKAGES=(postgresql debootstrap systemd-container apt-cacher-ng openssh-server openssh-client
          ansible-core iproute2 iputils-ping ca-certificates curl procps)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # Packages must not start their services here: the system apt-cacher-ng would hold
  # port 3142 on every address, where the lab provider runs its own on the lab bridge.
  ours=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$ours" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
# A system apt-cacher-ng started earlier (not the lab provider's, which runs from the data dir).
if [ -f /run/apt-cacher-ng/pid ] && kill -0 "$(cat /run/apt-cacher-ng/pid)" 2>/dev/null; then
  echo "setup: stopping the system apt-cacher-ng (the lab provider runs its own)"
  /etc/init.d/apt-cacher-ng stop >/dev/null 2>&1 || systemctl stop apt-cacher-ng >/dev/null 2>&1 || true
fi
update-rc.d apt-cacher-ng disable >/dev/null 2>&1 || true
systemctl disable apt-cacher-ng >/dev/null 2>&1 || true
mkdir -p /run/sshd

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (better-sqlite3 builds from source: about 70 s)"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: building"
npm run -s build
