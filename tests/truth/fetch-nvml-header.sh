#!/usr/bin/env bash
# NVIDIA's own nvml.h, from the PyPI wheel `nvidia-nvml-dev` (NVIDIA's "NVML native dev links, headers"),
# which the fake NVML truth test (tests/truth/nvml_abi.rs) compiles against tests/fake-nvml/fake_nvml.c.
# The wheel only, no dependencies, nothing installed; only include/nvml.h is kept. Prints the directory
# holding nvml.h: ${NVML_HEADER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/nvidia-nvml-dev-VERSION}.
set -euo pipefail
version=13.5.37
dir=${NVML_HEADER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/nvidia-nvml-dev-$version}
if [ -f "$dir/nvml.h" ]; then
  echo "$dir"
  exit 0
fi
py=$(command -v python3 || command -v python)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "nvidia-nvml-dev==$version" >&2
mkdir -p "$dir"
"$py" - "$work" "$dir" <<'PY'
import glob, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(work + "/nvidia_nvml_dev-*.whl")
with zipfile.ZipFile(whl) as z:
    (name,) = [n for n in z.namelist() if n.endswith("/include/nvml.h")]
    open(dest + "/nvml.h", "wb").write(z.read(name))
PY
echo "$dir"
