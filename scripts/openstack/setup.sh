#!/usr/bin/env bash
# Installs a real OpenStack control plane (Debian 12's Zed packages) for the client's end-to-end
# tests: Keystone, Glance, Placement, Nova, Neutron, MariaDB and RabbitMQ. Nothing is started or
# enabled here: a policy-rc.d refuses every service start during the install, and start.sh runs
# each service itself on 127.0.0.1. Safe to run again: a no-op when everything is installed.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "error: run as root (apt-get install)" >&2; exit 1; }

PACKAGES=(mariadb-server rabbitmq-server keystone glance-api placement-api nova-api nova-conductor
          nova-scheduler nova-compute neutron-server python3-openstackclient python3-pymysql
          python3-setuptools uwsgi-core uwsgi-plugin-python3)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "openstack setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

# Refuse every service start while installing (the distro units would listen on all addresses);
# keep an existing policy-rc.d, and remove only the one written here.
policy=/usr/sbin/policy-rc.d
wrote_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by formwork scripts/openstack/setup.sh: no service starts during the install\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  wrote_policy=1
fi
cleanup() { [ -z "$wrote_policy" ] || rm -f "$policy"; }
trap cleanup EXIT

echo "openstack setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "openstack setup: done"
