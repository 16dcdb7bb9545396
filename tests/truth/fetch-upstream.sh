#!/usr/bin/env bash
# Fetches the upstream source the truth tests compile or quote, into a cache outside the repository, and
# prints the directory it populated (stdout: that one line; progress on stderr).
#   Linux 6.12 (Debian's linux-source-6.12): drivers/gpu/drm/amd/ (gpu_metrics structs in
#   include/kgd_pp_interface.h; amdgpu's message formats) and drivers/accel/habanalabs/, under
#   DIR/linux-source-6.12/.
# DIR: $K8S_GPU_MCP_UPSTREAM, else ${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream (where the tests look).
# LINUX_SOURCE_DEB=/path/to/linux-source-6.12_*.deb uses a .deb already here instead of `apt-get download`.
# `apt-get download` needs no root and installs nothing; only the named paths are extracted.
set -euo pipefail
dir="${K8S_GPU_MCP_UPSTREAM:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream}"
src="$dir/linux-source-6.12"
if [ -f "$src/drivers/gpu/drm/amd/include/kgd_pp_interface.h" ] && [ -d "$src/drivers/accel/habanalabs" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
work="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
deb="${LINUX_SOURCE_DEB:-}"
if [ -z "$deb" ]; then
  command -v apt-get >/dev/null || { echo "fetch-upstream: apt-get is needed for linux-source-6.12" >&2; exit 1; }
  echo "fetch-upstream: apt-get download linux-source-6.12 (about 150 MB)" >&2
  (cd "$work" && apt-get download -q linux-source-6.12 >&2) ||
    { apt-get update -qq >&2 && (cd "$work" && apt-get download -q linux-source-6.12 >&2); }
  deb="$(ls "$work"/linux-source-6.12_*.deb)"
fi
echo "fetch-upstream: extracting drivers/gpu/drm/amd and drivers/accel/habanalabs from $deb" >&2
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-6.12.tar.xz'
tar -xJf "$work/usr/src/linux-source-6.12.tar.xz" -C "$work" --wildcards \
  'linux-source-6.12/drivers/gpu/drm/amd/*' 'linux-source-6.12/drivers/accel/habanalabs/*'
rm -rf "$src"
mv "$work/linux-source-6.12" "$src"
echo "$dir"
