#!/usr/bin/env bash
# Benchmarks `k8s-gpu-mcp top` on the real control plane (tests/testbed: etcd + kube-apiserver + kwok): a Job of
# BENCH_TOP_NODES kwok nodes (default 64, 8 GPUs each) viewed at 1 s in tmux (200x80), and prints a table:
#   - the launcher's CPU and peak memory while the view runs;
#   - the probes' CPU per node (kwok runs each node's node-probe as a local process: their CPU over the same
#     seconds, per node);
#   - the launcher user's API requests (the apiserver's audit log) per refresh once every row is on screen,
#     and over two minutes that include a renewal of every node's probe pod;
#   - the delay from a sample's instant on the node to the end of the draw that showed it (the view's own
#     `--stats`), p50/p95/max, and the draw's time;
#   - the pods left after q.
# Usage: bash tests/bench/top.sh   (env: BENCH_TOP_NODES=64, BENCH_TOP_SECONDS=30 (the steady span measured),
#        BENCH_PROFILE=release, BENCH_PREBUILT=1 (the binaries of target/$PROFILE as they are), TESTBED_BIN)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
NODES=${BENCH_TOP_NODES:-64}
SPAN=${BENCH_TOP_SECONDS:-30}
PROFILE=${BENCH_PROFILE:-release}
log() { echo "bench: $*" >&2; }
command -v tmux >/dev/null || { echo "bench: tmux is required" >&2; exit 1; }

if [ "${BENCH_PREBUILT:-0}" != 1 ]; then
  if [ "$PROFILE" = release ]; then cargo build --release -q -p k8s-gpu-mcp -p node-probe; else cargo build -q -p k8s-gpu-mcp -p node-probe; fi
fi
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
BINDIR=$TARGET/$PROFILE
[ "$PROFILE" = dev ] && BINDIR=$TARGET/debug
LAUNCHER=$BINDIR/k8s-gpu-mcp
TESTBED_BIN=${TESTBED_BIN:-$(bash tests/testbed/build.sh)}
export TESTBED_BIN

WORK=$(mktemp -d /tmp/k8s-gpu-mcp-bench-top.XXXXXX)
SOCK=bench-top-$$
mkfifo "$WORK/hold"
TESTBED_AUDIT=1 TESTBED_PROBE_DIR=$BINDIR bash tests/testbed/testbed.sh up "$WORK/tb" <"$WORK/hold" >"$WORK/tb.out" 2>"$WORK/tb.err" &
TB_PID=$!
exec 9>"$WORK/hold"
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  exec 9>&-
  wait "$TB_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 600); do
  grep -q "testbed ready" "$WORK/tb.out" 2>/dev/null && break
  kill -0 "$TB_PID" 2>/dev/null || { cat "$WORK/tb.err" >&2; exit 1; }
  sleep 0.2
done
# shellcheck disable=SC1091
source "$WORK/tb/env"
export TESTBED_DIR TESTBED_KWOK_PORT
KA=(kubectl --kubeconfig "$TESTBED_ADMIN_KUBECONFIG")
NS=gpu-diagnostics
"${KA[@]}" apply -f deploy/00-namespace.yaml -f deploy/rbac.yaml >/dev/null
"${KA[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: $NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bench-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: launcher-reader}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-probe, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-probe}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: launcher-reader}]
EOF
log "a Job on $NODES nodes"
bash tests/testbed/testbed.sh nodes top "$NODES" dgx-h100-healthy >"$WORK/nodes.yaml"
"${KA[@]}" create -f "$WORK/nodes.yaml" >/dev/null
"${KA[@]}" create namespace bench-wl >/dev/null
"${KA[@]}" -n bench-wl create serviceaccount default >/dev/null
"${KA[@]}" -n bench-wl create job train --image=registry.invalid/train:1 >/dev/null
JOB_UID=$("${KA[@]}" -n bench-wl get job train -o jsonpath='{.metadata.uid}')
python3 - "$NODES" "$JOB_UID" >"$WORK/pods.yaml" <<'PY'
import sys
n, uid = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    print(f"""---
apiVersion: v1
kind: Pod
metadata:
  name: train-{i}
  namespace: bench-wl
  labels: {{batch.kubernetes.io/job-completion-index: "{i}"}}
  ownerReferences: [{{apiVersion: batch/v1, kind: Job, name: train, uid: {uid}, controller: true}}]
spec:
  nodeName: top-{i + 1}
  containers:
  - name: train
    image: registry.invalid/train:1
    resources: {{limits: {{nvidia.com/gpu: "8"}}}}""")
PY
"${KA[@]}" create -f "$WORK/pods.yaml" >/dev/null

