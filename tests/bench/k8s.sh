#!/usr/bin/env bash
# Benchmarks the launcher on the real control plane (tests/testbed: etcd + kube-apiserver + kwok) and prints a
# table:
#   1. p50/p95 of one get_gpu_health call through the launcher (a running `serve`, over MCP stdio) vs the same
#      steps scripted with kubectl (create -> wait Ready -> exec node-probe -> delete), same user, same node;
#      plus the same calls with copy delivery (node-probe streamed into a plain base image) and the difference;
#   2. scan_gpu_nodes over 100 and 1000 kwok nodes (BENCH_SCALES="100 1000 10000" adds the 10,000-node fleet of
#      issue 47; creating it takes minutes): wall time, launcher peak RSS and CPU, API requests per node (from
#      the apiserver's audit log of the launcher's user), the CPU the apiserver, etcd and kwok spent meanwhile,
#      pods left behind; then a cancelled scan of the largest fleet (SIGINT to `k8s-gpu-mcp call` once
#      BENCH_CANCEL_AFTER probe pods exist, default 50; 0 skips it): signal to exit, probe pods left;
#   3. the launcher's per-phase timings (from the results' run.timings), the API requests of one call by verb
#      and resource (audit log), its create, exec and delete as the API server timed them with the launcher's
#      gaps between them, and the time from the probe's answer to the tool's (run.after_probe_millis);
#   1e. a conversation: five node tools in a row on one node, BENCH_CONVERSATIONS rounds (default 5; 0 skips
#      it), cold (--reading-max-age 0) and with the node's reading kept, beside kubectl's flow for the same
#      questions (a pod a question; one pod a round): pods and API requests per question, p50/p95 per question
#      and per round, a round's first question and its later ones, the reused answers' ages;
#   4. diagnose_workload on a Job of BENCH_WORKLOAD_NODES nodes (default 64; 0 skips it), one 8-GPU pod per
#      node and one node with a GPU off the bus: wall time against one get_gpu_health (one probe round),
#      answer size, pods left.
# Usage: bash tests/bench/k8s.sh   (env: BENCH_CALLS=20 (0 skips 1 and 3), BENCH_SCALES="100 1000",
#        BENCH_CONCURRENCY=64, BENCH_CANCEL_AFTER=50, BENCH_WORKLOAD_NODES=64, BENCH_PROFILE=release,
#        BENCH_NODE_LEASE_SECONDS=40 (kwok's node leases; 0: none, see docs/performance.md), TESTBED_BIN,
#        BENCH_PREBUILT=1 to use the binaries of target/$PROFILE as they are, BENCH_BINDIR=DIR to use the
#        k8s-gpu-mcp and node-probe in DIR as they are (an earlier build, for an A/B on the same machine),
#        BENCH_KEEP=DIR to keep the run's logs there)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CALLS=${BENCH_CALLS:-20}
SCALES=${BENCH_SCALES-100 1000}
CONC=${BENCH_CONCURRENCY:-64}
PROFILE=${BENCH_PROFILE:-release}
log() { echo "bench: $*" >&2; }

if [ -n "${BENCH_BINDIR:-}" ]; then
  log "BENCH_BINDIR: the binaries in $BENCH_BINDIR, as they are"
elif [ "${BENCH_PREBUILT:-0}" = 1 ]; then
  log "BENCH_PREBUILT=1: the $PROFILE binaries already built, as they are"
elif [ "$PROFILE" = release ]; then
  cargo build --release -q -p k8s-gpu-mcp -p node-probe
else
  cargo build -q -p k8s-gpu-mcp -p node-probe
fi
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
BINDIR=$TARGET/$PROFILE
[ "$PROFILE" = dev ] && BINDIR=$TARGET/debug
[ -z "${BENCH_BINDIR:-}" ] || BINDIR=$(cd "$BENCH_BINDIR" && pwd)
LAUNCHER=$BINDIR/k8s-gpu-mcp
TESTBED_BIN=${TESTBED_BIN:-$(bash tests/testbed/build.sh)}
export TESTBED_BIN

WORK=$(mktemp -d /tmp/k8s-gpu-mcp-bench.XXXXXX)
mkfifo "$WORK/hold"
TESTBED_NODE_LEASE_SECONDS=${BENCH_NODE_LEASE_SECONDS:-40} TESTBED_AUDIT=1 TESTBED_PROBE_DIR=$BINDIR bash tests/testbed/testbed.sh up "$WORK/tb" <"$WORK/hold" \
  >"$WORK/tb.out" 2>"$WORK/tb.err" &
