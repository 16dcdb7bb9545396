#!/usr/bin/env bash
# The PyPI `habana-pyhlml` wheels (Intel's ctypes binding of libhlml) that node-probe's libhlml truth tests
# read (node-probe/src/gaudi/hlml_child.rs, tests/truth/hlml_abi.rs, tests/truth/hlml_abi.py). Wheels only,
# no dependencies, nothing installed; a wheel already in the cache is not fetched again.
# Into ${HLML_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/hlml-wheels}.
set -euo pipefail
dir=${HLML_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/hlml-wheels}
# One release per hlml_pci_info_t layout PyPI has served (52 bytes in 1.10, 76 in 1.17, 84 from 1.21:
# bus_id 15 bytes, then 19) and the newest; the tests check each.
versions=(1.10.0.494 1.17.0.495 1.21.0.555 1.24.2.481)
mkdir -p "$dir"
py=$(command -v python3 || command -v python)
for v in "${versions[@]}"; do
  [ -e "$dir/habana_pyhlml-$v-py3-none-any.whl" ] && continue
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir" "habana-pyhlml==$v" >&2
done
echo "$dir"
