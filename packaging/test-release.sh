#!/usr/bin/env bash
# The release as users get it, built and used (tests/run-all.sh runs it):
#   1. packaging/release.sh builds the Linux amd64 and arm64 archives (node-probe and launcher, glibc 2.28).
#   2. Every binary in them: no symbol newer than GLIBC_2.28, stripped, the right ELF machine.
#   3. The arm64 node-probe under qemu-user answers `describe --simulate` for every built-in scenario exactly
#      as the amd64 one does; both load a fake NVML (dlopen through the zig-linked loader path) and agree.
#   4. The linux-amd64 archive unpacked into an empty directory: the quick start with `env -i PATH=<that dir>`;
#      copy delivery against the kwok testbed picking up probes/ beside the launcher (the e2e test
#      release_layout_copies_the_probe_found_beside_the_launcher with K8S_GPU_MCP_RELEASE_DIR; TESTBED_BIN
#      from tests/testbed/build.sh, or SKIP_E2E=1 to skip that part).
#   5. packaging/ecosystem.sh: the .mcpb bundles, server.json and the krew manifest, checked against the
#      archives' digests (packaging/check-release.py), server.json against the MCP registry's own schema.
# Installs what is missing: qemu-user-static, binutils and the arm64 C library (apt), cargo-zigbuild, Zig,
# jsonschema and PyYAML (pip), the Rust targets (rustup).
#
# The release profile is made quick to build here (no LTO, no optimisation; TEST_RELEASE_FULL=1 keeps it): the
# glibc ceiling comes from the linker's glibc stubs, not the optimiser, and the archive's layout and behaviour
# are the same. Builds are cached in target/release-test.
#
# Usage: bash packaging/test-release.sh                    build, then check and use
#        bash packaging/test-release.sh --build-only DIR   build the archives into DIR (and stop)
#        bash packaging/test-release.sh --built DIR        check and use archives built so (tests/run-all.sh
#                                                          builds them beside the test suite)
set -euo pipefail
mode=all built=
case "${1:-}" in
  --build-only | --built) [ $# -eq 2 ] || { echo "usage: $0 [--build-only DIR | --built DIR]" >&2; exit 2; }
    mode=${1#--} built=$(mkdir -p "$2" && cd "$2" && pwd) ;;
  "") ;;
  *) echo "usage: $0 [--build-only DIR | --built DIR]" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SECONDS=0
phase() { printf 'test-release: [%4ss] %s\n' "$SECONDS" "$*" >&2; }
fail() { echo "test-release: FAILED: $*" >&2; exit 1; }

# Tools.
need_apt=()
command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static)
command -v objdump >/dev/null && command -v readelf >/dev/null || need_apt+=(binutils)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need_apt+=(libc6-arm64-cross)
command -v cc >/dev/null || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  phase "installing ${need_apt[*]} (apt)"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null ||
    fail "apt-get install ${need_apt[*]} (run as root, or install them)"
fi
# shellcheck source=packaging/zig-tools.sh
. packaging/zig-tools.sh
python3 -c 'import jsonschema, yaml' 2>/dev/null || pip_install jsonschema pyyaml || fail "pip install jsonschema pyyaml"

export CARGO_TARGET_DIR=$repo/target/release-test
if [ "${TEST_RELEASE_FULL:-0}" != 1 ]; then
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
fi
version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="k8s-gpu-mcp"))')
rel=$tmp/release

if [ "$mode" = built ]; then
  phase "1. the archives packaging/release.sh built into $built"
  [ -f "$built/SHA256SUMS" ] || fail "no SHA256SUMS in $built (packaging/test-release.sh --build-only $built)"
  cp -a "$built" "$rel"
else
  phase "1. packaging/release.sh"
  bash packaging/release.sh "$rel"
