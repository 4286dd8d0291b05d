#!/usr/bin/env bash
# Fills a fresh control plane with what the tests expect (called by start.sh, as the admin
# in OS_*): three flavors, a tiny public image with os_distro/os_version/os_admin_user, the
# external flat network `public` (198.19.254.0/24: in the lab range, at the lab subnet index 255 that no test or default uses, so no lab host answers on it), and in project `demo` a
# network `private` with router `router1` to `public`, and a network `isolated` without one.
# Usage: fill-cloud.sh DIR PASSWORD
set -euo pipefail
DIR=$1 PW=$2
os() { openstack "$@"; }
demo() { OS_USERNAME=demo OS_PROJECT_NAME=demo openstack "$@"; }

os flavor create --public --vcpus 1 --ram 512 --disk 1 m1.tiny
os flavor create --public --vcpus 1 --ram 2048 --disk 20 m1.small
os flavor create --public --vcpus 2 --ram 4096 --disk 40 m1.medium

head -c 1048576 /dev/zero > "$DIR/tiny.img"
os image create --public --disk-format raw --container-format bare --file "$DIR/tiny.img" \
  --property os_distro=debian --property os_version=12 --property os_admin_user=debian debian-12-tiny

os network create --external --provider-network-type flat --provider-physical-network public public
os subnet create --network public --subnet-range 198.19.254.0/24 --gateway 198.19.254.1 \
  --allocation-pool start=198.19.254.10,end=198.19.254.250 --no-dhcp public-subnet

demo network create private
demo subnet create --network private --subnet-range 10.10.0.0/24 --dns-nameserver 198.19.254.1 private-subnet
demo router create router1
demo router set --external-gateway public router1
demo router add subnet router1 private-subnet

demo network create isolated
demo subnet create --network isolated --subnet-range 10.20.0.0/24 isolated-subnet
