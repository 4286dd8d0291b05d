#!/usr/bin/env bash
# Registers the services' user and the catalog (public endpoints on 127.0.0.1 only) and the
# `demo` project and user, as the admin in OS_* (called by start.sh). Usage: register-catalog.sh PASSWORD
set -euo pipefail
PW=$1
os() { openstack "$@"; }
os project create --domain Default --description "Service users" service
os user create --domain Default --password "$PW" formwork-service
os role add --project service --user formwork-service admin
os role add --project service --user formwork-service service 2>/dev/null || { os role create service && os role add --project service --user formwork-service service; }
os project create --domain Default --description "Formwork tests" demo
os user create --domain Default --password "$PW" --project demo demo
os role add --project demo --user demo member
for svc in "image glance http://127.0.0.1:9292" "placement placement http://127.0.0.1:8778" \
           "compute nova http://127.0.0.1:8774/v2.1" "network neutron http://127.0.0.1:9696"; do
  set -- $svc
  os service create --name "$2" "$1"
  os endpoint create --region RegionOne "$1" public "$3"
done
