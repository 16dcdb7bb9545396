#!/usr/bin/env bash
# What installers read, generated from a release directory (packaging/release.sh's output), each pointing at
# the release assets by URL and SHA-256. Nothing is published.
#
#   bash packaging/ecosystem.sh RELEASE_DIR VERSION BASE_URL
#     RELEASE_DIR/k8s-gpu-mcp-VERSION-OS-ARCH.mcpb   Claude Desktop bundle of each archive: the launcher and both
#                                                    Linux node-probe builds (server/probes/), validated and
#                                                    packed by the official MCP Bundle CLI
#     RELEASE_DIR/server.json                        MCP registry entry, one mcpb package per bundle
#     RELEASE_DIR/gpu-mcp.yaml                       krew plugin manifest (`kubectl gpu-mcp ...`)
#     RELEASE_DIR/SHA256SUMS                         rewritten over the archives and the bundles
#   BASE_URL: where the assets will be downloaded from, e.g.
#     https://github.com/k8s-gpu-mcp/k8s-gpu-mcp/releases/download/vVERSION
#   cargo binstall reads [package.metadata.binstall] of launcher/Cargo.toml (archive names fixed there).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 RELEASE_DIR VERSION BASE_URL" >&2; exit 2; }
rel=$(cd "$1" && pwd)
version=$2
base_url=${3%/}
cd "$(dirname "$0")/.."

# The archives must be the ones SHA256SUMS names, unchanged.
(cd "$rel" && sha256sum --quiet -c SHA256SUMS) || { echo "ecosystem: SHA256SUMS does not match $rel" >&2; exit 1; }
shopt -s nullglob
archives=("$rel"/k8s-gpu-mcp-"$version"-*.tar.gz)
[ ${#archives[@]} -gt 0 ] || { echo "ecosystem: no k8s-gpu-mcp-$version-*.tar.gz in $rel" >&2; exit 1; }

npm ci --prefix packaging/mcpb --no-audit --no-fund --loglevel=error
mcpb=packaging/mcpb/node_modules/.bin/mcpb

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The tool list comes from a launcher that runs here (every platform's launcher is the same source).
host_arch=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
lister=$work/lister
mkdir -p "$lister"
tar -xzf "$rel/k8s-gpu-mcp-$version-linux-$host_arch.tar.gz" -C "$lister" --strip-components=1 ||
  { echo "ecosystem: the linux-$host_arch archive is needed to list the tools" >&2; exit 1; }

bundles=()
for a in "${archives[@]}"; do
  name=$(basename "$a" .tar.gz)
  plat=${name#k8s-gpu-mcp-"$version"-}
  os=${plat%-*}
  stage=$work/$name
  mkdir -p "$stage/server"
  tar -xzf "$a" -C "$stage/server" --strip-components=1
  mv "$stage/server/README.md" "$stage/server/LICENSE" "$stage/"
  rm -f "$stage/server/INSTALL.md"
  python3 packaging/fill.py manifest "$version" "$lister/k8s-gpu-mcp" \
    "$lister/probes/node-probe-linux-$host_arch" "$os" >"$stage/manifest.json"
  "$mcpb" validate "$stage/manifest.json" >&2
  rm -f "$rel/$name.mcpb"
  "$mcpb" pack "$stage" "$rel/$name.mcpb" >&2
  bundles+=("$rel/$name.mcpb")
done

python3 packaging/fill.py release-server-json "$version" "$base_url" "${bundles[@]}" >"$rel/server.json"
python3 packaging/fill.py krew "$version" "$base_url" "${archives[@]}" >"$rel/gpu-mcp.yaml"
(cd "$rel" && sha256sum -- *.tar.gz *.mcpb >SHA256SUMS)
ls -l "$rel" >&2
