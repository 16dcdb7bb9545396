#!/usr/bin/env bash
# Builds the release: one archive per laptop platform, each holding the launcher, both Linux node-probe
# builds under probes/ (copy delivery and local mode find them there, beside the launcher), README, LICENSE
# and INSTALL.md; then SHA256SUMS over every archive in OUTDIR.
#
#   bash packaging/release.sh OUTDIR
#       Linux amd64 and arm64 archives, built here: node-probe by packaging/build-probes.sh, the launcher
#       cross-linked the same way (cargo-zigbuild, glibc 2.28: a laptop's glibc is never older than a GPU
#       node's base image, so one baseline serves both). macOS archives already in OUTDIR (from the release
#       workflow's macOS jobs) are kept and summed too.
#   bash packaging/release.sh --package OS ARCH LAUNCHER PROBES_DIR OUTDIR
#       one archive from a launcher built elsewhere (.github/workflows/release.yml's macOS jobs).
#   bash packaging/release.sh --sums OUTDIR
#       SHA256SUMS only.
#
# Archive: k8s-gpu-mcp-VERSION-OS-ARCH.tar.gz with one top directory of the same name. Reproducible for
# the same binaries (sorted entries, fixed owner and mtime: SOURCE_DATE_EPOCH, else the last commit's time).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

version() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="k8s-gpu-mcp"))'
}

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd); }

# package OS ARCH LAUNCHER PROBES_DIR OUTDIR
package() {
  local os=$1 arch=$2 launcher=$3 probes=$4 out
  out=$(abs_dir "$5")
  case "$os/$arch" in
    linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64) ;;
    *) echo "release: unknown platform $os/$arch" >&2; return 1 ;;
  esac
  local p
  for p in "$probes/node-probe-linux-amd64" "$probes/node-probe-linux-arm64"; do
    [ -f "$p" ] || { echo "release: missing $p (packaging/build-probes.sh)" >&2; return 1; }
  done
  [ -f "$launcher" ] || { echo "release: missing launcher $launcher" >&2; return 1; }
  local name stage epoch
  name=k8s-gpu-mcp-$(version)-$os-$arch
  stage=$(mktemp -d)
  mkdir -p "$stage/$name/probes"
  install -m 0755 "$launcher" "$stage/$name/k8s-gpu-mcp"
  install -m 0755 "$probes/node-probe-linux-amd64" "$probes/node-probe-linux-arm64" "$stage/$name/probes/"
  install -m 0644 README.md LICENSE "$stage/$name/"
  install -m 0644 docs/install.md "$stage/$name/INSTALL.md"
  epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
  # GNU tar on Linux; the macOS runners' bsdtar lacks --sort/--owner: there the workflow installs gnu-tar.
  local tar=tar
  command -v gtar >/dev/null && tar=gtar
  "$tar" -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --format=gnu -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
  rm -rf "$stage"
  echo "$out/$name.tar.gz"
}

sums() {
  local out
  out=$(abs_dir "$1")
  (cd "$out" && ls ./*.tar.gz >/dev/null 2>&1 ||
    { echo "release: no archives in $out" >&2; exit 1; })
  # sha256sum's own format: `sha256sum -c SHA256SUMS` checks a download.
  (cd "$out" && sha256sum -- *.tar.gz >SHA256SUMS)
  cat "$out/SHA256SUMS" >&2
}

case "${1:-}" in
  --package) shift; [ $# -eq 5 ] || { echo "usage: $0 --package OS ARCH LAUNCHER PROBES_DIR OUTDIR" >&2; exit 2; }
    package "$@"; exit ;;
  --sums) shift; [ $# -eq 1 ] || { echo "usage: $0 --sums OUTDIR" >&2; exit 2; }
    sums "$1"; exit ;;
  "" | -*) echo "usage: $0 OUTDIR | --package OS ARCH LAUNCHER PROBES_DIR OUTDIR | --sums OUTDIR" >&2; exit 2 ;;
esac

out=$(abs_dir "$1")
# shellcheck source=packaging/zig-tools.sh
. packaging/zig-tools.sh
zig_tools
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
probes=$(mktemp -d)
trap 'rm -rf "$probes"' EXIT
bash packaging/build-probes.sh "$probes"
# RELEASE_ARCHIVES=amd64: the CI's release test builds the amd64 archive only (both node-probe builds are in
# it); the arm64 launcher is type-checked for aarch64 there (packaging/check-package.sh), and linked here by
# the release workflow, which builds both.
for arch in ${RELEASE_ARCHIVES:-amd64 arm64}; do
  case "$arch" in amd64 | arm64) ;; *) echo "release: RELEASE_ARCHIVES: unknown architecture $arch" >&2; exit 2 ;; esac
  triple=$(rust_triple "$arch")
  echo "release: k8s-gpu-mcp for linux/$arch ($triple, glibc $GLIBC_BASELINE)" >&2
  CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo zigbuild --locked --release -p k8s-gpu-mcp --target "$triple.$GLIBC_BASELINE"
  package linux "$arch" "$target_dir/$triple/release/k8s-gpu-mcp" "$probes" "$out" >/dev/null
done
sums "$out"
ls -l "$out" >&2
