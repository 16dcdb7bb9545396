#!/usr/bin/env bash
# Builds (once, cached outside the repo by version) the real control plane the end-to-end tests run against:
# kube-apiserver from the k8s.io/kubernetes module through a wrapper go.mod, etcd from go.etcd.io/etcd/server/v3,
# and kwok. Prints the bin directory on stdout. Idempotent: a second run is a no-op.
set -euo pipefail
K8S=${TESTBED_K8S:-1.35.4}
ETCD=${TESTBED_ETCD:-v3.6.14}
KWOK=${TESTBED_KWOK:-v0.8.0}
K8S_MINOR=$(echo "$K8S" | cut -d. -f2)
# TESTBED_APISERVER_ONLY=1: the e2e suite's control plane only (kube-apiserver, etcd, kwok, dex), no kubelet and
# none of the real-node testbed's tools: what CI's run of the core flows on the oldest minor needs.
KAS_ONLY=${TESTBED_APISERVER_ONLY:-0}
ROOT=${TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp-testbed}
TB=$ROOT/k8s-$K8S-etcd-$ETCD-kwok-$KWOK
BIN=$TB/bin
mkdir -p "$BIN" "$TB/src"
# One build at a time per cache: two runs started together (parallel test sessions) would share the
# `*.tmp` outputs and one would fail moving the other's; the second waits and then finds it all built.
exec 8>"$TB/.build.lock"
flock 8
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "testbed-build: $*" >&2; }

# Three independent builds (kwok; etcd; kube-apiserver and kubelet), run side by side: one's module
# downloads overlap another's compiling, and Go's build cache is safe to share between them.
# etcd, kwok and dex do not depend on the Kubernetes version: a build for another version (TESTBED_K8S, the
# version matrix of tests/testbed/matrix.sh) takes them from one already built, by a hard link.
reuse() { # reuse NAME MARKER: NAME from a sibling build whose bin/ has MARKER too
  local other
  for other in "$ROOT"/k8s-*-etcd-"$ETCD"-kwok-"$KWOK"/bin; do
    [ "$other" != "$BIN" ] && [ -x "$other/$1" ] && [ -e "$other/$2" ] || continue
    ln -f "$other/$1" "$BIN/$1" 2>/dev/null || cp "$other/$1" "$BIN/$1"
    touch "$BIN/$2"
    log "$1 taken from $other"
    return 0
  done
  return 1
}

