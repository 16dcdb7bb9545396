#!/usr/bin/env bash
# Benchmarks one get_gpu_health call on a REAL node (tests/testbed/realnode.sh: kubelet + containerd + runc,
# fake NVML under the driver root) and prints a table, all flows in the same run, CALLS timed calls each after
# one warm-up:
#   launcher, default delivery (no delivery flags: node-probe copied into an image the node already has)
#   launcher, image delivery (--probe-image with node-probe, imported on the node)
#   launcher, copy delivery into a named base (--probe-delivery copy --probe-image debian)
#   launcher, ephemeral container in a running GPU pod (--probe-mode ephemeral)
#   kubectl run -> wait Ready -> exec node-probe -> delete --force (the same pod shape, by hand)
#   kubectl debug node/N --profile=sysadmin -> wait for it to finish -> logs -> delete (the flow of the
#   original design: the debug pod runs node-probe as its command)
# with p50/p95, the launcher's phases (means), and the floor: the kubelet's own runtime operations per pod
# (run sandbox + create + start container, means from its /metrics over the launcher's image-delivery calls).
# Pods left in the API after the run are counted. Then a conversation (tests/bench/conversation.py): five
# different node tools in a row on the node, BENCH_CONVERSATIONS rounds (default 5; 0 skips it), the launcher
# cold and with the node's reading kept, beside kubectl's flow for the same questions (a pod a question; one
# pod a round): pods and API requests per question, p50/p95, a round's first question and its later ones; and
# the same through a shaped link to the API server (BENCH_LINK="RTT_MS RATE_MBIT", default "30 100":
# tests/bench/slowlink.py), with node-probe sent gzip-compressed, plain, or not at all (image delivery).
# Needs root (the real node). Usage: bash tests/bench/realnode.sh   (env: BENCH_CALLS=20 (0 skips the single-call flows),
# BENCH_PROFILE=release, TESTBED_BIN, BENCH_PREBUILT=1 to use the binaries of target/$PROFILE as they are,
# BENCH_BINDIR=DIR to use the k8s-gpu-mcp and node-probe in DIR as they are: an earlier build, for an A/B;
# BENCH_EPHEMERAL_NEW=8: the calls of the new-ephemeral-container flow, 5 s apart; BENCH_KEEP=DIR keeps the
# run's files there)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CALLS=${BENCH_CALLS:-20}
PROFILE=${BENCH_PROFILE:-release}
log() { echo "bench: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "the real-node benchmark needs root" >&2; exit 1; }

if [ -n "${BENCH_BINDIR:-}" ]; then
  log "BENCH_BINDIR: the binaries in $BENCH_BINDIR, as they are"
elif [ "${BENCH_PREBUILT:-0}" = 1 ]; then
  echo "bench: BENCH_PREBUILT=1: the $PROFILE binaries already built, as they are" >&2
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

WORK=$(mktemp -d /tmp/k8s-gpu-mcp-rnbench.XXXXXX)
mkfifo "$WORK/hold"
TESTBED_AUDIT=1 bash tests/testbed/testbed.sh up "$WORK/tb" <"$WORK/hold" >"$WORK/tb.out" 2>"$WORK/tb.err" &
TB_PID=$!
exec 9>"$WORK/hold"
NODE_PID="" LINK_PID=""
cleanup() {
  [ -z "$LINK_PID" ] || kill "$LINK_PID" 2>/dev/null || true
  [ -z "$NODE_PID" ] || { exec 8>&-; wait "$NODE_PID" 2>/dev/null || true; }
  exec 9>&-
  wait "$TB_PID" 2>/dev/null || true
  # BENCH_KEEP=DIR keeps the run's files (plans, answers, the launchers' logs, the audit log) there.
  [ -z "${BENCH_KEEP:-}" ] || { mkdir -p "$BENCH_KEEP" && cp -r "$WORK"/. "$BENCH_KEEP"/ 2>/dev/null || true; }
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

# Images: the cached bases, this build's probe image, a GPU workload image (for the ephemeral target).
IMAGES=$(bash tests/testbed/realnode.sh images "${TESTBED_CACHE:-$HOME/.cache/k8s-gpu-mcp-testbed}/images")
mkdir -p "$WORK/probes"
strip -o "$WORK/probes/node-probe-linux-amd64" "$BINDIR/node-probe"
bash deploy/probe-image/build.sh --tag testbed.invalid/node-probe:bench --probe-bin "$WORK/probes/node-probe-linux-amd64" \
  --out "$WORK/probe.tar" >/dev/null
cc -shared -fPIC -o "$WORK/libnvidia-ml.so.1" tests/fake-nvml/fake_nvml.c
python3 deploy/probe-image/mkimage.py --tag testbed.invalid/gpu-workload:1 --out "$WORK/workload.tar" \
  --symlink bin:usr/bin --symlink lib:usr/lib --symlink lib64:usr/lib64 \
  --file /usr/bin/sleep:/usr/bin/sleep:0755 \
  --file "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6):/usr/lib/x86_64-linux-gnu/libc.so.6:0755" \
  --file "$(readlink -f /lib64/ld-linux-x86-64.so.2):/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:0755" \
  --symlink usr/lib64/ld-linux-x86-64.so.2:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 \
  --file "$WORK/libnvidia-ml.so.1:/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1:0755" 2>/dev/null

NODE=real-bench
mkfifo "$WORK/nodehold"
TESTBED_DIR=$WORK/tb REALNODE_NAME=$NODE REALNODE_FAKE_NVML=$WORK/libnvidia-ml.so.1 \
  REALNODE_IMAGES="$IMAGES/pause.tar $IMAGES/debian.tar $WORK/probe.tar $WORK/workload.tar" \
  bash tests/testbed/realnode.sh up "$WORK/node" <"$WORK/nodehold" >"$WORK/node.out" 2>"$WORK/node.err" &
NODE_PID=$!
exec 8>"$WORK/nodehold"
for _ in $(seq 600); do
  grep -q "realnode ready" "$WORK/node.out" 2>/dev/null && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/node.err" >&2; exit 1; }
  sleep 0.2
done
# shellcheck disable=SC1091
source "$WORK/node/env"

KA=(kubectl --kubeconfig "$TESTBED_ADMIN_KUBECONFIG")
KR=(kubectl --kubeconfig "$TESTBED_READER_KUBECONFIG")
NS=gpu-diagnostics
"${KA[@]}" apply -f deploy/00-namespace.yaml -f deploy/rbac.yaml >/dev/null
# What a controller-manager would add (kubectl debug's pods mount a service-account token), and deploy/'s
# roles for the launcher's user (the operator role too: ephemeral containers need it).
CA_PEM=$(sed 's/^/    /' "$TESTBED_CA")
"${KA[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: $NS}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kube-root-ca.crt, namespace: $NS}
data:
  ca.crt: |
$CA_PEM
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
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-operator, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: launcher-reader}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-kubectl, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: launcher-reader}]
---
apiVersion: v1
kind: Pod
metadata: {name: gpu-target, namespace: $NS}
spec:
  nodeName: $NODE
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - {name: main, image: testbed.invalid/gpu-workload:1, imagePullPolicy: Never, command: [sleep, "3600"],
     resources: {limits: {nvidia.com/gpu: 1}},
     volumeMounts: [{name: nvml, mountPath: /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1, readOnly: true}]}
  # The driver's library as the NVIDIA container toolkit injects it (the node's file, bound read-only): the
  # only libnvidia-ml an ephemeral probe loads from a workload (SECURITY.md).
  volumes: [{name: nvml, hostPath: {path: /run/nvidia/driver/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1, type: File}}]
