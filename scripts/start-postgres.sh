#!/usr/bin/env bash
# Starts Debian's PostgreSQL cluster for the tests and sets the password they use.
set -euo pipefail
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$ver main"; then pg_createcluster "$ver" main >/dev/null; fi
pg_ctlcluster "$ver" main start 2>/dev/null || true
for i in $(seq 1 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
su postgres -c "psql -qc \"alter user postgres password 'postgres'\"" >/dev/null
echo "postgres $ver ready on 127.0.0.1:5432"