fi
(cd "$rel" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS"
if [ "$mode" = build-only ]; then
  cp -a "$rel/." "$built/"
  phase "built into $built"
  exit 0
fi

phase "2. glibc ceiling, stripped, ELF machine of every binary"
# RELEASE_ARCHIVES=amd64 (tests/run-all.sh): the arm64 archive is not built; its launcher is type-checked for
# aarch64 by packaging/check-package.sh instead. The amd64 archive, with both node-probe builds, always is.
archives=${RELEASE_ARCHIVES:-amd64 arm64}
case " $archives " in *" amd64 "*) ;; *) fail "RELEASE_ARCHIVES must include amd64 (phases 3-5 use it)" ;; esac
for arch in $archives; do
  a=$rel/k8s-gpu-mcp-$version-linux-$arch.tar.gz
  [ -f "$a" ] || fail "missing $a"
  top=k8s-gpu-mcp-$version-linux-$arch
  want=$(printf '%s\n' "$top/" "$top/INSTALL.md" "$top/LICENSE" "$top/README.md" "$top/k8s-gpu-mcp" "$top/probes/" \
    "$top/probes/node-probe-linux-amd64" "$top/probes/node-probe-linux-arm64")
  got=$(tar -tzf "$a" | sort)
  [ "$got" = "$want" ] || fail "$a holds:\n$got\nexpected:\n$want"
  mkdir -p "$tmp/x/$arch"
  tar -xzf "$a" -C "$tmp/x/$arch"
  for f in "$top/k8s-gpu-mcp:$arch" "$top/probes/node-probe-linux-amd64:amd64" "$top/probes/node-probe-linux-arm64:arm64"; do
    bin=$tmp/x/$arch/${f%:*} machine=${f##*:}
    [ -x "$bin" ] || fail "$bin not executable"
    max=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    [ -n "$max" ] || fail "$bin: no GLIBC_ symbol versions (not a glibc build?)"
    [ "$(printf '%s\n2.28\n' "$max" | sort -V | tail -1)" = 2.28 ] || fail "$bin needs GLIBC_$max (> 2.28)"
    ! readelf -S "$bin" | grep -q '\.symtab' || fail "$bin is not stripped"
    case "$machine" in amd64) m='X86-64' ;; arm64) m='AArch64' ;; esac
    readelf -h "$bin" | grep -q "Machine:.*$m" || fail "$bin is not $m"
    printf 'test-release:   %-60s GLIBC_%s  %9d bytes\n' "${f%:*} ($arch archive)" "$max" "$(stat -c %s "$bin")" >&2
  done
done
if [ -d "$tmp/x/arm64" ]; then
  cmp -s "$tmp/x/amd64/k8s-gpu-mcp-$version-linux-amd64/probes/node-probe-linux-arm64" \
    "$tmp/x/arm64/k8s-gpu-mcp-$version-linux-arm64/probes/node-probe-linux-arm64" ||
    fail "the archives carry different node-probe builds"
else
  echo "test-release:   linux-arm64 archive not built (RELEASE_ARCHIVES=$archives)" >&2
fi

phase "3. arm64 node-probe under qemu-user against amd64, every scenario; both load a fake NVML"
probes=$tmp/x/amd64/k8s-gpu-mcp-$version-linux-amd64/probes
amd=$probes/node-probe-linux-amd64
arm() { qemu-aarch64-static -L /usr/aarch64-linux-gnu "$probes/node-probe-linux-arm64" "$@"; }
# The probe's collection time is the only clock field of a simulated run (fixed in the scenarios; dropped
# anyway, so that a scenario that starts using the real clock does not fail this comparison).
same() { python3 - "$1" "$2" <<'PY'
import json, sys
docs = [json.load(open(p)) for p in sys.argv[1:]]
for d in docs:
    d.get("probe", {}).pop("collected_at_unix", None)
sys.exit(0 if docs[0] == docs[1] else 1)
PY
}
scenarios=$("$amd" scenarios | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["scenarios"]["scenarios"]))')
# Emulated, each run takes seconds on one core: two at a time (nothing else runs beside this step).
mkdir -p "$tmp/sc"
export -f arm
export probes
printf '%s\n' $scenarios | xargs -P 2 -I{} bash -c \
  'arm describe --simulate "$1" >"$2/$1.arm.json" 2>"$2/$1.arm.err" || echo "$1" >>"$2/failed"' _ {} "$tmp/sc"
[ ! -s "$tmp/sc/failed" ] || fail "arm64 node-probe under qemu failed on $(tr '\n' ' ' <"$tmp/sc/failed")"
n=0
for s in $scenarios; do
  "$amd" describe --simulate "$s" >"$tmp/amd.json"
  same "$tmp/amd.json" "$tmp/sc/$s.arm.json" || fail "arm64 and amd64 differ on scenario $s"
  n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n scenarios"
echo "test-release:   $n scenarios: arm64 (qemu) == amd64" >&2
# NVML is dlopen'ed: the fake library (tests/fake-nvml) built for each architecture, loaded by each build.
cc -shared -fPIC -Wall -o "$tmp/libnvidia-ml-amd64.so.1" tests/fake-nvml/fake_nvml.c
python3 -m ziglang cc -target aarch64-linux-gnu.2.28 -shared -fPIC -Wall -o "$tmp/libnvidia-ml-arm64.so.1" \
  tests/fake-nvml/fake_nvml.c
