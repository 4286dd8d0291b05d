#!/bin/bash
# Waits until etcd is one healthy cluster of all its members: every member in the member
# list answers `etcdctl endpoint health`, they report one cluster ID, and the list holds
# as many started members as the cluster has (its members' cluster-size: how many peers
# they were given), none of them unstarted (a joiner added but not yet running). Members
# that formed clusters of their own each answer "healthy" and list only themselves.
set -euo pipefail
# The endpoints are URLs (no quotes, commas or spaces): a JSON array flattens without python.
endpoints=$(tr -d '[]" \n' <<< "$FW_INPUT_ENDPOINTS")
# Each member's cluster-size; the largest (they agree), else as many as endpoints.
want=$(tr -d '[] \n' <<< "${FW_INPUT_CLUSTER_SIZES:-}" | tr ',' '\n' | sort -n | tail -n 1)
[ -n "$want" ] || want=$(tr ',' '\n' <<< "$endpoints" | grep -c .)
command -v etcdctl >/dev/null || { echo "etcdctl not found: bind etcd-healthy on a node that runs etcd-member" >&2; exit 1; }
ctl() { ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=2s --command-timeout=3s "$@" 2>&1; }
deadline=$(( $(date +%s) + FW_INPUT_TIMEOUT_SECONDS ))
while true; do
  status='' members=''
  # --cluster: every member the list names, not only the endpoints given.
  if out=$(ctl endpoint health --cluster); then
    if status=$(ctl endpoint status --cluster -w json) && members=$(ctl member list); then
      ids=$({ grep -o '"cluster_id":[0-9]*' <<< "$status" || true; } | sort -u | wc -l) # none found: 0, and try again
      have=$(grep -c . <<< "$members" || true)
      started=$(grep -c ', started, ' <<< "$members" || true)
      if [ "$ids" = 1 ] && [ "$have" = "$want" ] && [ "$started" = "$want" ]; then
        echo "$out"
        break
      fi
      out="$out"$'\n'"not one cluster of $want started members: $ids cluster ID(s), $have member(s) listed, $started started:"$'\n'"$members"
    else
      out="$out"$'\n'"$status$members"
    fi
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "etcd not healthy after ${FW_INPUT_TIMEOUT_SECONDS}s:" >&2; echo "$out" >&2; exit 1
  fi
  sleep 0.2
done
printf '{"healthy":%s}\n' "$FW_INPUT_ENDPOINTS" > "$FW_OUTPUTS"
