#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is missing (apt packages, npm
# dependencies, the build), then runs `formwork up` on the embedded default (SQLite, lab).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/formwork.js up "$@"