audit() { sleep 1.5; [ -f "$TESTBED_DIR/audit.log" ] && wc -l <"$TESTBED_DIR/audit.log" || echo 0; }
ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
probe_ticks() { # the CPU ticks of every node-probe watch running now
  local t=0 p
  for p in $(pgrep -f "node-probe.* watch " || true); do t=$((t + $(ticks "$p"))); done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

A_START=$(audit)
tmux -L "$SOCK" -f /dev/null new-session -d -x 200 -y 80 \
  "env -u KUBECONFIG $LAUNCHER top job/train -n bench-wl --kubeconfig $TESTBED_READER_KUBECONFIG --namespace $NS --probe-image registry.invalid/node-probe:bench --stats $WORK/stats.json 2>$WORK/top.err; echo \$? > $WORK/status; sleep 600"
T0=$(date +%s.%N)
for _ in $(seq 600); do
  tmux -L "$SOCK" capture-pane -p | grep -q "$NODES node(s) $((NODES * 8)) GPU(s)" && \
    [ "$(tmux -L "$SOCK" capture-pane -p | grep -c '%')" -gt 0 ] && break
  sleep 0.2
done
FULL=$(python3 -c "import time;print(f'{time.time()-$T0:.1f}')")
if ! tmux -L "$SOCK" capture-pane -p | grep -q "$NODES node(s) $((NODES * 8)) GPU(s)"; then
  tmux -L "$SOCK" capture-pane -p >&2
  exit 1
fi
LPID=$(pgrep -f "^$LAUNCHER top job/train" | head -1)
sleep 3
A0=$(audit); L0=$(ticks "$LPID"); P0=$(probe_ticks); PN0=$(pgrep -fc "node-probe.* watch " || true)
sleep "$SPAN"
A1=$(audit); L1=$(ticks "$LPID"); P1=$(probe_ticks)
RSS=$(awk '/VmHWM/{print $2}' "/proc/$LPID/status")
# Two minutes from the start: every node's pod renewed once (at 55 s) and again (at 115 s).
while [ "$(python3 -c "import time;print(int(time.time()-$T0))")" -lt 125 ]; do sleep 1; done
A2=$(audit)
tmux -L "$SOCK" send-keys q
for _ in $(seq 300); do [ -s "$WORK/status" ] && break; sleep 0.1; done
# Pods deleted before the launcher exits can still be listed while the API server finishes their deletion.
GONE_AFTER=none
for i in $(seq 150); do
  if [ "$("${KA[@]}" -n "$NS" get pods -o name | wc -l)" = 0 ]; then GONE_AFTER="$(python3 -c "print($i * 0.1)") s"; break; fi
  sleep 0.1
done
LEFT=$("${KA[@]}" -n "$NS" get pods -o name | wc -l)
python3 - "$WORK/stats.json" <<PY
import json, sys
s = json.load(open(sys.argv[1]))
span = float($SPAN) + 1.5
nodes = $NODES
print(f"\n## top on a {nodes}-node Job ({nodes * 8} GPUs) at 1 s, 200x80, kwok ($PROFILE build)\n")
print("| figure | value |\n|---|---|")
print(f"| first full screen after the start | {float('$FULL'):.1f} s |")
print(f"| launcher CPU while it runs (steady {span:.0f} s) / peak RSS | {100 * ($L1 - $L0) / $HZ / span:.1f} % of a core / {$RSS / 1024:.0f} MiB |")
print(f"| probes' CPU per node (kwok's node-probe processes, {$PN0} running) | {100 * ($P1 - $P0) / $HZ / span / nodes:.2f} % of a core |")
print(f"| API requests per refresh once every row is on screen | {($A1 - $A0) / span:.2f} (audit log of the launcher's user: {$A1 - $A0} in {span:.0f} s) |")
print(f"| API requests in the first 125 s, renewals included (start: {$A0 - $A_START}) | {$A2 - $A_START} ({($A2 - $A_START) / nodes:.1f} per node) |")
st = s["sample_to_screen_ms"]
print(f"| from a sample on the node to its row drawn: p50 / p95 / max | {st['p50']:.0f} / {st['p95']:.0f} / {st['max']:.0f} ms |")
print(f"| a draw: p50 / p95 ({s['frames']} frames, {s['lines']} samples) | {s['draw_ms']['p50']:.1f} / {s['draw_ms']['p95']:.1f} ms |")
print(f"| the view's own CPU over its life / peak RSS (--stats) | {s['cpu_pct']:.1f} % / {s['max_rss_mib']:.0f} MiB |")
print(f"| probe pods left after q (listed none after) | $LEFT ($GONE_AFTER) |")
PY