EOF
"${KA[@]}" -n "$NS" wait --for=condition=Ready pod/gpu-target --timeout=60s >/dev/null
# kubectl debug grants node access with the cluster-scoped nodes/... it reads; the reader role has get nodes.

metrics() { # the kubelet's runtime operation sums and counts
  curl -sk "https://127.0.0.1:$REALNODE_KUBELET_PORT/metrics" |
    grep -E '^kubelet_runtime_operations_duration_seconds_(sum|count)\{operation_type="(run_podsandbox|create_container|start_container)"' || true
}

launcher_flow() { # NAME ARGS... : CALLS+1 calls in one server session (PAUSE_MS between them, N calls)
  local name=$1 n=${N:-$CALLS} pause=${PAUSE_MS:-0}
  shift
  local server
  server=$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1:]))' "$LAUNCHER" serve \
    --kubeconfig "$TESTBED_READER_KUBECONFIG" --namespace "$NS" "$@")
  cat >"$WORK/plan-$name.json" <<EOF
{"server": $server, "stderr": "$WORK/launcher-$name.log", "timeout": 120,
 "calls": [{"tool": "get_gpu_health", "arguments": {"node_name": "$NODE", "max_age_s": 0}, "repeat": $((n + 1)),
            "pause_ms": $pause}]}
