#!/usr/bin/env bash
# Builds node-probe for Linux amd64 and arm64, linked against glibc 2.28 (RHEL 8 / UBI 8; Ubuntu 20.04 has
# 2.31), so copy delivery can run it in the base images GPU nodes have (the GPU Operator's *-rhel8 and
# *-ubuntu20.04 driver images, CUDA ubuntu20.04 bases). What releases (packaging/release.sh) and the install
# docs use.
#
# How: cargo-zigbuild links with Zig's `cc`, which carries stub libraries for every glibc version and takes
# the version from the target's suffix (`x86_64-unknown-linux-gnu.2.28`): a symbol newer than 2.28 fails the
# link instead of reaching a node. No sysroot to download or keep, the same command for both architectures
# from one amd64 host. https://github.com/rust-cross/cargo-zigbuild (README, "Specify glibc version").
#
# Usage: bash packaging/build-probes.sh OUTDIR
#   writes OUTDIR/node-probe-linux-amd64 and OUTDIR/node-probe-linux-arm64 (stripped).
#   Installs what is missing: the Rust targets (rustup), cargo-zigbuild and Zig (pip: the `cargo-zigbuild`
#   and `ziglang` wheels). The build uses the release profile; a caller may override it through cargo's
#   CARGO_PROFILE_RELEASE_* variables (the tests do, to build quickly: the glibc ceiling is the linker's,
#   not the optimiser's).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

# shellcheck source=packaging/zig-tools.sh
. packaging/zig-tools.sh
zig_tools

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
for arch in amd64 arm64; do
  triple=$(rust_triple "$arch")
  echo "build-probes: node-probe for linux/$arch ($triple, glibc $GLIBC_BASELINE)" >&2
  # Stripped whatever the caller overrides: the linker drops the symbol table (`strip` of binutils knows
  # only the host's architecture).
  CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo zigbuild --locked --release -p node-probe --target "$triple.$GLIBC_BASELINE"
  install -m 0755 "$target_dir/$triple/release/node-probe" "$out/node-probe-linux-$arch"
done
ls -l "$out"/node-probe-linux-* >&2
