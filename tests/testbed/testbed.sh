#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the end-to-end tests and benchmarks:
# etcd + kube-apiserver (RBAC, Pod Security admission, token auth) + kwok (fake nodes whose kubelet exec runs
# the command on this host, and serves the pod logs that kwok `Logs` objects name: CRI-format files on this
# host). Fresh PKI, tokens and random free ports per run, everything under one directory.
#
#   testbed.sh up DIR     start, write DIR/env, print "testbed ready DIR" on stdout, then block until stdin
#                         reaches EOF (the owner exited or closed it) or SIGTERM/SIGINT, then stop everything
#                         and remove DIR (unless TESTBED_KEEP=1).
#   testbed.sh node NAME [SCENARIO] [key=value...]
#                         print the YAML of a fake GPU node (keys: gpus, product, family, memory, cc_major,
#                         cc_minor, driver_major, managed=fake|none, ready=True|False); a SCENARIO also goes
#                         into the node -> scenario map when TESTBED_DIR is set.
#
#                         managed=garbage: a kwok whose node-probe prints garbage; label=KEY=VALUE adds a label.
#                         images=A,B: status.images (what the node has cached; default delivery picks from it);
#                         A+A2 gives one image two names (a tag and its digest name, as a pull records).
#                         managed=notee: a kwok whose PATH has sh, head, sha256sum, wc, chmod, mktemp, rm but no tee (copy
#                         delivery's missing-tool path); arch=amd64|arm64 sets kubernetes.io/arch and
#                         status.nodeInfo.architecture (kwok keeps it).
#   testbed.sh nodes PREFIX COUNT SCENARIO [key=value...]   the same for PREFIX-1..PREFIX-COUNT.
#   testbed.sh apiserver DIR PORT [FLAG...]   a second kube-apiserver of the running testbed DIR on PORT,
#                         with FLAG... added, until stdin reaches EOF or SIGTERM/SIGINT.
#   testbed.sh versions [BIN]   the kube-apiserver's minor and the resource.k8s.io version `up` serves (none:
#                         not served), as TESTBED_DRA (default|on|off) selects: e.g. "33 v1beta2".
# Inputs (env): TESTBED_BIN (etcd, kube-apiserver, kwok; default: run build.sh), TESTBED_PROBE_DIR (a directory
# holding the node-probe binary, put first on kwok's PATH so kwok exec finds it), TESTBED_KWOK_EXTRA_PATH,
# TESTBED_AUDIT=1 (DIR/audit.log: the launcher users' requests), TESTBED_KEEP=1 (keep DIR),
# TESTBED_NODE_LEASE_SECONDS (kwok's node leases, default 40; 0: none, for benchmarks of 10,000 nodes).
# DIR/env holds shell assignments: TESTBED_SERVER, TESTBED_CA, TESTBED_ADMIN_KUBECONFIG, tokens, ports, pids.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "testbed: $*" >&2; }
die() {
  echo "testbed: error: $*" >&2
  exit 1
}

# Free loopback ports, all held open until every one is chosen so they are distinct.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_for() { # wait_for SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    for p in "${PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null || die "a component exited while waiting for $what (logs in $DIR/*.log): $(tail -n 5 "$DIR"/*.log 2>/dev/null)"
    done
    sleep 0.2
  done
  log "$what ready after ${SECONDS}s"
}

write_kubeconfig() { # write_kubeconfig FILE USER TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "https://127.0.0.1:$KAS_PORT", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: $2
  user: {token: "$3"}
contexts:
- name: testbed
  context: {cluster: testbed, user: $2}
current-context: testbed
EOF
}

PIDS=()
stop_all() {
  trap - EXIT INT TERM
  # kwok first (it would otherwise log errors against a stopped apiserver), etcd last.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  local deadline=$((SECONDS + 5))
  for p in "${PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${TESTBED_KEEP:-0}" != 1 ] && [ -n "${DIR:-}" ]; then rm -rf "$DIR"; fi
}

