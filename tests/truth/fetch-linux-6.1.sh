#!/usr/bin/env bash
# Debian's linux-source-6.1 (the kernel whose amdgpu wording predates 6.12's), only the paths the
# amdgpu kernel-format truth test reads: drivers/gpu/drm/amd and drivers/base/dd.c (probe failures).
# Usage: tests/truth/fetch-linux-6.1.sh [DEST]; DEST defaults to $K8S_GPU_MCP_LINUX_6_1, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/linux-source-6.1. Prints DEST. Idempotent.
set -euo pipefail
dest="${1:-${K8S_GPU_MCP_LINUX_6_1:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/linux-source-6.1}}"
if [ -f "$dest/drivers/gpu/drm/amd/amdgpu/amdgpu_device.c" ] && [ -f "$dest/drivers/base/dd.c" ]; then
  echo "$dest"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q linux-source-6.1 >&2) ||
  { apt-get update -qq >&2 && (cd "$work" && apt-get download -q linux-source-6.1 >&2); }
deb="$(ls "$work"/linux-source-6.1_*.deb)"
mkdir -p "$work/x"
# The package holds one tarball, /usr/src/linux-source-6.1.tar.xz; extract only what the test reads.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" ./usr/src/linux-source-6.1.tar.xz
mkdir -p "$dest"
tar -xJf "$work/x/usr/src/linux-source-6.1.tar.xz" -C "$dest" --strip-components=1 \
  linux-source-6.1/drivers/gpu/drm/amd linux-source-6.1/drivers/base/dd.c
echo "$dest"
