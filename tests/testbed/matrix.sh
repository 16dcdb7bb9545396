#!/usr/bin/env bash
# The core end-to-end flows on each Kubernetes minor its users run (issue 90), on the same testbed as the
# e2e suite with the kube-apiserver of that version (tests/testbed/build.sh, cached by version outside the
# repository) and its feature gates and DRA API (tests/testbed/testbed.sh: TESTBED_DRA), then a table.
#
#   bash tests/testbed/matrix.sh                    every minor from 1.30 to 1.35 as it ships, plus 1.33 with
#                                                   DRA on (v1beta2) and 1.35 with it off
#   bash tests/testbed/matrix.sh 1.30.14 1.35.4:off  the versions named (VERSION[:default|on|off])
#
# The core flows: list and scan, health and every node tool through a probe pod, DRA attribution through the
# version the server serves (or "not served"), the admission policies and every exec shape the launcher
# builds, an approved reset and kill, a mark, a cancelled task. Exit status: 0 when every row passed.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The newest patch of each minor that the Go module proxy serves (k8s.io/kubernetes).
DEFAULT=(1.30.14 1.31.14 1.32.13 1.33.13 1.33.13:on 1.34.4 1.35.4 1.35.4:off)
[ $# -gt 0 ] || set -- "${DEFAULT[@]}"

# The core flows' test-name filters, one place for this script and CI.
mapfile -t CORE < <(grep -v '^#' tests/testbed/core-flows.txt | grep .)

cargo test -q -p k8s-gpu-mcp --test e2e --no-run >&2
LOGS=$(mktemp -d)
rows=()
failed=0
for spec in "$@"; do
  version=${spec%%:*}
  dra=default
  [ "$spec" = "$version" ] || dra=${spec#*:}
  log="$LOGS/$version-$dra.log"
  echo "==> $version (DRA: $dra), log in $log" >&2
  b0=$(date +%s)
  # The e2e suite's control plane only: the real-node tools are written against the newest kubelet API.
  if ! bin=$(TESTBED_K8S=$version TESTBED_APISERVER_ONLY=1 bash tests/testbed/build.sh 2>"$log"); then
    rows+=("$(printf '%-8s %-8s %-10s %8s %8s  %s' "$version" "$dra" "-" "-" "$(($(date +%s) - b0))s" "the build failed (see $log)")")
    failed=1
    continue
  fi
  b1=$(date +%s)
  rc=0
  TESTBED_BIN=$bin TESTBED_DRA=$dra cargo test -q -p k8s-gpu-mcp --test e2e --no-fail-fast -- \
    "${CORE[@]}" --test-threads=4 >>"$log" 2>&1 || rc=$?
  t=$(($(date +%s) - b1))
  served=$(TESTBED_DRA=$dra bash tests/testbed/testbed.sh versions "$bin" 2>>"$log" | cut -d' ' -f2) || served="?"
  passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -n1 | cut -d' ' -f1)
  fails=$(grep -Eo '[0-9]+ failed' "$log" | tail -n1 | cut -d' ' -f1)
  what="ok"
  if [ "$rc" != 0 ]; then
    failed=1
    what="FAILED: $(grep -E '^    [a-z_]+::[a-z_:]+$' "$log" | tr -d ' ' | paste -sd' ' -)"
  fi
  rows+=("$(printf '%-8s %-8s %-10s %8s %8s  %s' "$version" "$dra" "${served:-?}" "${passed:-0}/$((${passed:-0} + ${fails:-0}))" "${t}s" "$what")")
done
printf '\n%-8s %-8s %-10s %8s %8s  %s\n' "version" "DRA" "served" "passed" "time" "result"
printf '%s\n' "${rows[@]}"
exit "$failed"
