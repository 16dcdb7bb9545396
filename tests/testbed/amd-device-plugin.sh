#!/usr/bin/env bash
# Builds (once, cached beside the testbed's other binaries) AMD's real Kubernetes device plugin,
# ROCm/k8s-device-plugin, for the real-node suite's AMD case (tests/realnode/amd.rs). Prints the binary's path on
# stdout. Test-only, like the kubelet build.sh builds.
#
# Why git and not the Go module proxy: the project tags its releases with four numbers (v1.31.0.7), which are
# not semantic versions, so `go mod download github.com/ROCm/k8s-device-plugin@v1.31.0.7` is refused ("invalid
# version"); the tag is fetched by git at its pinned commit instead, and built from the repository's own vendor/
# directory (no further downloads).
#
# Why v1.31.0.7: its device enumeration is sysfs only (internal/pkg/amdgpu GetAMDGPUs: /sys/module/amdgpu/
# drivers/pci:amdgpu/<bdf>, /sys/class/kfd/kfd/topology/nodes/*/properties, /sys/devices/platform/amdgpu_xcp_*),
# which a fake host tree can answer; libdrm's ioctls are linked (cgo) but only the node labeller calls them, and
# hwloc is asked for its version only. cgo needs Debian's libdrm-dev and libhwloc-dev (.ci/run installs them).
# Debian 12's libdrm 2.4.114 predates five family constants the source names (AMDGPU_FAMILY_GC_*); they are
# given with the values of Linux include/uapi/drm/amdgpu_drm.h.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSION=${AMD_DEVICE_PLUGIN_VERSION:-v1.31.0.7}
COMMIT=${AMD_DEVICE_PLUGIN_COMMIT:-af51ed1db60839d47c59027e896ac106f8b813a7}
# Where the source may come from, first present wins: AMD_DEVICE_PLUGIN_GIT (a clone, a mirror, or a URL such
# as https://github.com/ROCm/k8s-device-plugin where the machine reaches it), then the workplace's read-only
# mirror of public repositories where the machine has one. No registry serves it (the Go module proxy answers
# "not available" for its commits too, checked 2026-11-27), and CI reaches only the registries, so GitHub is
# never tried unasked: a fresh machine would spend the attempt on a name that does not resolve. None present:
# exit 3, which the real-node suite reports as its AMD cases not run, naming this script, rather than as a
# failure of the product. `--has-source` answers that (exit 0 or 3) without fetching or building.
SOURCES=(${AMD_DEVICE_PLUGIN_GIT:-} /work/.mirror/ROCm+k8s-device-plugin/repo)
if [ "${1:-}" = --has-source ]; then
  for GIT in "${SOURCES[@]}"; do
    case $GIT in /*) [ -e "$GIT" ] && exit 0 ;; *) exit 0 ;; esac
  done
  exit 3
fi
BIN=${TESTBED_BIN:-}
[ -n "$BIN" ] || BIN=$(bash "$HERE/build.sh")
OUT=$BIN/amd-device-plugin-$VERSION
log() { echo "amd-device-plugin: $*" >&2; }
if [ -x "$OUT" ]; then
  echo "$OUT"
  exit 0
fi
exec 8>"$BIN/.amd-device-plugin.lock"
flock 8
[ -x "$OUT" ] && { echo "$OUT"; exit 0; }
command -v pkg-config >/dev/null && pkg-config --exists libdrm libdrm_amdgpu hwloc ||
  { log "cgo needs libdrm-dev, libhwloc-dev and pkg-config (apt-get install libdrm-dev libhwloc-dev pkg-config)"; exit 1; }
SRC=$(dirname "$BIN")/src/amd-device-plugin-$VERSION
if [ ! -f "$SRC/go.mod" ]; then
  fetched=
  for GIT in "${SOURCES[@]}"; do
    case $GIT in /*) [ -e "$GIT" ] || continue ;; esac
    log "fetching ROCm/k8s-device-plugin $VERSION ($COMMIT) from $GIT"
    rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
    git -C "$SRC.tmp" init -q
    if timeout 120 git -C "$SRC.tmp" fetch -q --depth 1 "$GIT" "$COMMIT" >&2; then
      git -C "$SRC.tmp" checkout -q FETCH_HEAD
      rm -rf "$SRC.tmp/.git" "$SRC"
      mv "$SRC.tmp" "$SRC"
      fetched=1
      break
    fi
  done
  rm -rf "$SRC.tmp"
  if [ -z "$fetched" ]; then
    log "no source of ROCm/k8s-device-plugin $COMMIT is reachable (tried: ${SOURCES[*]}); set AMD_DEVICE_PLUGIN_GIT to a clone"
    exit 3
  fi
fi
log "building ROCm/k8s-device-plugin $VERSION"
FAMILIES="-DAMDGPU_FAMILY_GC_11_0_0=145 -DAMDGPU_FAMILY_GC_11_0_1=148 -DAMDGPU_FAMILY_GC_10_3_6=149"
FAMILIES="$FAMILIES -DAMDGPU_FAMILY_GC_10_3_7=151 -DAMDGPU_FAMILY_GC_11_5_0=150"
(cd "$SRC" && CGO_ENABLED=1 GOFLAGS=-mod=vendor CGO_CFLAGS="-O2 $FAMILIES" \
  go build -trimpath -ldflags "-s -w -X main.gitDescribe=$VERSION" -o "$OUT.tmp.$$" ./cmd/k8s-device-plugin) >&2
mv "$OUT.tmp.$$" "$OUT"
echo "$OUT"