"$amd" inventory --nvml-lib "$tmp/libnvidia-ml-amd64.so.1" >"$tmp/amd.json"
arm inventory --nvml-lib "$tmp/libnvidia-ml-arm64.so.1" >"$tmp/arm.json"
python3 - "$tmp/amd.json" "$tmp/arm.json" <<'PY' || fail "the fake NVML answers differ between the builds"
import json, sys
docs = [json.load(open(p)) for p in sys.argv[1:]]
for d in docs:
    assert d["probe"]["source"] == "nvml", d["probe"]
    assert d["inventory"]["gpus"], "no GPUs from the fake NVML"
    d["probe"].pop("collected_at_unix", None)
assert docs[0] == docs[1], "amd64 and arm64 read the fake NVML differently"
print(f"test-release:   fake NVML: {len(docs[0]['inventory']['gpus'])} GPUs from both builds", file=sys.stderr)
PY

phase "4. the linux-amd64 archive in an empty directory, nothing else on PATH"
# Only this machine's architecture can run here.
[ "$(uname -m)" = x86_64 ] || fail "run on an amd64 host (found $(uname -m))"
user_dir=$tmp/user
mkdir -p "$user_dir/home"
tar -xzf "$rel/k8s-gpu-mcp-$version-linux-amd64.tar.gz" -C "$user_dir"
app=$user_dir/k8s-gpu-mcp-$version-linux-amd64
env -i PATH="$app" HOME="$user_dir/home" \
  k8s-gpu-mcp --local --simulate dgx-h100-xid79 call get_gpu_health --arg node_name=local --output json \
  >"$tmp/quick.json" || fail "the quick start from the archive"
python3 - "$tmp/quick.json" <<'PY' || fail "quick start answer: $(head -c 500 "$tmp/quick.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["node"] == "local", d
assert "79" in json.dumps(d), "the XID 79 scenario's answer does not mention it"
PY
echo "test-release:   quick start from the archive: ok" >&2
if [ "${SKIP_E2E:-0}" = 1 ]; then
  echo "test-release:   SKIP_E2E=1: copy delivery against the testbed skipped" >&2
else
  [ -n "${TESTBED_BIN:-}" ] || fail "TESTBED_BIN is not set (bash tests/testbed/build.sh prints it), or SKIP_E2E=1"
  # The e2e test binary is the normal debug build (tests/run-all.sh built it already): --workspace, as there,
  # for the same features (-p k8s-gpu-mcp alone resolves others and rebuilt it, 100 s).
  env -u CARGO_TARGET_DIR -u CARGO_PROFILE_RELEASE_LTO -u CARGO_PROFILE_RELEASE_OPT_LEVEL \
    -u CARGO_PROFILE_RELEASE_CODEGEN_UNITS K8S_GPU_MCP_RELEASE_DIR="$app" \
    cargo test -q --workspace --test e2e -- --exact copy::release_layout_copies_the_probe_found_beside_the_launcher ||
    fail "copy delivery from the archive against the testbed"
fi

phase "5. packaging/ecosystem.sh: bundles, server.json, krew manifest; checked"
base_url=https://github.com/k8s-gpu-mcp/k8s-gpu-mcp/releases/download/v$version
bash packaging/ecosystem.sh "$rel" "$version" "$base_url"
# The registry's server.json schema, from its own Go module (the version whose schema server.json names).
schema=$(GOFLAGS=-mod=mod go mod download -json github.com/modelcontextprotocol/registry@v1.8.8 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/internal/validators/schemas/2025-12-11.json
[ -f "$schema" ] || fail "no MCP registry schema at $schema"
python3 packaging/check-release.py "$rel" "$version" "$base_url" "$schema"
# The bundle as Claude Desktop unpacks it answers on its own (local mode finds server/probes/).
mkdir "$tmp/bundle"
python3 -c 'import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    z.extract(i, sys.argv[2])
    os.chmod(os.path.join(sys.argv[2], i.filename), i.external_attr >> 16 & 0o777 or 0o644)' \
  "$rel/k8s-gpu-mcp-$version-linux-amd64.mcpb" "$tmp/bundle"
env -i PATH=/usr/bin:/bin HOME="$user_dir/home" "$tmp/bundle/server/k8s-gpu-mcp" --local --simulate dgx-h100-xid79 \
  call get_gpu_health --arg node_name=local --output json | python3 -c 'import json, sys; assert json.load(sys.stdin)["node"] == "local"' ||
  fail "the unpacked linux-amd64 bundle does not answer"
phase "all release checks passed"
