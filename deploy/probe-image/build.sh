#!/usr/bin/env bash
# Builds the probe image as an archive, without a container engine: node-probe, the glibc it was linked
# against (with the libraries NVML's libnvidia-ml.so.1 needs: libdl, libpthread, librt, libm), `sleep` (the
# container idles with it until the launcher's exec) and `ldconfig` (the NVIDIA container toolkit's hook
# runs it in runtime-class mode). About 10 MB; no shell, no package manager.
#
#   bash deploy/probe-image/build.sh [--out FILE] [--tag REF] [--probe-bin PATH]
#
# Defaults: --tag ghcr.io/k8s-gpu-mcp/node-probe:v<version> (the launcher's default --probe-image),
# --out target/node-probe-image-v<version>-<arch>.tar, --probe-bin: `cargo build --release -p node-probe`.
# The image is for this machine's architecture: the libraries come from this machine, the same glibc
# node-probe is linked against. The archive is a docker-archive and an OCI layout at once; load or push it:
#   ctr -n k8s.io images import FILE.tar                                   (a node, containerd)
#   docker load -i FILE.tar                                                (Docker)
#   skopeo copy oci-archive:FILE.tar docker://REGISTRY/node-probe:vX.Y.Z   (any registry; Debian: skopeo)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
die() {
  echo "probe-image: error: $*" >&2
  exit 1
}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
TAG="ghcr.io/k8s-gpu-mcp/node-probe:v$VERSION"
OUT=""
PROBE_BIN=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --probe-bin) PROBE_BIN=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

case $(uname -m) in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
[ -n "$OUT" ] || OUT="$ROOT/target/node-probe-image-v$VERSION-$ARCH.tar"
if [ -z "$PROBE_BIN" ]; then
  (cd "$ROOT" && cargo build --release --locked -q -p node-probe) >&2
  PROBE_BIN="$ROOT/target/release/node-probe"
fi
[ -x "$PROBE_BIN" ] || die "$PROBE_BIN is not an executable"
# shellcheck source=libs.sh
. "$HERE/libs.sh"

SLEEP=$(command -v sleep)
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
[ -x "$LDCONFIG" ] || die "ldconfig not found"
for prog in "$PROBE_BIN" "$SLEEP" "$LDCONFIG"; do
  for l in $(libs_of "$prog"); do add "$l"; done
done
MULTIARCH=$(dirname "$(readlink -f "$(libs_of "$SLEEP" | grep '/libc\.so\.6$' | head -n1)")")
for l in libdl.so.2 libpthread.so.0 librt.so.1 libm.so.6; do
  [ -e "$MULTIARCH/$l" ] && add "$MULTIARCH/$l"
done

printf 'include /etc/ld.so.conf.d/*.conf\n' >"$OUT.ld.so.conf"
trap 'rm -f "$OUT.ld.so.conf"' EXIT
python3 "$HERE/mkimage.py" --tag "$TAG" --out "$OUT" --arch "$ARCH" \
  --symlink bin:usr/bin --symlink sbin:usr/sbin --symlink lib:usr/lib --symlink lib64:usr/lib64 \
  --dir tmp --dir etc/ld.so.conf.d --file "$OUT.ld.so.conf:/etc/ld.so.conf:0644" \
  --file "$PROBE_BIN:/usr/local/bin/node-probe:0755" --file "$SLEEP:/usr/bin/sleep:0755" \
  --file "$LDCONFIG:/usr/sbin/ldconfig:0755" \
  "${ARGS[@]}" \
  --label org.opencontainers.image.title=node-probe \
  --label "org.opencontainers.image.version=$VERSION" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.source=https://github.com/k8s-gpu-mcp/k8s-gpu-mcp \
  --cmd node-probe --cmd version
echo "$OUT"
