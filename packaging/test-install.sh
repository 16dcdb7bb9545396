#!/usr/bin/env bash
# The README's install commands, run as written in a clean clone of this repository (HEAD): every fenced
# block that follows a `<!-- tested by packaging/test-install.sh` line, in order, with a temporary HOME and
# install root. Then checks what they left: both binaries, a completion script, a man page.
# Usage: bash packaging/test-install.sh      (release builds are cached in target/install-test)
#        bash packaging/test-install.sh --reuse-release
#            the install commands link with Zig for glibc 2.28 in target/release-test, where
#            packaging/test-release.sh --build-only has just built the same packages with the same profile:
#            cargo then compiles only this clone's own three crates (tests/run-all.sh; see below).
set -euo pipefail
reuse=0
case "${1:-}" in
  --reuse-release) reuse=1 ;;
  "") ;;
  *) echo "usage: $0 [--reuse-release]" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/src"

# Only the blocks' effects are redirected: cargo and rustup keep their real homes and caches.
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export CARGO_INSTALL_ROOT=$tmp/root CARGO_TARGET_DIR=$repo/target/install-test
# The commands run as written; only the release profile is made quick to build (no LTO, no optimisation):
# this tests the install path, not the optimiser, and keeps a cold CI run about 15 minutes shorter.
# TEST_INSTALL_FULL_RELEASE=1 keeps the real profile (the same variables as packaging/test-release.sh's).
if [ "${TEST_INSTALL_FULL_RELEASE:-0}" != 1 ]; then
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
fi
shims=
if [ "$reuse" = 1 ]; then
  # `cargo install` as written, run by cargo-zigbuild's install for the release's amd64 target: the same
  # resolution (--locked), package, binaries, profile and install root as the user's command; what differs
  # is the linker (Zig's, for glibc 2.28, instead of the host's cc, which the test build links with) and the
  # target directory, shared with the release build so that the dependencies are compiled once per CI run.
  # shellcheck source=packaging/zig-tools.sh
  . "$repo/packaging/zig-tools.sh"
  zig_tools
  export CARGO_TARGET_DIR=$repo/target/release-test CARGO_PROFILE_RELEASE_STRIP=symbols
  real_cargo=$(command -v cargo)
  # Zig's linker wrappers live in cargo-zigbuild's cache; the same paths as the release build's (they are
  # build scripts' CC, so another path would rebuild every crate with C in it).
  real_cache=${XDG_CACHE_HOME:-$HOME/.cache}
  shims=$tmp/shims
  mkdir -p "$shims"
  cat >"$shims/cargo" <<SH
#!/usr/bin/env bash
# packaging/test-install.sh --reuse-release: the README's cargo install through cargo-zigbuild (which runs
# the real cargo: CARGO names it, and the guard stops a second rewrite).
if [ "\$1" = install ] && [ -z "\${TEST_INSTALL_SHIMMED:-}" ]; then
  shift
  export TEST_INSTALL_SHIMMED=1 CARGO="$real_cargo" XDG_CACHE_HOME="$real_cache"
  exec cargo-zigbuild install --target "$(rust_triple amd64).$GLIBC_BASELINE" "\$@"
fi
exec "$real_cargo" "\$@"
SH
  chmod 755 "$shims/cargo"
fi
export HOME=$tmp/home PATH=${shims:+$shims:}$tmp/root/bin:$PATH
mkdir -p "$HOME"

python3 - "$tmp/src/README.md" >"$tmp/blocks.sh" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
out, i = [], 0
while i < len(lines):
    if lines[i].startswith("<!-- tested by packaging/test-install.sh"):
        i += 1
        assert lines[i].startswith("```"), f"README line {i + 1}: a fenced block must follow the marker"
        i += 1
        while not lines[i].startswith("```"):
            out.append(lines[i])
            i += 1
    i += 1
if not out:
    sys.exit("no tested blocks in README.md")
print("\n".join(out))
PY
echo "==> README install commands:" >&2
cat "$tmp/blocks.sh" >&2
(cd "$tmp/src" && bash -euxo pipefail "$tmp/blocks.sh") >"$tmp/out" || { cat "$tmp/out" >&2; exit 1; }

fail() { echo "test-install: $*" >&2; exit 1; }
for b in k8s-gpu-mcp node-probe; do [ -x "$tmp/root/bin/$b" ] || fail "$b not installed"; done
grep -q '"verdict"\|GPU' "$tmp/out" || fail "the demo call printed no GPU health answer: $(cat "$tmp/out")"
grep -q 'k8s-gpu-mcp' "$HOME/.local/share/bash-completion/completions/k8s-gpu-mcp" || fail "empty completion script"
head -c 200 "$HOME/.local/share/man/man1/k8s-gpu-mcp.1" | grep -q '^\.TH' || fail "the man page is not roff"
grep -q "mcp\\\\-check(1)" "$HOME/.local/share/man/man1/k8s-gpu-mcp.1" || fail "the man page lacks the check subcommand"
echo "test-install: README install commands work from a clean clone" >&2