EOF
  # max_age_s 0: each call reads the node (a probe), as a first question does; the kept reading would
  # answer them all from memory and the table would time the memory, not the probe (issue 94 item 8).
  log "launcher ($name): $n x get_gpu_health, each read afresh (max_age_s 0), ${pause} ms apart"
  python3 tests/bench/mcp_call.py "$WORK/plan-$name.json" >"$WORK/$name.json"
}

POD=$(cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: $NS}
spec:
  nodeName: $NODE
  restartPolicy: Never
  activeDeadlineSeconds: 120
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  hostPID: true
  hostNetwork: true
  tolerations: [{operator: Exists}]
  containers:
  - name: probe
    image: testbed.invalid/node-probe:bench
    command: [sleep, "120"]
    securityContext: {privileged: true}
    volumeMounts: [{name: host, mountPath: /host, readOnly: true}]
  volumes: [{name: host, hostPath: {path: /}}]
EOF
)

# BENCH_CALLS=0 skips the single-call flows (the conversation below still runs).
if [ "$CALLS" -gt 0 ]; then
launcher_flow default
metrics >"$WORK/metrics-before"
launcher_flow image --probe-image testbed.invalid/node-probe:bench
metrics >"$WORK/metrics-after"
launcher_flow copy --probe-delivery copy --probe-image docker.io/library/debian:bookworm \
  --probe-bin-dir "$WORK/probes"
launcher_flow ephemeral --probe-mode ephemeral --target-pod "$NS/gpu-target" \
  --probe-image testbed.invalid/node-probe:bench
# Calls further apart than the reuse window: each adds a new ephemeral container (the kubelet's floor).
N=${BENCH_EPHEMERAL_NEW:-8} PAUSE_MS=5000 launcher_flow ephemeral-new --probe-mode ephemeral --target-pod "$NS/gpu-target" \
  --probe-image testbed.invalid/node-probe:bench

log "kubectl run/exec: $CALLS x create, wait Ready, exec, delete --force"
: >"$WORK/kubectl-ms"
for i in $(seq 0 "$CALLS"); do
  name=bench-kubectl-$i
  t0=$(date +%s%N)
  echo "${POD/NAME/$name}" | "${KR[@]}" create -f - >/dev/null
  "${KR[@]}" -n "$NS" wait --for=condition=Ready "pod/$name" --timeout=60s >/dev/null
  "${KR[@]}" -n "$NS" exec "$name" -c probe -- node-probe health --node-name "$NODE" >"$WORK/kubectl-out.json"
  "${KR[@]}" -n "$NS" delete pod "$name" --grace-period=0 --force >/dev/null 2>&1
  t1=$(date +%s%N)
  [ "$i" -eq 0 ] || echo $(((t1 - t0) / 1000000)) >>"$WORK/kubectl-ms"
done
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "probe" in d, d' "$WORK/kubectl-out.json"

