#!/usr/bin/env bash
# The PyPI `amdsmi` wheels (AMD's ctypes ABI of each release's amdsmi.h) that node-probe's libamd_smi
# truth test reads (node-probe/src/amd/smi_child.rs, tests/truth/amdsmi_abi.py). Wheels only, no
# dependencies, nothing installed; a wheel already in the cache is not fetched again.
# Into ${AMDSMI_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/amdsmi-wheels}.
set -euo pipefail
dir=${AMDSMI_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/amdsmi-wheels}
# Every release PyPI serves from 6.0.0 through 7.0.2 (6.2.2 only as its .post0); the test checks each.
versions=(6.0.0 6.0.2 6.1.0 6.1.1 6.1.2 6.2.0 6.2.1 6.2.2.post0 6.2.4 6.3.0 6.3.1 6.3.2 6.3.3
  6.4.0 6.4.1 6.4.2 6.4.3 6.4.4 7.0.0 7.0.1 7.0.2)
mkdir -p "$dir"
py=$(command -v python3 || command -v python)
for v in "${versions[@]}"; do
  [ -e "$dir/amdsmi-$v-py3-none-any.whl" ] && continue
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir" "amdsmi==$v" >&2
done
echo "$dir"
