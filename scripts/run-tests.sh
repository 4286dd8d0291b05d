#!/usr/bin/env bash
# `npm test`: builds, runs the unit and store suites (in parallel), then the end-to-end
# areas one file at a time (they boot real hosts): lab, the emulated public clouds, then openstack against a real
# control plane (scripts/openstack/run-e2e.sh installs and starts it, and stops it after),
# and prints "N passed, N failed".
# Needs what scripts/setup.sh installs and a PostgreSQL (scripts/start-postgres.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
npm run -s build && npm run -s typecheck || { echo "0 passed, 1 failed"; exit 1; }
reports=$(mktemp -d /tmp/formwork-vitest-XXXXXX)
status=0
npx vitest run src --reporter=default --reporter=json --outputFile="$reports/unit.json" || status=1
npx vitest run test/e2e/lab --no-file-parallelism --reporter=default --reporter=json --outputFile="$reports/e2e-lab.json" || status=1
npx vitest run test/e2e/clouds --no-file-parallelism --reporter=default --reporter=json --outputFile="$reports/e2e-clouds.json" || status=1
bash scripts/openstack/run-e2e.sh --reporter=default --reporter=json --outputFile="$reports/e2e-openstack.json" || status=1
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests;
    // A file that fails to load has no failed test but is a failure all the same.
    const brokenFiles = r.testResults.filter((t) => t.status === "failed" && t.assertionResults.every((a) => a.status !== "failed")).length;
    failed += r.numFailedTests + brokenFiles;
  }
  console.log(`${passed} passed, ${failed} failed`);
' "$reports/unit.json" "$reports/e2e-lab.json" "$reports/e2e-clouds.json" "$reports/e2e-openstack.json"
rm -rf "$reports"
exit $status
