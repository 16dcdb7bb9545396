#!/usr/bin/env bash
# A real Kubernetes node for the testbed: kubelet + containerd + runc on this machine, joined to a running
# testbed (tests/testbed/testbed.sh), with a device plugin advertising nvidia.com/gpu devices whose ids are
# the fake NVML's GPU UUIDs, a DRA kubelet plugin (driver gpu.nvidia.com, one ResourceSlice: gpu-0..gpu-3, the
# same GPUs) and the fake NVML under the node's GPU Operator driver root. Everything runs in a
# private mount namespace held by one process, so nothing of the node is visible to the rest of the machine;
# its files live under one directory. Each setting says why it exists where it is made.
#
#   realnode.sh up NODE_DIR     start the node, write NODE_DIR/env, print "realnode ready NODE_DIR" on stdout,
#                               then block until stdin reaches EOF (or SIGTERM/SIGINT) and tear it all down.
#   realnode.sh images DIR      build the image archives the node imports (pause, a Debian base, the probe
#                               image, and broken images for failure tests) under DIR (cached by content) and
#                               print the directory that holds them.
#   realnode.sh ctr NODE_DIR ARGS...   run ctr against the node's containerd (inside its mount namespace).
#   realnode.sh kubelet NODE_DIR [FLAGS...]   restart the node's kubelet with its flags and FLAGS after them (none:
#                               as it started), e.g. --feature-gates=KubeletPodResourcesDynamicResources=false;
#                               returns once the new kubelet serves its device-plugin registration socket.
#
# Inputs (env) for `up`: TESTBED_DIR (the running testbed: its env and CA), TESTBED_BIN (kubelet,
# fake-device-plugin-*, fake-dra-plugin-*), REALNODE_NAME (default real-<random>), REALNODE_IMAGES (space-separated archives to
# import), REALNODE_PAUSE_IMAGE (the sandbox image's reference, imported among REALNODE_IMAGES),
# REALNODE_FAKE_NVML (a built fake libnvidia-ml.so.1), REALNODE_DISK_PRESSURE=1 (the node reports DiskPressure),
# REALNODE_PRIVATE_ROOT=1 (leave the node's `/` a private
# mount, as on hosts without systemd), REALNODE_KEEP=1 (keep NODE_DIR), REALNODE_KUBELET_ARGS (more kubelet
# flags, after the others: e.g. --v=4 to see its pod workers and PLEG in NODE_DIR/logs/kubelet.log).
# Needs root (mount namespaces, cgroups, runc). Installs containerd, runc and the CNI plugins from Debian's
# packages when they are missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

log() { echo "realnode: $*" >&2; }
die() {
  echo "realnode: error: $*" >&2
  exit 1
}

need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian's packages"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---------------------------------------------------------------------------------------------- images
# The archives go to DIR/<digest of this function and mkimage.py>/ (printed): rebuilt when either changes,
# never when the rest of this script does, and never removed under a run of another tree's version.
# debian_rootfs RELEASE DIR: debootstrap minbase, once (DIR/.complete).
debian_rootfs() {
  local release=$1 rootfs=$2
  [ -f "$rootfs/.complete" ] && return 0
  command -v debootstrap >/dev/null || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  log "debootstrap --variant=minbase $release (first run: about 2 minutes)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$release" "$rootfs" http://deb.debian.org/debian >&2
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  touch "$rootfs/.complete"
}