log "kubectl debug node: $CALLS x debug --profile=sysadmin, wait, logs, delete"
: >"$WORK/debug-ms"
for i in $(seq 0 "$CALLS"); do
  t0=$(date +%s%N)
  name=$("${KR[@]}" -n "$NS" debug "node/$NODE" --profile=sysadmin --image=testbed.invalid/node-probe:bench \
    --image-pull-policy=IfNotPresent -- node-probe health --node-name "$NODE" --host-root /host 2>&1 |
    sed -n 's/^Creating debugging pod \([^ ]*\) .*/\1/p')
  [ -n "$name" ] || { echo "kubectl debug did not create a pod" >&2; exit 1; }
  "${KR[@]}" -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" --timeout=60s >/dev/null
  "${KR[@]}" -n "$NS" logs "$name" >"$WORK/debug-out.json"
  "${KR[@]}" -n "$NS" delete pod "$name" --grace-period=0 --force >/dev/null 2>&1
  t1=$(date +%s%N)
  [ "$i" -eq 0 ] || echo $(((t1 - t0) / 1000000)) >>"$WORK/debug-ms"
done
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "probe" in d, d' "$WORK/debug-out.json"
fi

# A conversation about the node (tests/bench/conversation.py): five different read-only node tools in a row,
# BENCH_CONVERSATIONS rounds after one warm-up, the launcher in its default delivery cold (--reading-max-age 0:
# every question probes) and with the node's reading kept (the round's first question reads the node), beside
# kubectl's flow for the same questions as the same user (a pod a question; one pod a round). Pods and API
# requests per question from the API server's audit log of that user.
audit_count() { # lines of the audit log so far (batch mode flushes every second)
  sleep 1.5
  [ -f "$TESTBED_DIR/audit.log" ] && wc -l <"$TESTBED_DIR/audit.log" || echo 0
}
CONVS=${BENCH_CONVERSATIONS:-5}
printf '%s\n' "$POD" >"$WORK/pod-template.yaml"
conversation() { # LABEL KIND(cold|kept|question|round) KUBECONFIG [SERVER ARGS...]: one flow, a row in conv_rows
  local label=$1 kind=$2 kc=$3 before after server
  shift 3
  log "conversation ($label): $CONVS x five node tools on $NODE"
  [ -z "$LINK_PID" ] || { kill -USR1 "$LINK_PID"; sleep 0.3; cp "$WORK/link-stats" "$WORK/link-before"; }
  before=$(audit_count)
  case $kind in
    cold | kept)
      server=$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1:]))' "$LAUNCHER" serve \
        --kubeconfig "$kc" --namespace "$NS" "$@")
      python3 tests/bench/conversation.py plan "$kind" "$CONVS" "$NODE" "$server" "$WORK/launcher-$label.log" \
        >"$WORK/plan-$label.json"
      python3 tests/bench/mcp_call.py "$WORK/plan-$label.json" >"$WORK/conv-$label.json" ;;
    *)
      python3 tests/bench/conversation.py kubectl "$kind" "$CONVS" "$NODE" "$NS" "$WORK/pod-template.yaml" \
        kubectl --kubeconfig "$kc" >"$WORK/conv-$label.json" ;;
  esac
  after=$(audit_count)
  tail -n +"$((before + 1))" "$TESTBED_DIR/audit.log" | head -n "$((after - before))" >"$WORK/audit-$label.log"
  conv_rows+=("$label=$WORK/conv-$label.json=$WORK/audit-$label.log")
  if [ -n "$LINK_PID" ]; then
    kill -USR1 "$LINK_PID"; sleep 0.3
    python3 - "$WORK/link-before" "$WORK/link-stats" "$label" >>"$WORK/link-bytes" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print(f"| {sys.argv[3]} | {b['connections'] - a['connections']} | {(b['bytes_up'] - a['bytes_up']) / 1e6:.2f} | {(b['bytes_down'] - a['bytes_down']) / 1e6:.2f} |")
