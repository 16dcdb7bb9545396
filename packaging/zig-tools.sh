# Sourced by packaging/build-probes.sh and packaging/release.sh: the Linux cross-build tools, installed when
# missing, and the glibc baseline of every Linux build.

# RHEL 8 / UBI 8 (the oldest glibc among the images GPU nodes run node-probe in; Ubuntu 20.04 has 2.31).
GLIBC_BASELINE=2.28
# Versions known to build this tree; a newer one already installed is used as it is.
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.0

rust_triple() {
  case "$1" in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    *) echo "unknown architecture $1" >&2; return 1 ;;
  esac
}

# pip install, also where the system's Python is marked externally managed (PEP 668: Debian's python3),
# and with pip itself installed first where it is missing.
pip_install() {
  python3 -m pip --version >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; } ||
    { echo "packaging: python3 has no pip" >&2; return 1; }
  python3 -m pip install -q "$@" >&2 2>/dev/null || python3 -m pip install -q --break-system-packages "$@" >&2
}

zig_tools() {
  command -v cargo >/dev/null && command -v rustup >/dev/null ||
    { echo "packaging: cargo and rustup are required (https://rustup.rs)" >&2; return 1; }
  # One rustup at a time: the test command runs two packaging jobs side by side (tests/run-all.sh), and on a
  # fresh machine the second `rustup target add` failed installing the component the first was installing
  # ("failed to install component: 'rust-std-aarch64-unknown-linux-gnu', detected conflict").
  local lock=${RUSTUP_HOME:-$HOME/.rustup}/k8s-gpu-mcp-target-add.lock
  ( flock 9 && rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu >&2 ) 9>"$lock" ||
    { echo "packaging: rustup target add failed" >&2; return 1; }
  if ! python3 -c 'import ziglang' 2>/dev/null || ! command -v cargo-zigbuild >/dev/null; then
    echo "packaging: installing ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION (pip)" >&2
    pip_install "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" ||
      { echo "packaging: pip install of ziglang/cargo-zigbuild failed" >&2; return 1; }
    # pip's scripts directory may not be on PATH (a user install).
    PATH=$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    command -v cargo-zigbuild >/dev/null ||
      { echo "packaging: cargo-zigbuild installed but not on PATH" >&2; return 1; }
  fi
  python3 -m ziglang version >/dev/null || { echo "packaging: zig does not run" >&2; return 1; }
}
