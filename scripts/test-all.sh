#!/usr/bin/env bash
# Runs every test Formwork has, after installing and starting what they need.
# This is the README's test command; .ci/run calls it. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
bash scripts/start-postgres.sh || exit 1
report=$(mktemp /tmp/formwork-vitest-XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + (r.numRuntimeErrors ?? 0)} failed`);
' "$report" 2>/dev/null || echo "0 passed, 1 failed"
rm -f "$report"
exit $status