# The flags that follow the kube-apiserver's version into KAS_VERSION_ARGS, and KAS_MINOR, KAS_DRA (the
# resource.k8s.io version served, or none): an unknown feature gate stops kube-apiserver, and DRA's API is
# off by default before 1.34 (v1beta1 from 1.32, v1beta2 from 1.33, v1 GA in 1.34). TESTBED_DRA: default (as
# the version ships), on (the newest beta the version has, from 1.32; the launcher reads no alpha) or off
# (resource.k8s.io not served, as on a cluster that turned it off).
kas_version_args() {
  local BIN=$1 v gates=() rc=()
  v=$("$BIN/kube-apiserver" --version 2>/dev/null) || die "$BIN/kube-apiserver --version failed"
  KAS_MINOR=$(echo "$v" | sed -nE 's/^Kubernetes v1\.([0-9]+)\..*/\1/p')
  [ -n "$KAS_MINOR" ] || die "cannot read the minor version of: $v"
  local dra=${TESTBED_DRA:-default}
  # DRADeviceTaints (alpha in 1.33) keeps ResourceSlice device taints, ResourceHealthStatus (alpha in 1.31) the
  # pods' allocatedResourcesStatus: both are dropped on write with their gate off.
  [ "$KAS_MINOR" -lt 33 ] || gates+=(DRADeviceTaints=true)
  [ "$KAS_MINOR" -lt 31 ] || gates+=(ResourceHealthStatus=true)
  KAS_DRA=none
  case $dra in
    default)
      [ "$KAS_MINOR" -lt 34 ] || KAS_DRA=v1 ;;
    on)
      if [ "$KAS_MINOR" -ge 34 ]; then KAS_DRA=v1
      elif [ "$KAS_MINOR" -eq 33 ]; then KAS_DRA=v1beta2; gates+=(DynamicResourceAllocation=true)
        rc+=(resource.k8s.io/v1beta1=true resource.k8s.io/v1beta2=true)
      elif [ "$KAS_MINOR" -eq 32 ]; then KAS_DRA=v1beta1; gates+=(DynamicResourceAllocation=true)
        rc+=(resource.k8s.io/v1beta1=true)
      else die "TESTBED_DRA=on: 1.$KAS_MINOR serves DRA only as an alpha API, which the launcher does not read (v1beta1 from 1.32)"
      fi ;;
    off)
      [ "$KAS_MINOR" -lt 34 ] || rc+=(resource.k8s.io/v1=false resource.k8s.io/v1beta1=false resource.k8s.io/v1beta2=false) ;;
    *) die "TESTBED_DRA is default, on or off, not $dra" ;;
  esac
  KAS_VERSION_ARGS=()
  [ ${#gates[@]} -eq 0 ] || KAS_VERSION_ARGS+=("--feature-gates=$(IFS=,; echo "${gates[*]}")")
  [ ${#rc[@]} -eq 0 ] || KAS_VERSION_ARGS+=("--runtime-config=$(IFS=,; echo "${rc[*]}")")
}

# The kube-apiserver's flags into KAS_ARGS, for `up` and for `apiserver` (a second one on the same etcd):
# DIR (its pki/ and admission.yaml), the etcd port, the secure port.
kas_args() {
  local DIR=$1 ETCD_PORT=$2 KAS_PORT=$3
  local PKI=$DIR/pki
  # The version's own flags come from kas_version_args (run first).
  # No --kubelet-certificate-authority: the apiserver then skips verifying the kubelet's (kwok's) serving
  # certificate (pkg/kubelet/client/kubelet_client.go). InternalIP first: kwok nodes carry 127.0.0.1 there.
  KAS_ARGS=(
    --etcd-servers="http://127.0.0.1:$ETCD_PORT"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KAS_PORT"
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key"
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv"
    --authorization-mode=RBAC
    --admission-control-config-file="$DIR/admission.yaml"
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
    --service-cluster-ip-range=10.0.0.0/24
    --allow-privileged=true
    "${KAS_VERSION_ARGS[@]}"
    --endpoint-reconciler-type=none
    --kubelet-preferred-address-types=InternalIP,Hostname
    --cert-dir="$DIR/kas-certs-$KAS_PORT"
    --profiling=false
  )
}

# A second kube-apiserver of the running testbed DIR (same etcd, PKI, tokens) on PORT with more flags
# (tests/e2e/http.rs: one that trusts an OpenID issuer, one with a feature gate). Like `up`, it stops when its
# owner goes away: stdin reaching EOF (also when the owner is SIGKILLed), SIGTERM or SIGINT.
cmd_apiserver() {
  local DIR=$1 PORT=$2
  shift 2
  # shellcheck disable=SC1091
  . "$DIR/env"
  local BIN=${TESTBED_BIN:-}
  [ -n "$BIN" ] || BIN=$(bash "$HERE/build.sh")
  kas_version_args "$BIN"
  kas_args "$DIR" "$TESTBED_ETCD_PORT" "$PORT"
  "$BIN/kube-apiserver" "${KAS_ARGS[@]}" "$@" &
  local pid=$! rc
  trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0' TERM INT
  while kill -0 "$pid" 2>/dev/null; do
    rc=0
    read -r -t 2 _ || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then break; fi
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cmd_up() {
  DIR=$1
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  trap stop_all EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  local BIN=${TESTBED_BIN:-}
  [ -n "$BIN" ] || BIN=$(bash "$HERE/build.sh")
  local SHARE=$BIN/../share
  for b in etcd kube-apiserver kwok; do [ -x "$BIN/$b" ] || die "$BIN/$b missing: run tests/testbed/build.sh"; done
  [ -f "$SHARE/kwok-stages.yaml" ] || die "$SHARE/kwok-stages.yaml missing: run tests/testbed/build.sh"

  read -r ETCD_PORT ETCD_PEER_PORT KAS_PORT KWOK_PORT KWOK_GARBAGE_PORT KWOK_NOTEE_PORT < <(free_ports 6)

  # PKI: one CA that signs the apiserver's serving certificate (and kwok's, for its kubelet port), an EC key
  # pair for service-account tokens. EC keys: generated in milliseconds, unlike RSA.
  local PKI=$DIR/pki
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -days 2 -subj /CN=testbed-ca -out ca.crt
    openssl ecparam -name prime256v1 -genkey -noout -out serving.key
    openssl req -new -key serving.key -subj /CN=localhost -out serving.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >san.ext
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
      -out serving.crt
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key
    openssl ec -in sa.key -pubout -out sa.pub
  ) >/dev/null 2>&1 || die "openssl failed to create the PKI in $PKI"

  # Static tokens: admin (system:masters) for setup only; the launcher's users carry no groups beyond
  # system:authenticated, so everything they may do comes from the RBAC the tests bind.
  local ADMIN_TOKEN READER_TOKEN OPERATOR_TOKEN NOBODY_TOKEN
  ADMIN_TOKEN=$(openssl rand -hex 16)
  READER_TOKEN=$(openssl rand -hex 16)
  OPERATOR_TOKEN=$(openssl rand -hex 16)
  NOBODY_TOKEN=$(openssl rand -hex 16)
  cat >"$PKI/tokens.csv" <<EOF
$ADMIN_TOKEN,testbed-admin,uid-admin,"system:masters"
$READER_TOKEN,launcher-reader,uid-reader
$OPERATOR_TOKEN,launcher-operator,uid-operator
$NOBODY_TOKEN,launcher-nobody,uid-nobody
EOF

  # Pod Security admission: default level `baseline`, so a namespace without
  # pod-security.kubernetes.io/enforce=privileged refuses the privileged probe pod (as hardened clusters do).
  cat >"$DIR/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: baseline, enforce-version: latest, audit: baseline, warn: baseline}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}
EOF

  # TESTBED_AUDIT=1: an audit log of the launcher users' requests (benchmarks count API calls per node).
  local AUDIT_FLAGS=()
  if [ "${TESTBED_AUDIT:-0}" = 1 ]; then
    cat >"$DIR/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: [launcher-reader, launcher-operator, launcher-nobody]
- level: None
EOF
    AUDIT_FLAGS=(--audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log"
      --audit-log-format=json --audit-log-mode=batch --audit-log-batch-max-wait=1s)
  fi

  "$BIN/etcd" --name=tb --data-dir="$DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="tb=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level=warn >"$DIR/etcd.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || die "etcd not healthy (see $DIR/etcd.log)"

  kas_version_args "$BIN"
  log "kube-apiserver 1.$KAS_MINOR, resource.k8s.io: $KAS_DRA ${KAS_VERSION_ARGS[*]}"
  kas_args "$DIR" "$ETCD_PORT" "$KAS_PORT"
  "$BIN/kube-apiserver" "${KAS_ARGS[@]}" "${AUDIT_FLAGS[@]}" \
    >"$DIR/kube-apiserver.log" 2>&1 &
  PIDS+=($!)
  wait_for 120 kube-apiserver curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$KAS_PORT/readyz" || die "kube-apiserver not ready (see $DIR/kube-apiserver.log)"

  write_kubeconfig "$DIR/admin.kubeconfig" testbed-admin "$ADMIN_TOKEN"
  write_kubeconfig "$DIR/reader.kubeconfig" launcher-reader "$READER_TOKEN"
  write_kubeconfig "$DIR/operator.kubeconfig" launcher-operator "$OPERATOR_TOKEN"
  write_kubeconfig "$DIR/nobody.kubeconfig" launcher-nobody "$NOBODY_TOKEN"

  # kwok's `Logs` kind (kwok.x-k8s.io/v1alpha1, one object per pod naming its containers' log files in the
  # CRI format): kwok watches it with --enable-crds but does not install it (kwokctl does). The schema is
  # kwok's to check; this testbed only needs the API server to store and serve the objects.
  cat >"$DIR/kwok-logs-crd.yaml" <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: logs.kwok.x-k8s.io}
spec:
  group: kwok.x-k8s.io
  names: {kind: Logs, listKind: LogsList, plural: logs, singular: logs}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
  curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/yaml' \
    -X POST --data-binary @"$DIR/kwok-logs-crd.yaml" \
    "https://127.0.0.1:$KAS_PORT/apis/apiextensions.k8s.io/v1/customresourcedefinitions" >/dev/null ||
    die "cannot create the kwok Logs CRD"
  # Served once established: kwok's informer would otherwise start against a missing resource.
  wait_for 60 kwok-logs-crd curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$KAS_PORT/apis/kwok.x-k8s.io/v1alpha1/logs" || die "the kwok Logs CRD is not served"

  # kwok: every pod of a node it manages execs locally, with the node -> scenario map node-probe reads in
  # simulation mode (`--node-name` picks the entry). Its kubelet server (--server-address, the port the
  # nodes publish as their kubelet endpoint) also serves the container logs that `Logs` objects name.
  echo '{}' >"$DIR/scenario-map.json"
  cat >"$DIR/kwok-exec.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata: {name: local-node-probe}
spec:
  execs:
  - local:
      workDir: "$DIR"
      envs:
      - {name: NODE_PROBE_SCENARIO_MAP, value: "$DIR/scenario-map.json"}
EOF
  local KWOK_PATH=$PATH
  [ -z "${TESTBED_PROBE_DIR:-}" ] || KWOK_PATH=$TESTBED_PROBE_DIR:$KWOK_PATH
  [ -z "${TESTBED_KWOK_EXTRA_PATH:-}" ] || KWOK_PATH=$TESTBED_KWOK_EXTRA_PATH:$KWOK_PATH
  # kwok resolves exec's argv[0] on its own PATH (os/exec LookPath in the kwok process).
  PATH=$KWOK_PATH NODE_PROBE_SCENARIO_MAP="$DIR/scenario-map.json" "$BIN/kwok" \
    --kubeconfig="$DIR/admin.kubeconfig" \
    --config="$SHARE/kwok-stages.yaml" --config="$DIR/kwok-exec.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --enable-crds=Logs \
    --node-ip=127.0.0.1 --node-port="$KWOK_PORT" --server-address="127.0.0.1:$KWOK_PORT" \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --node-lease-duration-seconds="${TESTBED_NODE_LEASE_SECONDS:-40}" \
    >"$DIR/kwok.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 kwok curl -fsSk "https://127.0.0.1:$KWOK_PORT/healthz" ||
    die "kwok not serving (see $DIR/kwok.log)"

  # A second kwok for nodes annotated kwok.x-k8s.io/node=garbage: its PATH finds a `node-probe` that
  # prints something that is not a probe document, for the launcher's bad-output path.
  mkdir -p "$DIR/garbage-bin"
  printf '#!/bin/sh\necho "Segmentation fault? this is not JSON"\necho "garbage on stderr" >&2\nexit 0\n' \
    >"$DIR/garbage-bin/node-probe"
  chmod +x "$DIR/garbage-bin/node-probe"
  PATH=$DIR/garbage-bin:$PATH "$BIN/kwok" \
    --kubeconfig="$DIR/admin.kubeconfig" \
    --config="$SHARE/kwok-stages.yaml" --config="$DIR/kwok-exec.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=garbage \
    --node-ip=127.0.0.1 --node-port="$KWOK_GARBAGE_PORT" --server-address="127.0.0.1:$KWOK_GARBAGE_PORT" \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --node-lease-duration-seconds="${TESTBED_NODE_LEASE_SECONDS:-40}" \
    >"$DIR/kwok-garbage.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 kwok-garbage curl -fsSk "https://127.0.0.1:$KWOK_GARBAGE_PORT/healthz" ||
    die "second kwok not serving (see $DIR/kwok-garbage.log)"

  # A third kwok for nodes annotated kwok.x-k8s.io/node=notee: its exec'd commands see a PATH with the tools
  # copy delivery's script needs except tee (an image without tee).
  mkdir -p "$DIR/notee-bin"
  local t
  for t in sh head sha256sum wc chmod mktemp rm; do ln -s "$(command -v "$t")" "$DIR/notee-bin/$t"; done
  PATH=$DIR/notee-bin "$BIN/kwok" \
    --kubeconfig="$DIR/admin.kubeconfig" \
    --config="$SHARE/kwok-stages.yaml" --config="$DIR/kwok-exec.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=notee \
    --node-ip=127.0.0.1 --node-port="$KWOK_NOTEE_PORT" --server-address="127.0.0.1:$KWOK_NOTEE_PORT" \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --node-lease-duration-seconds="${TESTBED_NODE_LEASE_SECONDS:-40}" \
    >"$DIR/kwok-notee.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 kwok-notee curl -fsSk "https://127.0.0.1:$KWOK_NOTEE_PORT/healthz" ||
    die "third kwok not serving (see $DIR/kwok-notee.log)"

  cat >"$DIR/env" <<EOF
TESTBED_DIR='$DIR'
TESTBED_SERVER='https://127.0.0.1:$KAS_PORT'
TESTBED_CA='$PKI/ca.crt'
TESTBED_ADMIN_KUBECONFIG='$DIR/admin.kubeconfig'
TESTBED_READER_KUBECONFIG='$DIR/reader.kubeconfig'
TESTBED_OPERATOR_KUBECONFIG='$DIR/operator.kubeconfig'
TESTBED_NOBODY_KUBECONFIG='$DIR/nobody.kubeconfig'
TESTBED_ADMIN_TOKEN='$ADMIN_TOKEN'
TESTBED_READER_TOKEN='$READER_TOKEN'
TESTBED_OPERATOR_TOKEN='$OPERATOR_TOKEN'
TESTBED_NOBODY_TOKEN='$NOBODY_TOKEN'
TESTBED_SCENARIO_MAP='$DIR/scenario-map.json'
TESTBED_KWOK_PORT='$KWOK_PORT'
TESTBED_KWOK_GARBAGE_PORT='$KWOK_GARBAGE_PORT'
TESTBED_KWOK_NOTEE_PORT='$KWOK_NOTEE_PORT'
TESTBED_ETCD_PORT='$ETCD_PORT'
TESTBED_KAS_PORT='$KAS_PORT'
TESTBED_PIDS='${PIDS[*]}'
TESTBED_K8S_MINOR='$KAS_MINOR'
TESTBED_DRA_VERSION='$KAS_DRA'
EOF
  echo "testbed ready $DIR"
  log "up in ${SECONDS}s: https://127.0.0.1:$KAS_PORT (admin kubeconfig $DIR/admin.kubeconfig)"
  # Block until the owner goes away (its end of our stdin closes, also when it is SIGKILLed) or signals us.
  # `read -t` keeps the shell responsive to SIGTERM and lets it notice a component that died.
  local rc
  while :; do
    rc=0
    read -r -t 2 _ || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then break; fi
    for p in "${PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null || log "component pid $p exited (see $DIR/*.log)"
    done
  done
}

cmd_node() {
  local name=$1 scenario=${2:-}
  shift || true
  shift || true
  local gpus=8 product=NVIDIA-H100-80GB-HBM3 family=hopper memory=81559 cc_major=9 cc_minor=0
  local driver_major=550 managed=fake ready=True extra_labels="" arch=amd64 images=""
  for kv in "$@"; do
    case $kv in
      label=*=*)
        local l=${kv#label=}
        extra_labels+=$'\n'"    ${l%%=*}: \"${l#*=}\"" ;;
      gpus=* | product=* | family=* | memory=* | cc_major=* | cc_minor=* | driver_major=* | managed=* | ready=* | arch=* | images=*)
        local "${kv?}" ;;
      *) die "unknown node option $kv" ;;
    esac
  done
  if [ -n "$scenario" ] && [ -n "${TESTBED_DIR:-}" ]; then
    python3 - "$TESTBED_DIR/scenario-map.json" "$name" "$scenario" <<'EOF'
import json, os, sys
path, node, scenario = sys.argv[1:]
m = json.load(open(path))
m[node] = scenario
tmp = path + ".tmp"
json.dump(m, open(tmp, "w"), indent=1, sort_keys=True)
os.replace(tmp, path)
EOF
  fi
  local annotation="kwok.x-k8s.io/node: $managed"
  # A node kwok does not manage keeps the status it was created with: Ready=True but no kubelet
  # (pods there never start), or Ready=False (NotReady).
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    $annotation
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: $arch
    type: kwok
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.count: "$gpus"
    nvidia.com/gpu.product: $product
    nvidia.com/gpu.memory: "$memory"
    nvidia.com/gpu.family: $family
    nvidia.com/gpu.compute.major: "$cc_major"
    nvidia.com/gpu.compute.minor: "$cc_minor"
    nvidia.com/cuda.driver.major: "$driver_major"
    nvidia.com/cuda.runtime.major: "12"
    nvidia.com/mig.capable: "true"$extra_labels
spec: {}
status:
  # Both address types: kwok's node-initialize stage rewrites the addresses when either is missing, and without
  # --node-name that drops the InternalIP the apiserver needs to reach kwok's kubelet endpoint.
  addresses:
  - {type: InternalIP, address: 127.0.0.1}
  - {type: Hostname, address: $name}
  capacity: {cpu: "192", memory: 2Ti, pods: "110", nvidia.com/gpu: "$gpus"}
  allocatable: {cpu: "192", memory: 2Ti, pods: "110", nvidia.com/gpu: "$gpus"}
  nodeInfo: {architecture: $arch, operatingSystem: linux, bootID: "", containerRuntimeVersion: "", kernelVersion: "",
    kubeProxyVersion: "", kubeletVersion: "", machineID: "", osImage: "", systemUUID: ""}
EOF
  if [ -n "$images" ]; then
    echo "  images:"
    local img
    # One image's names are joined by '+' (a pulled image: its tag and its digest name).
    for img in ${images//,/ }; do echo "  - {names: [\"${img//+/\", \"}\"], sizeBytes: 1000000}"; done
  fi
  if [ "$managed" = none ]; then
    # No kubelet answers for this node: port 1 on loopback refuses connections, as a dead kubelet would (kwok's
    # port would serve exec for any pod, even on nodes it does not manage).
    local port=1
    cat <<EOF
  daemonEndpoints: {kubeletEndpoint: {Port: $port}}
  conditions:
  - {type: Ready, status: "$ready", reason: Testbed, message: "set by the testbed", lastHeartbeatTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"}
EOF
  fi
  echo "---"
}

# Many nodes at once (benchmarks): PREFIX-1..PREFIX-COUNT, all answering with SCENARIO.
cmd_nodes() {
  local prefix=$1 count=$2 scenario=$3 i
  shift 3
  for ((i = 1; i <= count; i++)); do TESTBED_DIR='' cmd_node "$prefix-$i" "" "$@"; done
  if [ -n "${TESTBED_DIR:-}" ]; then
    python3 - "$TESTBED_DIR/scenario-map.json" "$prefix" "$count" "$scenario" <<'EOF'
import json, os, sys
path, prefix, count, scenario = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
m = json.load(open(path))
m.update({f"{prefix}-{i}": scenario for i in range(1, count + 1)})
tmp = path + ".tmp"
json.dump(m, open(tmp, "w"), indent=1, sort_keys=True)
os.replace(tmp, path)
EOF
  fi
}

case ${1:-} in
  up)
    [ $# -eq 2 ] || die "usage: testbed.sh up DIR"
    cmd_up "$2"
    ;;
  node)
    [ $# -ge 2 ] || die "usage: testbed.sh node NAME [SCENARIO] [key=value...]"
    shift
    cmd_node "$@"
    ;;
  nodes)
    [ $# -ge 4 ] || die "usage: testbed.sh nodes PREFIX COUNT SCENARIO [key=value...]"
    shift
    cmd_nodes "$@"
    ;;
  apiserver)
    [ $# -ge 3 ] || die "usage: testbed.sh apiserver DIR PORT [kube-apiserver flags...]"
    shift
    cmd_apiserver "$@"
    ;;
  versions)
    # What `up` would run with the binaries in BIN (default: build.sh's) and TESTBED_DRA: "MINOR DRA-VERSION".
    BIN=${2:-${TESTBED_BIN:-$(bash "$HERE/build.sh")}}
    kas_version_args "$BIN"
    echo "$KAS_MINOR $KAS_DRA"
    ;;
  *) die "usage: testbed.sh up DIR | node NAME [SCENARIO] [key=value...] | nodes PREFIX COUNT SCENARIO [key=value...] | versions [BIN]" ;;
esac