cmd_images() {
  local out=$1
  local stamp
  stamp=$( (declare -f cmd_images debian_rootfs && cat "$ROOT/deploy/probe-image/mkimage.py" "$ROOT/tests/fake-dcgm/dcgmi" \
    "$ROOT"/tests/fixtures/dcgm/*.json) | sha256sum | cut -c1-16)
  mkdir -p "$out/$stamp"
  out=$(cd "$out/$stamp" && pwd)
  local cache=${TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp-testbed}/rootfs
  mkdir -p "$cache"
  local mk="python3 $ROOT/deploy/probe-image/mkimage.py"

  # pause: a static program that sleeps until a signal (containerd's sandbox image).
  if [ ! -f "$out/pause.tar" ]; then
    command -v gcc >/dev/null || die "gcc is needed to build the pause image"
    printf '#include <signal.h>\n#include <unistd.h>\nstatic void done(int s){(void)s;_exit(0);}\nint main(void){signal(SIGTERM,done);signal(SIGINT,done);for(;;)pause();}\n' >"$out/pause.c"
    gcc -static -O2 -o "$out/pause" "$out/pause.c"
    $mk --tag testbed.invalid/pause:1 --out "$out/pause.tar" --file "$out/pause:/pause:0755" --cmd /pause
    rm -f "$out/pause" "$out/pause.c"
  fi

  # A plain Debian base (debootstrap minbase, cached by release): what a node has cached from other
  # workloads. It has sh and coreutils (head, tee, sha256sum, wc, chmod, mktemp, rm, sleep), but no node-probe.
  local rootfs=$cache/bookworm
  debian_rootfs bookworm "$rootfs"
  # Another release for NVIDIA's DCGM image: its glibc (2.41) is not the host's (bookworm's 2.36), as NVIDIA's
  # Ubuntu-based DCGM images' is not most nodes'.
  local dcgm_rootfs=$cache/trixie
  debian_rootfs trixie "$dcgm_rootfs"
  local ex=(--exclude dev/ --exclude proc/ --exclude sys/ --exclude var/cache/apt/ --exclude var/lib/apt/lists/
    --exclude .complete --dir dev --dir proc --dir sys)
  [ -f "$out/debian.tar" ] ||
    $mk --tag docker.io/library/debian:bookworm --out "$out/debian.tar" --rootfs "$rootfs" "${ex[@]}" --cmd bash
  # Broken bases for copy delivery's failure paths: Debian without `sleep` (the container cannot start).
  [ -f "$out/nosleep.tar" ] ||
    $mk --tag testbed.invalid/nosleep:1 --out "$out/nosleep.tar" --rootfs "$rootfs" "${ex[@]}" \
      --exclude usr/bin/sleep
  # A tenant's image named like a trusted base but from another registry: the default delivery must never run
  # it. Its sh, sleep, tee, head, mktemp and sha256sum leave a mark on the host before doing their job: in a
  # hostPID probe pod /proc/1/root is the node's root, whose /var/lib/kubelet is this node's own directory (so
  # nodes of other test runs never see the mark). Smaller than the genuine base (no /usr/share), so a
  # ranking by name and size alone would pick it.
  if [ ! -f "$out/planted.tar" ]; then
    local w=$out/planted-wrappers t pl=()
    mkdir -p "$w"
    for t in sh sleep tee head mktemp sha256sum; do
      local real=/usr/bin/$t.real
      [ "$t" = sh ] && real=/usr/bin/dash
      printf '#!/usr/bin/dash\nmkdir -p /proc/1/root/var/lib/kubelet/k8s-gpu-mcp-planted 2>/dev/null && echo "%s $*" >>/proc/1/root/var/lib/kubelet/k8s-gpu-mcp-planted/ran 2>/dev/null\nexec %s "$@"\n' "$t" "$real" >"$w/$t"
      pl+=(--file "$w/$t:/usr/bin/$t:0755")
      [ "$t" = sh ] || pl+=(--file "$rootfs/usr/bin/$t:/usr/bin/$t.real:0755")
    done
    $mk --tag registry.example.com/library/debian:bookworm --out "$out/planted.tar" --rootfs "$rootfs" "${ex[@]}" \
      --exclude usr/share/ "${pl[@]}" --cmd bash
    rm -rf "$w"
  fi
  # NVIDIA's DCGM image as the testbed has it: a Debian base of another glibc with the fake dcgmi (tests/fake-dcgm) as
  # /usr/bin/dcgmi and the DCGM outputs of tests/fixtures/dcgm under /opt/fake-dcgmi. A probe pod's exec has
  # no test environment: the wrapper reads the fake's settings from the node (/run/fake-dcgmi.env, through
  # the host root a hostPID pod sees at /proc/1/root), where the suite writes them.
  if [ ! -f "$out/dcgm.tar" ]; then
    local d=$out/dcgm-files f fx=()
    mkdir -p "$d"
    printf '#!/bin/sh
# The testbed dcgmi: settings from the node, then the fake (tests/fake-dcgm/dcgmi).
if [ -r /proc/1/root/run/fake-dcgmi.env ]; then . /proc/1/root/run/fake-dcgmi.env; fi
export FAKE_DCGMI_OUTPUT FAKE_DCGMI_EXIT FAKE_DCGMI_SLEEP FAKE_DCGMI_IGNORE_TERM FAKE_DCGMI_RECORD
exec /usr/libexec/fake-dcgmi "$@"
' >"$d/dcgmi"
    for f in "$ROOT"/tests/fixtures/dcgm/*.json; do fx+=(--file "$f:/opt/fake-dcgmi/${f##*/}:0644"); done
    $mk --tag nvcr.io/nvidia/cloud-native/dcgm:4.6.0-1-testbed --out "$out/dcgm.tar" --rootfs "$dcgm_rootfs" "${ex[@]}" \
      --exclude usr/share/ --file "$d/dcgmi:/usr/bin/dcgmi:0755" \
      --file "$ROOT/tests/fake-dcgm/dcgmi:/usr/libexec/fake-dcgmi:0755" "${fx[@]}" --cmd bash
    rm -rf "$d"
  fi
  # No shell: glibc and sleep only (distroless-like).
  if [ ! -f "$out/noshell.tar" ]; then
    $mk --tag testbed.invalid/noshell:1 --out "$out/noshell.tar" \
      --symlink bin:usr/bin --symlink lib:usr/lib --symlink lib64:usr/lib64 \
      --file "$rootfs/usr/bin/sleep:/usr/bin/sleep:0755" \
      --file "$(readlink -f "$rootfs/usr/lib/x86_64-linux-gnu/libc.so.6"):/usr/lib/x86_64-linux-gnu/libc.so.6:0755" \
      --file "$(readlink -f "$rootfs/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"):/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:0755" \
      --symlink usr/lib64/ld-linux-x86-64.so.2:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
  fi
  # musl only (Alpine-like): a static busybox for the shell and tools, the musl loader, no glibc loader.
  if [ ! -f "$out/musl.tar" ]; then
    if [ ! -x /bin/busybox ] || [ ! -e /lib/ld-musl-x86_64.so.1 ]; then
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static musl >&2
    fi
    local bb=() t
    for t in sh head tee sha256sum wc chmod mktemp rm sleep cat ls; do bb+=(--symlink "bin/$t:busybox"); done
    $mk --tag testbed.invalid/musl:1 --out "$out/musl.tar" --file /bin/busybox:/bin/busybox:0755 \
      --file "$(readlink -f /lib/ld-musl-x86_64.so.1):/lib/ld-musl-x86_64.so.1:0755" "${bb[@]}"
  fi
  echo "$out"
}

# ------------------------------------------------------------------------------------------------- up
NS_PID=""
PIDS=()
NODE="" DIR="" BRIDGE="" CGROUP_ROOT="" SOCK="" ADMIN_KC="" KUBELET_AT=0
in_ns() { nsenter -F -t "$NS_PID" -m -- "$@"; }
UNSHARE_PID=""
# start_in_ns LOG CMD...: a component in the node's mount and PID namespaces, in the background. nsenter forks
# into the PID namespace and waits for the child; the child's PID goes to PIDS (what TERM must reach).
start_in_ns() {
  local log=$1 i child=""
  shift
  nsenter -t "$NS_PID" -m -p -- "$@" >"$log" 2>&1 &
  local wrapper=$!
  for i in $(seq 100); do
    child=$(pgrep -P "$wrapper" || true)
    [ -n "$child" ] && break
    sleep 0.02
  done
  [ -n "$child" ] || die "$* did not start (see $log)"
  PIDS+=("$child")
}

teardown() {
  trap - EXIT INT TERM
  set +e
  log "tearing down ${NODE:-the node}"
  # Pods first, through the API, while the kubelet still runs: it stops their containers.
  if [ -n "${ADMIN_KC:-}" ] && [ -n "${SOCK:-}" ]; then
    kubectl --kubeconfig "$ADMIN_KC" --request-timeout=5s delete pods -A --field-selector "spec.nodeName=$NODE" --grace-period=0 \
      --force --wait=false >/dev/null 2>&1
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ] && [ -n "$(in_ns ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null)" ]; do
      sleep 0.5
    done
  fi
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    local deadline=$((SECONDS + 5))
    while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  if [ -n "$NS_PID" ] && kill -0 "$NS_PID" 2>/dev/null; then
    # Shims and anything else left in the node's mount namespace (the holder last).
    local ns p
    ns=$(readlink "/proc/$NS_PID/ns/mnt")
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = "$NS_PID" ] && continue
      [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill -KILL "$p" 2>/dev/null
    done
  fi
  # Container processes live in the node's cgroups: kill what is left, then remove them depth-first.
  local hier d
  if [ -n "$CGROUP_ROOT" ]; then
    for hier in /sys/fs/cgroup/*/; do
      d=${hier}$CGROUP_ROOT
      [ -d "$d" ] || continue
      find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    done
    sleep 0.2
    for hier in /sys/fs/cgroup/*/; do
      d=${hier}$CGROUP_ROOT
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  fi
  if [ -n "$NS_PID" ]; then
    # The init of the node's PID namespace: its end kills whatever is left in it.
    kill -KILL "$NS_PID" 2>/dev/null
  fi
  # nsenter wrappers and unshare end with their children.
  wait 2>/dev/null
  [ -z "$BRIDGE" ] || ip link del "$BRIDGE" 2>/dev/null
  # The kubelet's iptables chains (KUBE-FIREWALL drops non-local traffic to 127/8), unless another real
  # node of this machine still runs.
  if ! pgrep -x kubelet >/dev/null; then
    local ipt table chain
    for ipt in iptables ip6tables; do
      command -v "$ipt" >/dev/null || continue
      for table in filter nat mangle; do
        for chain in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
          $ipt -t "$table" -S "$chain" 2>/dev/null | grep -E -- '-j KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT)' |
            sed 's/^-A/-D/' | while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null; done
        done
        for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
          $ipt -t "$table" -F "$chain" 2>/dev/null && $ipt -t "$table" -X "$chain" 2>/dev/null
        done
      done
    done
  fi
  if [ -n "${ADMIN_KC:-}" ]; then
    kubectl --kubeconfig "$ADMIN_KC" --request-timeout=5s delete node "$NODE" --wait=false >/dev/null 2>&1
    # No garbage collector removes the DRA plugin's slice with its Node (its owner).
    kubectl --kubeconfig "$ADMIN_KC" --request-timeout=5s delete resourceslices --field-selector "spec.nodeName=$NODE" \
      --wait=false >/dev/null 2>&1
    kubectl --kubeconfig "$ADMIN_KC" --request-timeout=5s delete clusterrolebinding "testbed-node-$NODE" >/dev/null 2>&1
  fi
  if [ "${REALNODE_KEEP:-0}" != 1 ] && [ -n "${DIR:-}" ]; then rm -rf "$DIR"; fi
  log "down"
}

