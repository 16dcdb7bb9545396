#!/usr/bin/env bash
# The three crates as crates.io would get them: `cargo package` writes each .crate (manifest normalised,
# only the files its `include` names), then each crate is type-checked ALONE from its unpacked .crate, with
# its dependency on gpu-diag taken from the unpacked gpu-diag, not from this tree.
#
# What `cargo publish --dry-run` proves, without its second full (codegen) build of every dependency: a
# file the package leaves out (an include_str! of a file outside `include`), a dependency or feature a crate
# uses that only another member's features turned on, a manifest crates.io refuses. It does not link the
# packaged crates: the test build links the same sources, and the release test links them (node-probe for
# both architectures, the launcher for amd64).
#
# The check is for arm64 (aarch64-unknown-linux-gnu, glibc 2.28 through cargo-zigbuild, the release's own
# toolchain): so it is also the arm64 launcher's compile check, every dependency's build script and C code
# included, which the CI's release test does not link (RELEASE_ARCHIVES=amd64 in tests/run-all.sh). In a
# target directory of its own (target/package-check): it runs beside the release builds (tests/run-all.sh),
# and cargo locks a target directory for one build at a time.
#
# Usage: bash packaging/check-package.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# shellcheck source=packaging/zig-tools.sh
. packaging/zig-tools.sh
zig_tools
# The release test's quick profile (packaging/test-release.sh): the build scripts and proc macros these
# checks build for this host take no optimisation either.
if [ "${TEST_RELEASE_FULL:-0}" != 1 ]; then
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-package: FAILED: $*" >&2; exit 1; }

rm -rf "$target/package"
cargo package --workspace --no-verify --allow-dirty --locked >&2
members=()
for c in "$target"/package/*.crate; do
  tar -xzf "$c" -C "$tmp"
  members+=("$(basename "$c" .crate)")
done
[ ${#members[@]} -eq 3 ] || fail "expected three packages, got: ${members[*]}"
gpu_diag=$(printf '%s\n' "${members[@]}" | grep '^gpu-diag-') || fail "no gpu-diag package"

# One workspace over the unpacked crates, only so they share the lock file and the profiles this tree
# builds with. crates.io's copy of gpu-diag is this unpacked one.
{
  echo '[workspace]'
  printf 'members = [%s]\n' "$(printf '"%s",' "${members[@]}" | sed 's/,$//')"
  echo 'resolver = "3"'
  echo
  echo '[patch.crates-io]'
  echo "gpu-diag = { path = \"$gpu_diag\" }"
  echo
  python3 - Cargo.toml <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# Every [profile...] table of the workspace root, verbatim.
for m in re.finditer(r'^\[profile[^\]]*\]\n(?:(?!\[).*\n?)*', text, re.M):
    print(m.group(0).rstrip() + "\n")
PY
} >"$tmp/Cargo.toml"
cp Cargo.lock "$tmp/Cargo.lock"

for m in "${members[@]}"; do
  name=${m%-*}
  echo "check-package: $name alone, from its .crate" >&2
  (cd "$tmp" && CARGO_TARGET_DIR=$target/package-check cargo-zigbuild check --release --locked -p "$name" \
    --target "$(rust_triple arm64).$GLIBC_BASELINE" 2>&1) >&2 ||
    fail "$name does not build from its package (see above)"
done
echo "check-package: gpu-diag, node-probe and k8s-gpu-mcp build alone from their packages (checked for arm64)" >&2