TB_PID=$!
exec 9>"$WORK/hold" # the testbed runs while this descriptor is open
cleanup() {
  # BENCH_KEEP=DIR keeps the run's files (the launcher's logs, the plans' outputs, the audit log) there.
  if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP"
    cp "$WORK"/*.* "$BENCH_KEEP"/ 2>/dev/null || true
    cp "$WORK"/tb/*.log "$BENCH_KEEP"/ 2>/dev/null || true
  fi
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
KR=(kubectl --kubeconfig "$TESTBED_READER_KUBECONFIG")
NS=gpu-diagnostics

# deploy/'s namespace and roles, bound to the launcher's user as deploy/bindings-example.yaml does.
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
bash tests/testbed/testbed.sh node gpu-node-1 dgx-h100-healthy | "${KA[@]}" apply -f - >/dev/null
"${KA[@]}" wait --for=condition=Ready node/gpu-node-1 --timeout=60s >/dev/null

# kwok runs every exec locally whatever the image, so the image is only a name here (without one the launcher
# would look for a base image on the node, and kwok nodes report none).
SERVER_JSON=$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1:]))' "$LAUNCHER" serve \
  --kubeconfig "$TESTBED_READER_KUBECONFIG" --namespace "$NS" --probe-image registry.invalid/node-probe:bench)

audit_count() { # lines of the launcher user's audit log so far
  sleep 1.5 # batch mode flushes every second
  [ -f "$TESTBED_DIR/audit.log" ] && wc -l <"$TESTBED_DIR/audit.log" || echo 0
}

cpu_ms() { # user + system CPU time of pid $1 and its reaped children (kwok's node-probe runs) so far, in ms
  awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print int(($12 + $13 + $14 + $15) * 1000 / hz)}' "/proc/$1/stat" 2>/dev/null || echo 0
}
read -r ETCD_PID KAS_PID KWOK_PID _ <<<"$TESTBED_PIDS"

# The pod kubectl's flows create: the launcher's pod shape, node-probe from its image (NAME is each pod's).
POD_TEMPLATE=$(cat <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: gpu-diagnostics, labels: {app.kubernetes.io/managed-by: bench-kubectl}}
spec:
  nodeName: gpu-node-1
  restartPolicy: Never
  activeDeadlineSeconds: 120
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  hostPID: true
  tolerations: [{operator: Exists}]
  containers:
  - name: probe
    image: registry.invalid/node-probe:bench
    command: [sleep, "120"]
    securityContext: {privileged: true}
    volumeMounts: [{name: host, mountPath: /host, readOnly: true}]
  volumes: [{name: host, hostPath: {path: /}}]
EOF
)
printf '%s\n' "$POD_TEMPLATE" >"$WORK/pod-template.yaml"

if [ "$CALLS" -gt 0 ]; then
# 1a. launcher: one warm-up call, then CALLS timed calls in one server session.
log "launcher: $CALLS x get_gpu_health"
cat >"$WORK/plan-health.json" <<EOF
{"server": $SERVER_JSON, "stderr": "$WORK/launcher-health.log",
 "calls": [{"tool": "get_gpu_health", "arguments": {"node_name": "gpu-node-1", "max_age_s": 0}, "repeat": $((CALLS + 1))}]}
EOF
before=$(audit_count)
python3 tests/bench/mcp_call.py "$WORK/plan-health.json" >"$WORK/health.json"
after=$(audit_count)
tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-health.log"

# 1b. kubectl: the same steps, same user, same pod shape as the launcher creates.
log "kubectl: $CALLS x create/wait/exec/delete"
: >"$WORK/kubectl-ms"
for i in $(seq 0 "$CALLS"); do
  name=bench-kubectl-$i
  t0=$(date +%s%N)
  echo "${POD_TEMPLATE/NAME/$name}" | "${KR[@]}" create -f - >/dev/null
  "${KR[@]}" -n "$NS" wait --for=condition=Ready "pod/$name" --timeout=60s >/dev/null
  "${KR[@]}" -n "$NS" exec "$name" -c probe -- node-probe health --node-name gpu-node-1 >"$WORK/kubectl-out.json"
  "${KR[@]}" -n "$NS" delete pod "$name" --grace-period=0 --wait=true >/dev/null 2>&1
  t1=$(date +%s%N)
  [ "$i" -eq 0 ] || echo $(((t1 - t0) / 1000000)) >>"$WORK/kubectl-ms"
done
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "probe" in d, d' "$WORK/kubectl-out.json"

# 1d. Where an exec's time goes: execs into one running pod (as the launcher's user, so the audit log times
# them on the API server) of `true` (the exec path alone: API server -> kwok -> a process) and of node-probe,
# and node-probe run on this machine as kwok runs it (its own wall and CPU time).
log "exec path: 10 x exec of true and of node-probe into one running pod; node-probe alone"
echo "${POD_TEMPLATE/NAME/bench-exec}" | "${KR[@]}" create -f - >/dev/null
"${KR[@]}" -n "$NS" wait --for=condition=Ready pod/bench-exec --timeout=60s >/dev/null
before=$(audit_count)
for _ in $(seq 10); do
  "${KR[@]}" -n "$NS" exec bench-exec -c probe -- true
  "${KR[@]}" -n "$NS" exec bench-exec -c probe -- node-probe health --node-name gpu-node-1 >/dev/null
done
after=$(audit_count)
tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-exec.log"
"${KR[@]}" -n "$NS" delete pod bench-exec --grace-period=0 --wait=true >/dev/null 2>&1
NODE_PROBE_SCENARIO_MAP="$TESTBED_DIR/scenario-map.json" python3 - "$BINDIR/node-probe" >"$WORK/probe-alone.json" <<'PY'
import json, resource, subprocess, sys, time
walls, cpus = [], []
for _ in range(20):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run([sys.argv[1], "health", "--node-name", "gpu-node-1"], stdout=subprocess.DEVNULL, check=True)
    walls.append((time.monotonic() - t) * 1000)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
json.dump({"wall": walls, "cpu": cpus}, sys.stdout)
PY

# 1c. copy delivery: the same calls, node-probe (a stripped copy of the same build) streamed over exec into a
# plain base image; the first (warm-up) call also reads, hashes and archives it.
mkdir -p "$WORK/probes"
strip -o "$WORK/probes/node-probe-linux-amd64" "$BINDIR/node-probe"
COPY_SERVER_JSON=$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1:]))' "$LAUNCHER" serve \
  --kubeconfig "$TESTBED_READER_KUBECONFIG" --namespace "$NS" \
  --probe-delivery copy --probe-bin-dir "$WORK/probes" --probe-image debian:bookworm-slim)
log "launcher, copy delivery: $CALLS x get_gpu_health"
cat >"$WORK/plan-health-copy.json" <<EOF
{"server": $COPY_SERVER_JSON, "stderr": "$WORK/launcher-health-copy.log",
 "calls": [{"tool": "get_gpu_health", "arguments": {"node_name": "gpu-node-1", "max_age_s": 0}, "repeat": $((CALLS + 1))}]}
EOF
python3 tests/bench/mcp_call.py "$WORK/plan-health-copy.json" >"$WORK/health-copy.json"
stat -c %s "$WORK/probes/node-probe-linux-amd64" >"$WORK/probe-bytes"
fi

# 1e. A conversation about one node: five different read-only node tools in a row, BENCH_CONVERSATIONS times
# (tests/bench/conversation.py): the launcher cold (--reading-max-age 0: every question probes) and kept (the
# default: the first question of each round reads the node, max_age_s 0, the next four answer from that
# reading), beside kubectl's flow for the same questions as the same user (a pod a question; one pod a round).
# Pods created and API requests per question from the audit log, p50/p95; its own table.
CONVS=${BENCH_CONVERSATIONS:-5}
if [ "$CONVS" -gt 0 ]; then
conv_rows=()
for MODE in cold kept; do
  log "conversation ($MODE): $CONVS x five node tools on gpu-node-1"
  python3 tests/bench/conversation.py plan "$MODE" "$CONVS" gpu-node-1 "$SERVER_JSON" "$WORK/launcher-conv-$MODE.log" \
    >"$WORK/plan-conv-$MODE.json"
  before=$(audit_count)
  python3 tests/bench/mcp_call.py "$WORK/plan-conv-$MODE.json" >"$WORK/conv-$MODE.json"
  after=$(audit_count)
  tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-conv-$MODE.log"
  conv_rows+=("launcher, $MODE=$WORK/conv-$MODE.json=$WORK/audit-conv-$MODE.log")
done
for PER in question round; do
  log "conversation (kubectl, a pod a $PER): $CONVS x five node-probe commands on gpu-node-1"
  before=$(audit_count)
  python3 tests/bench/conversation.py kubectl "$PER" "$CONVS" gpu-node-1 "$NS" "$WORK/pod-template.yaml" "${KR[@]}" \
    >"$WORK/conv-kubectl-$PER.json"
  after=$(audit_count)
  tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-conv-kubectl-$PER.log"
  label="a pod a question"
  [ "$PER" = question ] || label="one pod a round"
  conv_rows+=("kubectl, $label=$WORK/conv-kubectl-$PER.json=$WORK/audit-conv-kubectl-$PER.log")
done
printf '\n### A conversation: five node tools on one node (health, processes, topology, ECC, inventory), kwok\n\n'
python3 tests/bench/conversation.py table "${conv_rows[@]}"
fi

# 2. scans.
: >"$WORK/scans.txt"
for S in $SCALES; do
  log "scan: creating $S nodes"
  t0=$(date +%s)
  # 1% of the nodes are sick (half an Xid 79, half a flapping InfiniBand port), so the answers rank problems
  # among many healthy nodes, as on a real fleet.
  SICK=$((S / 100))
  bash tests/testbed/testbed.sh nodes "scale$S" "$((S - SICK))" dgx-h100-healthy "label=bench-scale=$S" >"$WORK/nodes-$S.yaml"
  if [ "$SICK" -gt 0 ]; then
    for sc in dgx-h100-xid79 dgx-h100-ib-flapping; do
      echo "---" >>"$WORK/nodes-$S.yaml"
      bash tests/testbed/testbed.sh nodes "sick$S-${sc#dgx-h100-}" "$(((SICK + 1) / 2))" "$sc" "label=bench-scale=$S" >>"$WORK/nodes-$S.yaml"
    done
  fi
  S_ALL=$((S - SICK + 2 * ((SICK + 1) / 2)))
  # kubectl's client-side rate limit (5 requests/s) makes one `create -f` of 1000 nodes take minutes:
  # split the list and create the parts in parallel, one kubectl each (about 60 nodes each).
  PARTS=$(((S + 59) / 60))
  [ "$PARTS" -le 160 ] || PARTS=160
  python3 - "$WORK/nodes-$S.yaml" "$PARTS" <<'PY'
import sys
path, parts = sys.argv[1], int(sys.argv[2])
docs = [d for d in open(path).read().split("\n---\n") if d.strip()]
for i in range(parts):
    with open(f"{path}.{i}", "w") as f:
        f.write("\n---\n".join(docs[i::parts]) + "\n")
PY
  pids=()
  for part in "$WORK/nodes-$S.yaml".*; do
    [ -s "$part" ] || continue
    "${KA[@]}" create -f "$part" >/dev/null &
    pids+=($!)
    # At most 16 kubectl at once: each is a Go process of its own on a small machine.
    if [ "${#pids[@]}" -ge 16 ]; then
      wait "${pids[0]}"
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # Polled, not `kubectl wait`: that waits node by node under kubectl's 5 requests/s limit (minutes for 1000).
  for _ in $(seq 600); do
    ready=$("${KA[@]}" get nodes -l "bench-scale=$S" \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
    [ "$ready" -ge "$S_ALL" ] && break
    sleep 2
  done
  [ "$ready" -ge "$S_ALL" ] || { log "only $ready of $S_ALL nodes Ready after 600 s"; exit 1; }
  log "scan: $S nodes Ready after $(($(date +%s) - t0)) s; scanning (concurrency $CONC)"
  sleep 5 # let the apiserver and kwok settle after the nodes' creation
  before=$(audit_count)
  cpu0="$(cpu_ms "$KAS_PID") $(cpu_ms "$ETCD_PID") $(cpu_ms "$KWOK_PID")"
  cat >"$WORK/plan-scan-$S.json" <<EOF
{"server": $SERVER_JSON, "stderr": "$WORK/launcher-scan-$S.log", "timeout": 600,
 "calls": [{"tool": "scan_gpu_nodes",
            "arguments": {"check": "health", "label_selector": "bench-scale=$S", "concurrency": $CONC}},
           {"tool": "list_gpu_nodes", "arguments": {"label_selector": "bench-scale=$S"}}]}
EOF
  python3 tests/bench/mcp_call.py "$WORK/plan-scan-$S.json" >"$WORK/scan-$S.json"
  cpu1="$(cpu_ms "$KAS_PID") $(cpu_ms "$ETCD_PID") $(cpu_ms "$KWOK_PID")"
  echo "$cpu0 $cpu1" >"$WORK/cpu-$S"
  after=$(audit_count)
  left=$("${KA[@]}" -n "$NS" get pods -o name | wc -l)
  tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-$S.log"
  echo "$S $left" >>"$WORK/scans.txt"
done

# 2c. A cancelled scan of the largest fleet: SIGINT to `k8s-gpu-mcp call` once probe pods run, then the probe
# pods left once it exited (the launcher deletes its pods before it exits: docs/performance.md).
CANCEL_AFTER=${BENCH_CANCEL_AFTER:-50}
LAST=$(echo "$SCALES" | tr ' ' '\n' | grep . | tail -n 1 || true)
if [ -n "$LAST" ] && [ "$CANCEL_AFTER" -gt 0 ]; then
  log "cancel: scan of $LAST nodes, SIGINT once $CANCEL_AFTER probe pods exist"
  "$LAUNCHER" call scan_gpu_nodes --kubeconfig "$TESTBED_READER_KUBECONFIG" --namespace "$NS" \
    --probe-image registry.invalid/node-probe:bench --arg "label_selector=bench-scale=$LAST" \
    --arg "concurrency=$CONC" >"$WORK/cancel.out" 2>"$WORK/cancel.err" &
  CALL_PID=$!
  seen=0
  for _ in $(seq 1200); do
    seen=$("${KA[@]}" -n "$NS" get pods -o name 2>/dev/null | wc -l)
    [ "$seen" -ge "$CANCEL_AFTER" ] && break
    kill -0 "$CALL_PID" 2>/dev/null || break
    sleep 0.05
  done
  t0=$(date +%s%N)
  kill -INT "$CALL_PID" 2>/dev/null || true
  rc=0
  wait "$CALL_PID" || rc=$?
  t1=$(date +%s%N)
  left=$("${KA[@]}" -n "$NS" get pods -o name | wc -l)
  echo "$LAST $seen $(((t1 - t0) / 1000000)) $rc $left" >"$WORK/cancel.txt"
fi

# 4. A training job across many nodes.
WL_NODES=${BENCH_WORKLOAD_NODES:-64}
if [ "$WL_NODES" -gt 0 ]; then
  log "workload: $WL_NODES nodes, one Job pod each"
  bash tests/testbed/testbed.sh nodes wl "$((WL_NODES - 1))" dgx-h100-healthy "label=bench-wl=1" >"$WORK/wl-nodes.yaml"
  echo "---" >>"$WORK/wl-nodes.yaml"
  bash tests/testbed/testbed.sh nodes wlsick 1 dgx-h100-xid79 "label=bench-wl=1" >>"$WORK/wl-nodes.yaml"
  "${KA[@]}" create -f "$WORK/wl-nodes.yaml" >/dev/null
  "${KA[@]}" create namespace bench-wl >/dev/null
  # No controller-manager runs in the testbed: the namespace's default ServiceAccount is made here.
  "${KA[@]}" -n bench-wl create serviceaccount default >/dev/null
  "${KA[@]}" -n bench-wl create job train --image=registry.invalid/train:1 >/dev/null
  JOB_UID=$("${KA[@]}" -n bench-wl get job train -o jsonpath='{.metadata.uid}')
  python3 - "$WL_NODES" "$JOB_UID" >"$WORK/wl-pods.yaml" <<'PY'
import sys
n, uid = int(sys.argv[1]), sys.argv[2]
nodes = [f"wl-{i}" for i in range(1, n)] + ["wlsick-1"]
for i, node in enumerate(nodes):
    print(f"""---
apiVersion: v1
kind: Pod
metadata:
  name: train-{i}
  namespace: bench-wl
  labels: {{batch.kubernetes.io/job-completion-index: "{i}"}}
  ownerReferences: [{{apiVersion: batch/v1, kind: Job, name: train, uid: {uid}, controller: true}}]
spec:
  nodeName: {node}
  containers:
  - name: train
    image: registry.invalid/train:1
    resources: {{limits: {{nvidia.com/gpu: "8"}}}}""")
PY
  "${KA[@]}" create -f "$WORK/wl-pods.yaml" >/dev/null
  for _ in $(seq 300); do
    # kwok runs a Job's pods to completion at once; a pod is placed once it left Pending.
    running=$("${KA[@]}" -n bench-wl get pods --field-selector=status.phase!=Pending -o name | wc -l)
    [ "$running" -ge "$WL_NODES" ] && break
    sleep 1
  done
  cat >"$WORK/plan-wl.json" <<EOF
{"server": $SERVER_JSON, "stderr": "$WORK/launcher-wl.log", "timeout": 120,
 "calls": [{"tool": "get_gpu_health", "arguments": {"node_name": "wl-1"}, "repeat": 4},
           {"tool": "diagnose_workload", "arguments": {"namespace": "bench-wl", "job": "train"}, "repeat": 4}]}
EOF
  python3 tests/bench/mcp_call.py "$WORK/plan-wl.json" >"$WORK/wl.json"
  "${KA[@]}" -n "$NS" get pods -o name | wc -l >"$WORK/wl-left"
fi

python3 - "$WORK" "$CALLS" "$CONC" <<'EOF'
import json, os, statistics, sys
from collections import Counter
work, calls, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))
    return xs[k]

h = None
if os.path.exists(f"{work}/health.json"):
    h = json.load(open(f"{work}/health.json"))
    res = h["results"][1:]  # first call warms up the client and connection
    errs = [r for r in res if r["is_error"]]
    if errs:
        sys.exit(f"launcher get_gpu_health failed: {errs[0]['text']}")
    # Each call asked max_age_s 0: a kept reading answering one would time memory, not a probe.
    if any(r["structured"]["run"].get("reading_reused") for r in res):
        sys.exit("launcher get_gpu_health answered from a kept reading: this table times probes")
    lm = [r["ms"] for r in res]
    km = [float(x) for x in open(f"{work}/kubectl-ms").read().split()]
    print("## 1. One get_gpu_health call on gpu-node-1, read afresh each call (max_age_s 0) (ms)\n")
    print("| flow | n | p50 | p95 |")
    print("|---|---|---|---|")
    print(f"| launcher (serve, MCP stdio) | {len(lm)} | {pct(lm,50):.0f} | {pct(lm,95):.0f} |")
    print(f"| kubectl create → wait → exec → delete | {len(km)} | {pct(km,50):.0f} | {pct(km,95):.0f} |")
    print(f"| **ratio kubectl / launcher** | | **{pct(km,50)/pct(lm,50):.1f}×** | **{pct(km,95)/pct(lm,95):.1f}×** |")
    hc = json.load(open(f"{work}/health-copy.json"))
    cres = hc["results"][1:]
    cerrs = [r for r in cres if r["is_error"]]
    if cerrs:
        sys.exit(f"launcher get_gpu_health (copy delivery) failed: {cerrs[0]['text']}")
    cm = [r["ms"] for r in cres]
    pb = int(open(f"{work}/probe-bytes").read())
    print(f"| launcher, copy delivery ({pb/1e6:.1f} MB node-probe streamed per call) | {len(cm)} | {pct(cm,50):.0f} | {pct(cm,95):.0f} |")
    print(f"| **copy delivery − image** | | **{pct(cm,50)-pct(lm,50):+.0f}** | **{pct(cm,95)-pct(lm,95):+.0f}** |")
    print(f"\ncopy delivery's first call (also reads, checks, hashes and archives node-probe): {hc['results'][0]['ms']:.0f} ms")
    # The API requests of the calls of 1a, by verb and resource, from the API server's audit log of the
    # launcher's user: each request goes to the call during which the API server received it (the server's
    # startup before the first call: its sweep of leftover probe pods and of gone runs' marks).
    from datetime import datetime
    def key(e):
        o = e.get("objectRef", {})
        res_ = o.get("resource", "") + ("/" + o["subresource"] if o.get("subresource") else "")
        return f"{e['verb']} {res_ or e.get('requestURI', '?').split('?')[0]}"
    def at(ts):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    allres = h["results"]
    n = len(allres)
    startup, first, later, total = Counter(), Counter(), Counter(), Counter()
    server_ms, chains = {}, {}
    for l in open(f"{work}/audit-health.log"):
        e = json.loads(l)
        if e.get("stage") != "ResponseComplete":
            continue
        k, t = key(e), at(e["requestReceivedTimestamp"])
        total[k] += 1
        if t < allres[0]["start_unix"]:
            startup[k] += 1
        elif n == 1 or t < allres[1]["start_unix"]:
            first[k] += 1
        else:
            later[k] += 1
            if e["verb"] != "watch":
                server_ms.setdefault(k, []).append((at(e["stageTimestamp"]) - t) * 1000)
                # The call's chain as the API server saw it: its create, exec and delete, by the call it is in.
                if k in ("create pods", "get pods/exec", "delete pods"):
                    i = max(j for j, r in enumerate(allres) if r["start_unix"] <= t)
                    chains.setdefault(i, {})[k] = (t, at(e["stageTimestamp"]))
    fmt = lambda c, d=1: ", ".join(f"{k} {v / d:.2f}".replace(".00", "") for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"\nAPI requests of get_gpu_health ({n} calls of one session, audit log): {sum(total.values()) / n:.2f} a call "
          f"in all (the server's startup and the first call's one-offs included)")
    print("\n| when | requests | by verb and resource |")
    print("|---|---|---|")
    print(f"| the server's startup (before the first call) | {sum(startup.values())} | {fmt(startup)} |")
    print(f"| the first call | {sum(first.values())} | {fmt(first)} |")
    if n > 1:
        print(f"| each later call (mean of {n - 1}) | {sum(later.values()) / (n - 1):.2f} | {fmt(later, n - 1)} |")
        print("\nThe API server's time per request of the later calls (received to answered), p50 / max ms: " +
              ", ".join(f"{k} {pct(v, 50):.1f} / {max(v):.1f}" for k, v in sorted(server_ms.items())))
        # The gaps between the three requests in a row are the launcher's; the rest of the span is the server's.
        parts = {"create": [], "to exec": [], "exec": [], "to delete": [], "delete": [], "create received to delete answered": []}
        for c in chains.values():
            if len(c) < 3:
                continue
            (c0, c1), (e0, e1), (d0, d1) = c["create pods"], c["get pods/exec"], c["delete pods"]
            for name, v in (("create", c1 - c0), ("to exec", e0 - c1), ("exec", e1 - e0), ("to delete", d0 - e1),
                            ("delete", d1 - d0), ("create received to delete answered", d1 - c0)):
                parts[name].append(v * 1000)
        if parts["exec"]:
            print(f"\nOne call's probe requests at the API server, p50 of {len(parts['exec'])} (the gaps are the launcher's): " +
                  ", ".join(f"{k} {pct(v, 50):.1f} ms" for k, v in parts.items()))
    if os.path.exists(f"{work}/audit-exec.log"):
        ex = {"true": [], "node-probe": []}
        for l in open(f"{work}/audit-exec.log"):
            e = json.loads(l)
            if e.get("stage") != "ResponseComplete" or e.get("objectRef", {}).get("subresource") != "exec":
                continue
            cmd = "true" if "command=true" in e.get("requestURI", "") else "node-probe"
            ex[cmd].append((at(e["stageTimestamp"]) - at(e["requestReceivedTimestamp"])) * 1000)
        pa = json.load(open(f"{work}/probe-alone.json"))
        if ex["true"] and ex["node-probe"]:
            print(f"\nWhere an exec's time goes (the API server's time, received to answered, p50 of "
                  f"{len(ex['true'])}): an exec of `true` {pct(ex['true'], 50):.1f} ms (the exec path: API server -> "
                  f"kwok -> a process), of `node-probe health` {pct(ex['node-probe'], 50):.1f} ms; node-probe health "
                  f"alone on this machine, p50 wall / CPU: {pct(pa['wall'], 50):.1f} / {pct(pa['cpu'], 50):.1f} ms")
    after = [r["structured"]["run"].get("after_probe_millis") for r in res if r.get("structured")]
    after = [a for a in after if a is not None]
    if after:
        print(f"\nThe answer's wait for the API reads beside the probe, after the probe's document, p50 / p95 / max: "
              f"{pct(after,50)} / {pct(after,95)} / {max(after)} ms")
    tail = []
    for r in res:
        ts = {t["phase"]: t["millis"] for t in (r.get("structured") or {}).get("run", {}).get("timings", [])}
        if "probing" in ts:
            tail.append(r["ms"] - sum(ts.get(p, 0) for p in ("starting_probe", "waiting_for_probe", "probing")))
    if tail:
        print(f"From the probe's document to the answer at the client (the call's wall time less its starting, "
              f"waiting and probing phases: the delete, the reads beside, rendering, MCP over stdio), p50 / p95: "
              f"{pct(tail,50):.1f} / {pct(tail,95):.1f} ms")

print("\n## 2. scan_gpu_nodes (check health, concurrency %s)\n" % conc)
print("| nodes | ok | failed | wall s | launcher peak RSS MB | launcher CPU s | apiserver / etcd / kwok (with its node-probe runs) CPU s | API requests / node | pods left |")
print("|---|---|---|---|---|---|---|---|---|")
breakdowns = {}
for line in open(f"{work}/scans.txt"):
    s, left = line.split()
    d = json.load(open(f"{work}/scan-{s}.json"))
    r = d["results"][0]
    if r["is_error"]:
        print(f"| {s} | scan failed: {r['text'][:200]} | | | | | | | {left} |")
        continue
    st = r["structured"]
    reqs = Counter()
    for l in open(f"{work}/audit-{s}.log"):
        e = json.loads(l)
        # Long-running requests (watch, exec) are logged at ResponseStarted and again at ResponseComplete.
        if e.get("stage") != "ResponseComplete":
            continue
        o = e.get("objectRef", {})
        reqs[f"{e['verb']} {o.get('resource','')}{'/' + o['subresource'] if o.get('subresource') else ''}"] += 1
    breakdowns[s] = reqs
    total = sum(reqs.values())
    nodes = st.get("nodes_total") or int(s)
    c = [int(x) for x in open(f"{work}/cpu-{s}").read().split()]
    server = " / ".join(f"{(c[i + 3] - c[i]) / 1000:.1f}" for i in range(3))
    cpu = f"{r['cpu_ms'] / 1000:.1f}" if r.get("cpu_ms") is not None else "?"
    print(f"| {nodes} | {st.get('nodes_ok')} | {st.get('nodes_failed')} | {r['ms']/1000:.1f} | "
          f"{d['peak_rss_kib']/1024:.0f} | {cpu} | {server} | {total/nodes:.2f} | {left} |")
print("\n## 2b. Answer sizes on the same nodes (bytes; tokens ≈ bytes/4, stated as such, no tokenizer)\n")
print("| nodes | tool | text bytes | ≈ text tokens | structured bytes | needs attention / problems | listed |")
print("|---|---|---|---|---|---|---|")
for line in open(f"{work}/scans.txt"):
    s, _ = line.split()
    d = json.load(open(f"{work}/scan-{s}.json"))
    for r, tool in zip(d["results"], ["scan_gpu_nodes", "list_gpu_nodes"]):
        if r["is_error"]:
            print(f"| {s} | {tool} | failed: {r['text'][:120]} | | | | |")
            continue
        st = r["structured"] or {}
        tb, sb = len(r["text"].encode()), len(json.dumps(st, separators=(",", ":")).encode())
        if tool == "scan_gpu_nodes":
            flagged, listed = st.get("needs_attention_total"), len(st.get("needs_attention", []))
        else:
            flagged, listed = st.get("problems"), len(st.get("nodes", []))
        print(f"| {s} | {tool} | {tb} | {tb // 4} | {sb} | {flagged} | {listed} |")
for s, reqs in breakdowns.items():
    print(f"\nAPI requests of the launcher's user during the {s}-node scan and list: " +
          ", ".join(f"{k}: {v}" for k, v in sorted(reqs.items())))
if os.path.exists(f"{work}/cancel.txt"):
    n, seen, ms, rc, left = open(f"{work}/cancel.txt").read().split()
    print(f"\n## 2c. Cancelled scan of {n} nodes\n")
    print(f"SIGINT to `k8s-gpu-mcp call scan_gpu_nodes` with {seen} probe pods in the namespace: exited "
          f"{ms} ms later (status {rc}); probe pods left after it exited: **{left}**")

if h is not None:
    print("\n## 3. Launcher per-phase timings of get_gpu_health (ms, mean / p95 over %d calls)\n" % len(res))
    phases = {}
    for r in res:
        for t in (r["structured"] or {}).get("run", {}).get("timings", []):
            phases.setdefault(t["phase"], []).append(t["millis"])
    print("| phase | mean | p95 |")
    print("|---|---|---|")
    for p, xs in phases.items():
        print(f"| {p} | {statistics.mean(xs):.1f} | {pct(xs,95)} |")
    tot = [r["structured"]["run"].get("total_millis") for r in res if r["structured"]]
    if tot and tot[0] is not None:
        print(f"| total (launcher's view) | {statistics.mean(tot):.1f} | {pct(tot,95)} |")
    print(f"\nlauncher MCP initialize: {h['init_ms']:.0f} ms; peak RSS during the health calls: {h['peak_rss_kib']/1024:.0f} MB")

if os.path.exists(f"{work}/wl.json"):
    w = json.load(open(f"{work}/wl.json"))
    res = w["results"]
    errs = [r for r in res if r["is_error"]]
    if errs:
        sys.exit(f"workload bench failed: {errs[0]['text'][:300]}")
    # The first call of each tool warms the connection; the other three are measured.
    health = [r["ms"] for r in res[1:4]]
    diag = [r["ms"] for r in res[5:8]]
    st = res[-1]["structured"]
    d = st["diagnosis"]
    first = d["suspects"][0] if d["suspects"] else {}
    tb = len(res[-1]["text"].encode())
    print("\n## 4. diagnose_workload on a %d-node Job (one 8-GPU pod per node; one GPU off the bus)\n" % st["nodes_probed"])
    print("| measure | result |")
    print("|---|---|")
    print(f"| one probe round: get_gpu_health on one node, median of 3 | {statistics.median(health):.0f} ms |")
    print(f"| diagnose_workload, median of 3 | {statistics.median(diag):.0f} ms ({statistics.median(diag)/statistics.median(health):.1f} probe rounds) |")
    print(f"| nodes probed / failed | {st['nodes_probed']} / {st['nodes_failed']} |")
    print(f"| first suspect | {first.get('code')} on {first.get('node')} GPU {first.get('gpu')} |")
    print(f"| answer | text {tb} bytes (≈ {tb // 4} tokens, bytes/4), structured {len(json.dumps(st))} bytes |")
    print(f"| launcher peak RSS | {w['peak_rss_kib']/1024:.0f} MB |")
    print(f"| probe pods left | {open(f'{work}/wl-left').read().strip()} |")
EOF
