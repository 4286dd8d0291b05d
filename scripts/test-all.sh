#!/usr/bin/env bash
# Every test Formwork has, on a fresh Debian 12 machine (as root): installs and starts
# what the tests need (apt packages, npm dependencies, PostgreSQL), then runs `npm test`.
# This is the README's test command; .ci/run calls it. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
bash scripts/start-postgres.sh || { echo "0 passed, 1 failed"; exit 1; }
exec bash scripts/run-tests.sh