PY
  fi
}
if [ "$CONVS" -gt 0 ]; then
  conv_rows=()
  conversation "launcher, cold" cold "$TESTBED_READER_KUBECONFIG"
  conversation "launcher, reading kept" kept "$TESTBED_READER_KUBECONFIG"
  conversation "kubectl, a pod a question" question "$TESTBED_READER_KUBECONFIG"
  conversation "kubectl, one pod a round" round "$TESTBED_READER_KUBECONFIG"
  LOOPBACK_ROWS=("${conv_rows[@]}")

  # The same over a shaped link (BENCH_LINK="RTT_MS RATE_MBIT", default "30 100": a laptop on a VPN to a
  # cloud cluster): tests/bench/slowlink.py between the launcher (or kubectl) and the API server, TLS passed
  # through. The launcher sends node-probe gzip-compressed to an API server that is not on its machine; the
  # proxy's address is loopback, so K8S_GPU_MCP_PROBE_GZIP=always says what a remote address would (and
  # `never` shows the plain bytes' cost on the same link). Image delivery sends no binary at all.
  read -r LINK_RTT LINK_MBIT <<<"${BENCH_LINK:-30 100}"
  python3 tests/bench/slowlink.py --upstream "127.0.0.1:${TESTBED_SERVER##*:}" --rtt-ms "$LINK_RTT" \
    --rate-mbit "$LINK_MBIT" --port-file "$WORK/link-port" --stats-file "$WORK/link-stats" &
  LINK_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/link-port" ] && break; sleep 0.1; done
  sed "s#https://127.0.0.1:${TESTBED_SERVER##*:}#https://127.0.0.1:$(cat "$WORK/link-port")#" \
    "$TESTBED_READER_KUBECONFIG" >"$WORK/link.kubeconfig"
  conv_rows=()
  : >"$WORK/link-bytes"
  K8S_GPU_MCP_PROBE_GZIP=always conversation "launcher, cold, gzip" cold "$WORK/link.kubeconfig"
  K8S_GPU_MCP_PROBE_GZIP=always conversation "launcher, reading kept, gzip" kept "$WORK/link.kubeconfig"
  K8S_GPU_MCP_PROBE_GZIP=never conversation "launcher, reading kept, plain" kept "$WORK/link.kubeconfig"
  conversation "launcher, reading kept, image delivery" kept "$WORK/link.kubeconfig" \
    --probe-image testbed.invalid/node-probe:bench
  conversation "kubectl, a pod a question (link)" question "$WORK/link.kubeconfig"
  conversation "kubectl, one pod a round (link)" round "$WORK/link.kubeconfig"
  LINK_ROWS=("${conv_rows[@]}")
  kill "$LINK_PID"; wait "$LINK_PID" 2>/dev/null || true; LINK_PID=
fi

"${KA[@]}" -n "$NS" delete pod gpu-target --grace-period=0 --force >/dev/null 2>&1
sleep 2
LEFT=$("${KA[@]}" get pods -A --no-headers 2>/dev/null | wc -l)

if [ "$CALLS" -gt 0 ]; then
python3 - "$WORK" "$CALLS" "$LEFT" "${BENCH_EPHEMERAL_NEW:-8}" <<'EOF'
import json, re, statistics, sys
work, calls, left, eph_new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f, c = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)

rows, phases = {}, {}
labels = {"default": "launcher, default delivery", "image": "launcher, image delivery",
          "copy": "launcher, copy delivery", "ephemeral": "launcher, ephemeral container (back to back: reused)",
          "ephemeral-new": "launcher, ephemeral container (%d calls 5 s apart: a new one each)" % eph_new}
for name in labels:
    d = json.load(open(f"{work}/{name}.json"))
    res = d["results"][1:]  # the first call warms up (and hashes/archives the build for copy delivery)
    bad = [r for r in res if r["is_error"]]
    if bad:
        sys.exit(f"{name}: {len(bad)} calls failed: {bad[0]['text'][:500]}")
    kept = [r for r in res if r["structured"]["run"].get("reading_reused")]
    if kept:
        sys.exit(f"{name}: {len(kept)} calls answered from a kept reading, not a probe: this table times probes")
    rows[labels[name]] = [r["ms"] for r in res]
    acc = {}
    for r in res:
        for t in r["structured"]["run"]["timings"]:
            acc.setdefault(t["phase"], []).append(t["millis"])
    phases[name] = {k: statistics.mean(v) for k, v in acc.items()}
for name, label in [("kubectl-ms", "kubectl run, wait, exec, delete"), ("debug-ms", "kubectl debug node (sysadmin), wait, logs, delete")]:
    rows[label] = [float(x) for x in open(f"{work}/{name}").read().split()]

