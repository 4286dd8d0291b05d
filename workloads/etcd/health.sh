#!/bin/bash
# Waits until every member answers `etcdctl endpoint health`.
set -euo pipefail
endpoints=$(python3 -c 'import json,os; print(",".join(json.loads(os.environ["FW_INPUT_ENDPOINTS"])))')
deadline=$(( $(date +%s) + FW_INPUT_TIMEOUT_SECONDS ))
while true; do
  if out=$(ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=2s --command-timeout=3s endpoint health 2>&1); then
    echo "$out"
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "etcd not healthy after ${FW_INPUT_TIMEOUT_SECONDS}s:" >&2; echo "$out" >&2; exit 1
  fi
  sleep 0.2
done
python3 -c 'import json,os; print(json.dumps({"healthy": json.loads(os.environ["FW_INPUT_ENDPOINTS"])}))' > "$FW_OUTPUTS"
