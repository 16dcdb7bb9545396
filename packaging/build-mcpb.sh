#!/usr/bin/env bash
# Builds the Claude Desktop bundle (.mcpb) for this machine's platform, validates it with the official MCP
# Bundle CLI (@anthropic-ai/mcpb, pinned in packaging/mcpb/package.json) and writes the MCP registry entry
# (server.json) that points at it.
# Usage: bash packaging/build-mcpb.sh [--debug [--no-build]] [OUT_DIR]     (default OUT_DIR: target/dist; --debug
#        packs the debug build, which the test suite uses to save a release build; --no-build packs the debug
#        binaries already in the target directory, as tests/run-all.sh's test build left them)
#        PROBES_DIR=DIR packs DIR's node-probe-linux-amd64 and -arm64 (packaging/build-probes.sh) under
#        server/probes/; without it, this machine's own build only. The release's bundles, with both, come from
#        packaging/ecosystem.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
build=1
if [ "${1:-}" = "--debug" ]; then profile=debug; shift; fi
if [ "$profile" = debug ] && [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
case "${1:-}" in
  -*) echo "usage: $0 [--debug [--no-build]] [OUT_DIR]  (--no-build packs a debug build only)" >&2; exit 2 ;;
esac
out=$(mkdir -p "${1:-target/dist}" && cd "${1:-target/dist}" && pwd)

meta=$(cargo metadata --format-version 1 --no-deps)
version=$(python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="k8s-gpu-mcp"))' <<<"$meta")
target_dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' <<<"$meta")
if [ "$build" = 0 ]; then
  # A build of only these two packages would differ in features from the test build (no dev-dependencies),
  # rebuild their dependencies and replace the binaries the later e2e test then rebuilds again.
  for b in k8s-gpu-mcp node-probe; do
    [ -x "$target_dir/debug/$b" ] || { echo "build-mcpb: --no-build, but $target_dir/debug/$b is not built" >&2; exit 1; }
  done
elif [ "$profile" = release ]; then
  cargo build --release -p k8s-gpu-mcp -p node-probe
else
  cargo build -p k8s-gpu-mcp -p node-probe
fi

npm ci --prefix packaging/mcpb --no-audit --no-fund --loglevel=error
mcpb=packaging/mcpb/node_modules/.bin/mcpb

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/server/probes"
# node-probe under probes/ beside the launcher (the release archives' layout): local mode and copy delivery
# find it there.
arch=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
cp "$target_dir/$profile/k8s-gpu-mcp" "$stage/server/"
if [ -n "${PROBES_DIR:-}" ]; then
  cp "$PROBES_DIR/node-probe-linux-amd64" "$PROBES_DIR/node-probe-linux-arm64" "$stage/server/probes/"
else
  cp "$target_dir/$profile/node-probe" "$stage/server/probes/node-probe-linux-$arch"
fi
# The release profile strips already; a debug build would make a bundle of 100 MB.
if [ "$profile" = debug ] && command -v strip >/dev/null; then
  strip "$stage/server/k8s-gpu-mcp"
  [ -n "${PROBES_DIR:-}" ] || strip "$stage/server/probes/node-probe-linux-$arch"
fi
cp LICENSE README.md "$stage/"
python3 packaging/fill.py manifest "$version" "$stage/server/k8s-gpu-mcp" \
  "$stage/server/probes/node-probe-linux-$arch" >"$stage/manifest.json"
"$mcpb" validate "$stage/manifest.json"

bundle="$out/k8s-gpu-mcp-$version-$(uname -s | tr A-Z a-z)-$(uname -m).mcpb"
rm -f "$bundle"
"$mcpb" pack "$stage" "$bundle" >&2
"$mcpb" info "$bundle" >&2
python3 packaging/fill.py server-json "$version" "$bundle" >"$out/server.json"

# What Claude Desktop unpacks must run on its own: the bundled launcher answers in local mode with the bundled
# node-probe, found next to it.
mkdir "$stage/unpacked"
python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    z.extract(i, sys.argv[2])
    if i.external_attr >> 16 & 0o111:
        import os; os.chmod(os.path.join(sys.argv[2], i.filename), i.external_attr >> 16 & 0o777)' "$bundle" "$stage/unpacked"
"$stage/unpacked/server/k8s-gpu-mcp" --local --simulate dgx-h100-xid79 call get_gpu_health \
  --arg node_name=local --output json | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["node"] == "local", d' \
  || { echo "build-mcpb.sh: the unpacked bundle does not answer" >&2; exit 1; }
echo "$bundle"
