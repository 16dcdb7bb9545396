#!/usr/bin/env bash
# Builds the team server's image (deploy/http/server.yaml) as an archive, without a container engine: the
# launcher (`k8s-gpu-mcp`, the entrypoint), the node-probe builds it copies into probe pods (probes/ beside
# it, where copy delivery looks), the glibc it was linked against, and the system's CA roots (the issuer's
# HTTPS). No shell, no package manager; it runs as any non-root user.
#
#   bash deploy/server-image/build.sh [--out FILE] [--tag REF] [--launcher-bin PATH] [--probe-dir DIR]
#
# Defaults: --tag ghcr.io/k8s-gpu-mcp/launcher:v<version>, --out target/launcher-image-v<version>-<arch>.tar,
# --launcher-bin and the probe: `cargo build --release -p k8s-gpu-mcp -p node-probe` (this architecture's
# node-probe only); --probe-dir: a directory of node-probe-linux-amd64 / -arm64 builds (a release's probes/),
# for clusters with nodes of both. Load or push the archive as deploy/probe-image/build.sh says.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
die() {
  echo "server-image: error: $*" >&2
  exit 1
}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
TAG="ghcr.io/k8s-gpu-mcp/launcher:v$VERSION"
OUT=""
LAUNCHER_BIN=""
PROBE_DIR=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --launcher-bin) LAUNCHER_BIN=$2; shift 2 ;;
    --probe-dir) PROBE_DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

case $(uname -m) in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
[ -n "$OUT" ] || OUT="$ROOT/target/launcher-image-v$VERSION-$ARCH.tar"
PROBES=()
if [ -z "$LAUNCHER_BIN" ] || [ -z "$PROBE_DIR" ]; then
  (cd "$ROOT" && cargo build --release --locked -q -p k8s-gpu-mcp -p node-probe) >&2
fi
[ -n "$LAUNCHER_BIN" ] || LAUNCHER_BIN="$ROOT/target/release/k8s-gpu-mcp"
[ -x "$LAUNCHER_BIN" ] || die "$LAUNCHER_BIN is not an executable"
if [ -n "$PROBE_DIR" ]; then
  for a in amd64 arm64; do
    [ -x "$PROBE_DIR/node-probe-linux-$a" ] && PROBES+=(--file "$PROBE_DIR/node-probe-linux-$a:/usr/local/bin/probes/node-probe-linux-$a:0755")
  done
  [ ${#PROBES[@]} -gt 0 ] || die "$PROBE_DIR holds no node-probe-linux-amd64 or -arm64"
else
  PROBES=(--file "$ROOT/target/release/node-probe:/usr/local/bin/probes/node-probe-linux-$ARCH:0755")
fi
CA=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA" ] || die "$CA not found (package ca-certificates)"
# shellcheck source=../probe-image/libs.sh
. "$HERE/../probe-image/libs.sh"
for l in $(libs_of "$LAUNCHER_BIN"); do add "$l"; done

python3 "$HERE/../probe-image/mkimage.py" --tag "$TAG" --out "$OUT" --arch "$ARCH" \
  --symlink bin:usr/bin --symlink sbin:usr/sbin --symlink lib:usr/lib --symlink lib64:usr/lib64 \
  --dir tmp --file "$CA:/etc/ssl/certs/ca-certificates.crt:0644" \
  --file "$LAUNCHER_BIN:/usr/local/bin/k8s-gpu-mcp:0755" "${PROBES[@]}" \
  "${ARGS[@]}" \
  --label org.opencontainers.image.title=k8s-gpu-mcp \
  --label "org.opencontainers.image.version=$VERSION" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.source=https://github.com/k8s-gpu-mcp/k8s-gpu-mcp \
  --entrypoint /usr/local/bin/k8s-gpu-mcp --cmd version
echo "$OUT"