def metric(path):
    out = {}
    for line in open(path):
        m = re.match(r'kubelet_runtime_operations_duration_seconds_(sum|count)\{operation_type="(\w+)"\} (\S+)', line)
        if m:
            out[(m.group(2), m.group(1))] = float(m.group(3))
    return out
b, a = metric(f"{work}/metrics-before"), metric(f"{work}/metrics-after")
floor = {}
for op in ["run_podsandbox", "create_container", "start_container"]:
    n = a.get((op, "count"), 0) - b.get((op, "count"), 0)
    s = a.get((op, "sum"), 0) - b.get((op, "sum"), 0)
    floor[op] = s / n * 1000 if n else float("nan")

print(f"\nget_gpu_health on a real node (kubelet + containerd + runc), {calls} calls per flow after one warm-up, same run; "
      "every launcher call reads the node afresh (max_age_s 0: a probe each, no kept reading)\n")
print("| flow | p50 ms | p95 ms |")
print("| --- | --- | --- |")
for k, v in rows.items():
    print(f"| {k} | {pct(v, 50):.0f} | {pct(v, 95):.0f} |")
d50, d95 = pct(rows["launcher, default delivery"], 50), pct(rows["launcher, default delivery"], 95)
for label in ["kubectl run, wait, exec, delete", "kubectl debug node (sysadmin), wait, logs, delete"]:
    print(f"| {label} / launcher default | {pct(rows[label], 50) / d50:.1f}x | {pct(rows[label], 95) / d95:.1f}x |")
print("\nlauncher phases (mean ms):")
print("| flow | " + " | ".join(["starting_probe", "waiting_for_probe", "probing", "cleaning_up"]) + " |")
print("| --- | --- | --- | --- | --- |")
for name, p in phases.items():
    print(f"| {name} | " + " | ".join(f"{p.get(k, 0):.0f}" for k in ["starting_probe", "waiting_for_probe", "probing", "cleaning_up"]) + " |")
print(f"\nfloor, the kubelet's runtime operations per probe pod (mean ms over the image-delivery calls): "
      f"run sandbox {floor['run_podsandbox']:.0f} + create container {floor['create_container']:.0f} + "
      f"start container {floor['start_container']:.0f} = {sum(floor.values()):.0f}")
print(f"pods left in the API after the run: {left}")
log = open(f"{work}/launcher-default.log").read()
mb = re.search(r"bytes\W+(\d+)\W+sha256", log)
mz = re.search(r"\bbytes\W+\d+\W+gzip_bytes\W+(\d+)\W+ms\W+(\d+)", log)
if mb and mz:
    b, (g, ms) = int(mb.group(1)), (int(x) for x in mz.groups())
    print(f"node-probe: {b:,} bytes; sent per call in the default delivery: {g:,} bytes gzip-compressed (the image "
          f"has gzip, as Debian's has), else the {b:,} plain bytes; compressed once in {ms} ms at the launcher's start")
elif mb:
    b = int(mb.group(1))
    print(f"node-probe: {b:,} bytes, sent plain on every call of the default delivery (the API server's address "
          f"is loopback here, where compressing was measured slower)")
EOF
else
  echo "pods left in the API after the run: $LEFT"
fi
if [ "$CONVS" -gt 0 ]; then
  printf '\nA conversation about the real node: five node tools (health, processes, topology, ECC, inventory), %s rounds after a warm-up, the API server on loopback\n\n' "$CONVS"
  python3 tests/bench/conversation.py table "${LOOPBACK_ROWS[@]}"
  printf '\nThe same through a shaped link to the API server (%s ms round trip, %s Mbit/s each way; tests/bench/slowlink.py)\n\n' "$LINK_RTT" "$LINK_MBIT"
  python3 tests/bench/conversation.py table "${LINK_ROWS[@]}"
  printf '\nbytes over the link per flow (all its rounds, warm-up included)\n\n| flow | connections | MB up | MB down |\n|---|---|---|---|\n'
  cat "$WORK/link-bytes"
fi
