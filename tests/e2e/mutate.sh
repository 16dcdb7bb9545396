#!/usr/bin/env bash
# Shows that the end-to-end suite catches a broken probe pod spec: applies one deliberate break at a time to
# launcher/src/probe/pod.rs, runs an e2e test that goes through the real API server, expects it to FAIL, and
# restores the file. Prints one line per mutation; exits non-zero if a mutation survived (the suite passed
# with a broken spec) or the unmutated baseline failed.
# Not part of tests/run-all.sh: every mutation rebuilds the launcher (minutes on a small machine).
# Usage: bash tests/e2e/mutate.sh   (env: TESTBED_BIN, MUTATE_TEST=<e2e test name filter>)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
POD=launcher/src/probe/pod.rs
TEST=${MUTATE_TEST:-launcher::every_node_tool_answers_for_each_node}
TESTBED_BIN=${TESTBED_BIN:-$(bash tests/testbed/build.sh)}
export TESTBED_BIN
backup=$(mktemp)
cp "$POD" "$backup"
trap 'cp "$backup" "$POD"; rm -f "$backup"' EXIT

# name | sed expression on pod.rs (each must change the file)
MUTATIONS=(
  'an environment variable without a name|s/\Qenv: Some(vec![env(HOST_ROOT_ENV, HOST_ROOT)]),\E/env: Some(vec![env("", HOST_ROOT)]),/'
  'restartPolicy outside Always/OnFailure/Never|s/\Qrestart_policy: Some("Never".into())\E/restart_policy: Some("Sometimes".into())/'
  'label value longer than 63 characters|s/\Q(LABEL_COMPONENT.to_string(), "probe".to_string())\E/(LABEL_COMPONENT.to_string(), "probe".repeat(20))/'
)

run_test() {
  cargo test -q -p k8s-gpu-mcp --test e2e -- --exact "$TEST" >"$1" 2>&1
}

log=$(mktemp)
if ! run_test "$log"; then
  tail -30 "$log" >&2
  echo "baseline: the unmutated suite fails; fix that first" >&2
  exit 1
fi
echo "baseline (no mutation): passes"
survived=0
for m in "${MUTATIONS[@]}"; do
  name=${m%%|*}
  expr=${m#*|}
  cp "$backup" "$POD"
  perl -0pi -e "$expr" "$POD"
  if cmp -s "$backup" "$POD"; then
    echo "mutation '$name': did not apply (pod.rs changed shape); update this script" >&2
    exit 1
  fi
  if run_test "$log"; then
    echo "mutation '$name': SURVIVED (the suite passed with a broken spec)"
    survived=$((survived + 1))
  else
    why=$(grep -m1 -oE '(is invalid|Invalid value|Unsupported value|must be)[^"\\]{0,120}' "$log" || true)
    echo "mutation '$name': caught (${why:-see the test output})"
  fi
done
rm -f "$log"
exit "$survived"