build_kwok() {
  [ -x "$BIN/kwok" ] && return
  reuse kwok kwok && return
  log "building kwok $KWOK"
  GOBIN=$BIN go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK" >&2
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  reuse etcd etcd && return
  log "building etcd $ETCD"
  mkdir -p "$TB/src/etcd"
  cd "$TB/src/etcd"
  [ -f go.mod ] || go mod init testbed.invalid/etcd >&2
  go get "go.etcd.io/etcd/server/v3@$ETCD" >&2
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

# kube-apiserver and, for the real-node testbed (tests/testbed/realnode.sh), the kubelet: one wrapper
# go.mod and one `go build` of both, so the packages they share are compiled once and their links run
# together.
build_kas() {
  local missing=()
  [ -x "$BIN/kube-apiserver" ] || missing+=(k8s.io/kubernetes/cmd/kube-apiserver)
  [ -x "$BIN/kubelet" ] || [ "$KAS_ONLY" = 1 ] || missing+=(k8s.io/kubernetes/cmd/kubelet)
  [ ${#missing[@]} -gt 0 ] || return 0
  log "building ${missing[*]##*/} v$K8S (first run: several minutes)"
  mkdir -p "$TB/src/kas"
  cd "$TB/src/kas"
  [ -f go.mod ] || go mod init testbed.invalid/kas >&2
  if ! grep -q "k8s.io/kubernetes v$K8S" go.mod; then
    KMOD=$(go mod download -json "k8s.io/kubernetes@v$K8S" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d.get("GoMod") or sys.exit("go mod download failed: "+d.get("Error","?")))')
    # k/k requires its staging modules at v0.0.0 and replaces them with ./staging: point each at the tagged module.
    for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$KMOD"); do
      go mod edit -replace="$m=$m@v0.${K8S#1.}"
    done
    go get "k8s.io/kubernetes@v$K8S" >&2
  fi
  LD="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$K8S_MINOR -X k8s.io/component-base/version.gitTreeState=clean"
  rm -rf "$BIN/kas.tmp" && mkdir "$BIN/kas.tmp"
  go build -trimpath -ldflags "$LD" -o "$BIN/kas.tmp/" "${missing[@]}" >&2
  for p in "${missing[@]}"; do mv "$BIN/kas.tmp/${p##*/}" "$BIN/${p##*/}"; done
  rmdir "$BIN/kas.tmp"
}

# dex, the OpenID provider of the `serve --http` tests (tests/e2e/http.rs): its module is
# github.com/dexidp/dex without /v2, so release tags do not resolve through the module proxy; the pseudo-version
# is the v2.45.1 commit (../shared/reference/mcp-auth.md section 5.1). Memory storage only: no cgo needed.
DEX=${TESTBED_DEX:-v0.0.0-20260303133905-11d2eeb52b42}
build_dex() {
  [ -x "$BIN/dex" ] && { touch "$BIN/.dex-$DEX"; return; }
  reuse dex ".dex-$DEX" && return
  log "building dex $DEX"
  mkdir -p "$TB/src/dex"
  cd "$TB/src/dex"
  [ -f go.mod ] || go mod init testbed.invalid/dex >&2
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/dexidp/dex/cmd/dex"\n' > tools.go
  go get "github.com/dexidp/dex@$DEX" >&2
  go build -trimpath -ldflags "-s -w" -o "$BIN/dex.tmp" github.com/dexidp/dex/cmd/dex >&2
  mv "$BIN/dex.tmp" "$BIN/dex"
  touch "$BIN/.dex-$DEX"
}

pids=()
(build_dex) & pids+=($!)
(build_kwok) & pids+=($!)
(build_etcd) & pids+=($!)
(build_kas) & pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { log "a control-plane build failed (see above)"; exit 1; }

# The testbed's small Go tools, built against the kubelet API of the same module (go.mod above): the device
# plugin, the DRA kubelet plugin and a PodResources client. Each binary's name holds its source's digest (a
# changed source is rebuilt; a node that still runs the old one keeps it), and realnode.sh and the tests run the
# binary of their own tree's source by that name; the plain name links to the last one asked for.
build_tool() { # build_tool NAME SOURCE_DIR
  local name=$1 src sum pkg
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/$2" && pwd)
  sum=$(sha256sum "$src/main.go" | cut -c1-16)
  if [ -x "$BIN/$name-$sum" ]; then
    ln -sfn "$name-$sum" "$BIN/$name"
    return
  fi
  log "building the testbed's $name"
  pkg=testbed-$2
  mkdir -p "$TB/src/kas/$pkg"
  cp "$src/main.go" "$TB/src/kas/$pkg/main.go"
  (cd "$TB/src/kas" && go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp.$$" "./$pkg") >&2
  mv "$BIN/$name.tmp.$$" "$BIN/$name-$sum"
  ln -sfn "$name-$sum" "$BIN/$name"
}
if [ "$KAS_ONLY" != 1 ]; then
build_tool fake-device-plugin device-plugin
# The DRA kubelet plugin is written against resource.k8s.io/v1 and the kubelet plugin API of 1.34 (DRA's GA):
# an older version's real-node testbed has no DRA driver (its kubelet reports no claims in PodResources).
if [ "$K8S_MINOR" -ge 34 ]; then build_tool fake-dra-plugin dra-plugin; fi
build_tool podresources-list podresources-list
fi
# kwok's stage definitions (the bare kwok binary has none built in) come from the same module version.
SHARE=$TB/share
if [ ! -f "$SHARE/kwok-stages.yaml" ]; then
  KWOK_SRC=$(cd "$TB/src" && GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d.get("Dir") or sys.exit("go mod download failed: "+d.get("Error","?")))')
  S=$KWOK_SRC/kustomize/stage
  mkdir -p "$SHARE"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cat "$S/$f"; echo "---"
  done > "$SHARE/kwok-stages.yaml.tmp"
  mv "$SHARE/kwok-stages.yaml.tmp" "$SHARE/kwok-stages.yaml"
fi
echo "$BIN"