cmd_up() {
  DIR=$1
  [ "$(id -u)" = 0 ] || die "a real node needs root (mount namespaces, cgroups, runc)"
  [ -n "${TESTBED_DIR:-}" ] && [ -f "$TESTBED_DIR/env" ] || die "TESTBED_DIR must name a running testbed"
  # shellcheck disable=SC1091
  . "$TESTBED_DIR/env"
  local BIN=${TESTBED_BIN:-}
  [ -n "$BIN" ] || BIN=$(bash "$HERE/build.sh")
  # build.sh names the testbed's Go tools by their source's digest: run the ones of this tree (built here
  # when TESTBED_BIN is build.sh's directory but predates them).
  local DEVICE_PLUGIN DRA_PLUGIN b
  DEVICE_PLUGIN=$BIN/fake-device-plugin-$(sha256sum "$HERE/device-plugin/main.go" | cut -c1-16)
  DRA_PLUGIN=$BIN/fake-dra-plugin-$(sha256sum "$HERE/dra-plugin/main.go" | cut -c1-16)
  if [ ! -x "$DEVICE_PLUGIN" ] || [ ! -x "$DRA_PLUGIN" ]; then
    [ "$(bash "$HERE/build.sh")" = "$BIN" ] || die "$BIN is not tests/testbed/build.sh's directory"
  fi
  for b in "$BIN/kubelet" "$DEVICE_PLUGIN" "$DRA_PLUGIN"; do
    [ -x "$b" ] || die "$b missing: run tests/testbed/build.sh"
  done
  need_packages
  NODE=${REALNODE_NAME:-real-$(openssl rand -hex 3)}
  ADMIN_KC=$TESTBED_ADMIN_KUBECONFIG
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  local short
  short=$(printf '%s' "$NODE" | sha256sum | cut -c1-8)
  BRIDGE=tb$short
  CGROUP_ROOT=testbed-$short
  # Sockets live on the namespace's private /run: short paths (unix sockets allow 108 bytes).
  local RUN=/run/tb-$short
  SOCK=$RUN/containerd.sock
  trap teardown EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT

  mkdir -p "$DIR"/{containerd,kubelet,cni/conf,cni/data,logs,pod-logs,varlog,pki}
  mkdir -p /var/lib/kubelet

  # The node's namespaces: a private mount namespace (nothing mounted here reaches the machine) and a PID
  # namespace whose init is the holder, as on a real host: hostPID pods see the node's processes, and
  # /proc/1/root is the node's root (what probe pods read the host through). Killing the holder ends every
  # process of the node.
  unshare --mount --propagation private --pid --fork --mount-proc sleep infinity &
  UNSHARE_PID=$!
  local i
  for i in $(seq 100); do
    NS_PID=$(pgrep -P "$UNSHARE_PID" -x sleep || true)
    [ -n "$NS_PID" ] && [ "$(readlink "/proc/$NS_PID/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] && break
    sleep 0.05
  done
  [ -n "$NS_PID" ] || die "the node's namespace holder did not start"
  if [ "${REALNODE_PRIVATE_ROOT:-0}" != 1 ]; then
    # Systemd hosts have a shared `/`; so does this node unless the test wants the private case.
    in_ns mount --make-rshared /
  fi
  in_ns mount -t tmpfs -o mode=0755 tmpfs /run
  in_ns mount --bind "$DIR/kubelet" /var/lib/kubelet
  in_ns mount --bind "$DIR/varlog" /var/log
  in_ns mkdir -p "$RUN" /var/log/pods /var/log/containers

  # The fake NVML where the GPU Operator's containerised driver puts its root.
  if [ -n "${REALNODE_FAKE_NVML:-}" ]; then
    in_ns mkdir -p /run/nvidia/driver/usr/lib/x86_64-linux-gnu
    in_ns cp "$REALNODE_FAKE_NVML" /run/nvidia/driver/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
    # Minor numbers that are not the indices, as on hosts whose driver probed the GPUs in another order.
    in_ns sh -c 'echo 1,0,3,2 >/run/nvidia/driver/usr/lib/x86_64-linux-gnu/FAKE_NVML_MINORS'
  fi

  # cgroups v1: the node's own root in every hierarchy, so two nodes (or a leftover) never share one.
  local hier
  for hier in /sys/fs/cgroup/*/; do
    [ -f "${hier}cgroup.procs" ] && mkdir -p "${hier}$CGROUP_ROOT"
  done

  local pause=${REALNODE_PAUSE_IMAGE:-testbed.invalid/pause:1}
  cat >"$DIR/containerd.toml" <<EOF
version = 2
root = "$DIR/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj; containerd then leaves it as it is.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/conf"
EOF
  # Probe and test pods use hostNetwork; the node only needs a CNI config to turn Ready.
  cat >"$DIR/cni/conf/10-testbed.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "testbed-$short", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": "$DIR/cni/data"}},
  {"type": "loopback"}]}
EOF
  start_in_ns "$DIR/logs/containerd.log" containerd --config "$DIR/containerd.toml"
  for i in $(seq 100); do in_ns ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
  in_ns ctr -a "$SOCK" version >/dev/null 2>&1 || die "containerd did not start (see $DIR/logs/containerd.log)"
  local img
  for img in ${REALNODE_IMAGES:-}; do
    in_ns ctr -a "$SOCK" -n k8s.io images import --no-unpack "$img" >/dev/null 2>>"$DIR/logs/import.log" ||
      die "import of $img failed (see $DIR/logs/import.log)"
  done
  # What a pull from a registry records beside the tag: the repository's digest name. The kubelet lists both in
  # status.images, and the default delivery runs only images it lists by digest.
  in_ns ctr -a "$SOCK" -n k8s.io images ls | awk 'NR > 1 && $1 !~ /@/ && $1 !~ /^sha256:/ {print $1, $3}' |
    while read -r ref digest; do
      in_ns ctr -a "$SOCK" -n k8s.io images tag --force "$ref" "${ref%:*}@$digest" >/dev/null 2>>"$DIR/logs/import.log" ||
        die "cannot record the digest name of $ref (see $DIR/logs/import.log)"
    done

  # Identity: a client certificate of the testbed CA in group system:nodes, a serving certificate for
  # 127.0.0.1, and the system:node role bound to the node's user (the testbed has RBAC only).
  (
    cd "$DIR/pki"
    openssl ecparam -name prime256v1 -genkey -noout -out kubelet.key
    openssl req -new -key kubelet.key -subj "/O=system:nodes/CN=system:node:$NODE" -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA "$TESTBED_CA" -CAkey "${TESTBED_CA%.crt}.key" -CAcreateserial -days 2 \
      -extfile client.ext -out client.crt
    openssl req -new -key kubelet.key -subj "/CN=$NODE" -out serving.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:%s\nextendedKeyUsage=serverAuth\n' "$NODE" >serving.ext
    openssl x509 -req -in serving.csr -CA "$TESTBED_CA" -CAkey "${TESTBED_CA%.crt}.key" -CAcreateserial -days 2 \
      -extfile serving.ext -out serving.crt
  ) >/dev/null 2>&1 || die "openssl failed to make the node's certificates"
  KC=$DIR/kubelet.kubeconfig
  cat >"$KC" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "$TESTBED_SERVER", certificate-authority: "$TESTBED_CA"}
users:
- name: node
  user: {client-certificate: "$DIR/pki/client.crt", client-key: "$DIR/pki/kubelet.key"}
contexts:
- name: testbed
  context: {cluster: testbed, user: node}
current-context: testbed
EOF
  kubectl --kubeconfig "$ADMIN_KC" create clusterrolebinding "testbed-node-$NODE" --clusterrole=system:node \
    --user="system:node:$NODE" >/dev/null

  # REALNODE_DISK_PRESSURE=1: a threshold no disk meets, so the node reports DiskPressure (and its kubelet
  # admits only critical pods).
  local NODEFS_EVICTION=1%
  [ "${REALNODE_DISK_PRESSURE:-0}" != 1 ] || NODEFS_EVICTION=99.99%
  local KUBELET_PORT HEALTHZ_PORT
  read -r KUBELET_PORT HEALTHZ_PORT < <(free_ports 2)
  cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$SOCK
address: 127.0.0.1
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
readOnlyPort: 0
tlsCertFile: $DIR/pki/serving.crt
tlsPrivateKeyFile: $DIR/pki/kubelet.key
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
podLogsDir: $DIR/pod-logs
evictionHard: {memory.available: 50Mi, nodefs.available: $NODEFS_EVICTION, imagefs.available: 1%, nodefs.inodesFree: 1%}
evictionPressureTransitionPeriod: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Imported images are never pulled again: never collect them (also not when disk pressure reclaims).
imageMinimumGCAge: 24h
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
serializeImagePulls: false
registerNode: true
# The device plugin's GPUs reach the node's allocatable at the kubelet's next status update after the node
# turned Ready: 10 s by default, which bring-up (waiting for them) would spend idle. It reports only changes (and
# every nodeStatusReportFrequency) to the API server.
nodeStatusUpdateFrequency: 1s
EOF
  local KUBELET_EXTRA=()
  read -r -a KUBELET_EXTRA <<<"${REALNODE_KUBELET_ARGS:-}"
  local KUBELET_ARGV=("$BIN/kubelet" --config="$DIR/kubelet.yaml" --kubeconfig="$KC"
    --root-dir=/var/lib/kubelet --hostname-override="$NODE" --node-ip=127.0.0.1
    --node-labels="nvidia.com/gpu.present=true,nvidia.com/gpu.product=Testbed-Fake-GPU,nvidia.com/gpu.count=4,testbed.k8s-gpu-mcp.io/real-node=true"
    --v=1 "${KUBELET_EXTRA[@]}")
  # `realnode.sh kubelet` restarts it with the same flags (and more): they and its PID are kept in DIR.
  printf '%s\0' "${KUBELET_ARGV[@]}" >"$DIR/kubelet.argv"
  start_in_ns "$DIR/logs/kubelet.log" "${KUBELET_ARGV[@]}"
  KUBELET_AT=$((${#PIDS[@]} - 1))
  echo "${PIDS[KUBELET_AT]}" >"$DIR/kubelet.pid"
  local deadline=$((SECONDS + 60))
  until kubectl --kubeconfig "$ADMIN_KC" get node "$NODE" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the kubelet did not register $NODE (see $DIR/logs/kubelet.log)"
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "the kubelet exited: $(tail -n 5 "$DIR/logs/kubelet.log")"
    sleep 0.2
  done
  # The kubelet refuses a loopback --node-ip and then publishes no address, so the apiserver could not
  # reach it for exec: set the address it keeps (it does not remove addresses it did not set).
  kubectl --kubeconfig "$ADMIN_KC" patch node "$NODE" --subresource=status --type=merge \
    -p '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"'"$NODE"'"}]}}' \
    >/dev/null
  # No controller-manager removes the not-ready taint the node registered with.
  kubectl --kubeconfig "$ADMIN_KC" taint node "$NODE" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true

  local u=GPU-5f1c1a5e-0000-4000-8000-00000000000
  local ids=${u}0,${u}1,${u}2,${u}3
  start_in_ns "$DIR/logs/device-plugin.log" "$DEVICE_PLUGIN" -ids "$ids"
  # The same GPUs through DRA, beside the device plugin as on a node that mixes both. Its devices are named by
  # minor (gpu-<minor>), and the minors are not NVML's indices (FAKE_NVML_MINORS above: index 0 has minor 1,
  # 1 has 0, 2 has 3, 3 has 2), so its UUIDs in minor order are those of indices 1, 0, 3, 2. It writes its
  # claims' CDI specs to /var/run/cdi, which resolves to the node's /run/cdi (a tmpfs of its own), and takes
  # device taints from DIR/dra-taints. The admin's credentials: the kubelet's system:node role may not write
  # ResourceSlices.
  start_in_ns "$DIR/logs/dra-plugin.log" "$DRA_PLUGIN" -node "$NODE" -kubeconfig "$ADMIN_KC" \
    -uuids "${u}1,${u}0,${u}3,${u}2" -taints-file "$DIR/dra-taints"
  deadline=$((SECONDS + 60))
  until [ "$(kubectl --kubeconfig "$ADMIN_KC" get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.allocatable.nvidia\.com/gpu}' 2>/dev/null)" = True/4 ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
      die "$NODE not Ready with 4 GPUs: $(kubectl --kubeconfig "$ADMIN_KC" get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].message} gpus={.status.allocatable.nvidia\.com/gpu}') (see $DIR/logs)"
    sleep 0.2
  done
  # The DRA driver's device class, as its Helm chart installs it (NVIDIA's deviceclass-gpu.yaml, without
  # extendedResourceName: nvidia.com/gpu here comes from the device plugin), for the tests' claims.
  kubectl --kubeconfig "$ADMIN_KC" apply -f - >/dev/null <<EOF
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu.nvidia.com}
spec:
  selectors:
  - cel: {expression: "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"}
EOF
  # The DRA driver is usable once its slice is published (it registers with the kubelet before that).
  until [ -n "$(kubectl --kubeconfig "$ADMIN_KC" get resourceslices --field-selector "spec.nodeName=$NODE" -o name 2>/dev/null)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "no ResourceSlice for $NODE (see $DIR/logs/dra-plugin.log)"
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "the DRA plugin exited: $(tail -n 5 "$DIR/logs/dra-plugin.log")"
    sleep 0.2
  done

  cat >"$DIR/env" <<EOF
REALNODE_NAME='$NODE'
REALNODE_DIR='$DIR'
REALNODE_NS_PID='$NS_PID'
REALNODE_SOCK='$SOCK'
REALNODE_CGROUP_ROOT='$CGROUP_ROOT'
REALNODE_KUBELET_PORT='$KUBELET_PORT'
EOF
  echo "realnode ready $DIR"
  log "$NODE up in ${SECONDS}s"
  local rc
  while :; do
    rc=0
    read -r -t 2 _ || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -le 128 ]; then break; fi
    # A kubelet restarted by `realnode.sh kubelet` has another PID.
    PIDS[KUBELET_AT]=$(cat "$DIR/kubelet.pid" 2>/dev/null || echo "${PIDS[KUBELET_AT]}")
    for p in "${PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null || log "component pid $p exited (see $DIR/logs)"
    done
  done
}

cmd_kubelet() {
  local dir=$1 old wrapper child="" i ino
  shift
  # shellcheck disable=SC1091
  . "$dir/env"
  local reg=$dir/kubelet/device-plugins/kubelet.sock
  # The socket's inode and change time: a new socket may reuse the old one's inode number.
  ino=$(stat -c '%i %z' "$reg" 2>/dev/null || echo 0)
  old=$(cat "$dir/kubelet.pid")
  kill -TERM "$old" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$old" 2>/dev/null || true
  local argv=()
  mapfile -d '' argv <"$dir/kubelet.argv"
  # Detached from this script's output: the caller waits for this script, not for the kubelet.
  nsenter -t "$REALNODE_NS_PID" -m -p -- "${argv[@]}" "$@" </dev/null >>"$dir/logs/kubelet.log" 2>&1 &
  wrapper=$!
  for i in $(seq 100); do
    child=$(pgrep -P "$wrapper" || true)
    [ -n "$child" ] && break
    sleep 0.02
  done
  [ -n "$child" ] || die "the kubelet did not start again (see $dir/logs/kubelet.log)"
  echo "$child" >"$dir/kubelet.pid"
  for i in $(seq 600); do
    local now
    now=$(stat -c '%i %z' "$reg" 2>/dev/null || echo 0)
    [ "$now" != 0 ] && [ "$now" != "$ino" ] && return 0
    kill -0 "$child" 2>/dev/null || die "the kubelet exited: $(tail -n 5 "$dir/logs/kubelet.log")"
    sleep 0.1
  done
  die "the restarted kubelet made no registration socket in 60 s: $(tail -n 20 "$dir/logs/kubelet.log")"
}

cmd_ctr() {
  local dir=$1
  shift
  # shellcheck disable=SC1091
  . "$dir/env"
  nsenter -F -t "$REALNODE_NS_PID" -m -- ctr -a "$REALNODE_SOCK" -n k8s.io "$@"
}

case ${1:-} in
  up) [ $# -eq 2 ] || die "usage: realnode.sh up NODE_DIR"; cmd_up "$2" ;;
  images) [ $# -eq 2 ] || die "usage: realnode.sh images DIR"; cmd_images "$2" ;;
  ctr) [ $# -ge 3 ] || die "usage: realnode.sh ctr NODE_DIR ARGS..."; shift; cmd_ctr "$@" ;;
  kubelet) [ $# -ge 2 ] || die "usage: realnode.sh kubelet NODE_DIR [FLAGS...]"; shift; cmd_kubelet "$@" ;;
  *) die "usage: realnode.sh up NODE_DIR | images DIR | ctr NODE_DIR ARGS... | kubelet NODE_DIR [FLAGS...]" ;;
esac
