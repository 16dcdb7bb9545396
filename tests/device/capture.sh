#!/bin/bash
# Capture nvidia-smi and node-probe output side by side on a GPU host, for compare.py.
# Usage: capture.sh NODE_PROBE_BINARY OUTDIR   (run as root on the GPU host)
set -u
NP=$1; O=$2; mkdir -p "$O"
HERE=$(cd "$(dirname "$0")" && pwd)
T=""; [ -x /usr/bin/time ] && T="/usr/bin/time -v"
run() { # name cmd...
  local n=$1; shift
  local s=$(date +%s.%N)
  $T "$@" >"$O/$n.out" 2>"$O/$n.err"; echo $? >"$O/$n.rc"
  echo "$s $(date +%s.%N)" >"$O/$n.wall"
}
uname -a >"$O/uname.txt"; cat /proc/driver/nvidia/version >"$O/proc_driver_version.txt" 2>&1
ls -l /dev/nvidia* >"$O/dev_nvidia.txt" 2>&1
ldconfig -p | grep -i nvidia-ml >"$O/ldconfig.txt" 2>&1
"$NP" --help >"$O/np_help.txt" 2>&1
export NODE_PROBE_PRETTY=1
snap() { # suffix: nvidia-smi and node-probe facts read back to back
  run smi_x$1 nvidia-smi -q -x
  run np_facts$1 "$NP" --host-root / facts
  run smi_q$1 nvidia-smi -q
  [ -n "${PYNVML:-}" ] && run pynvml$1 python3 "$HERE/pynvml_dump.py"
}
# 1. idle
snap _idle
run smi_topo nvidia-smi topo -m
run smi_topo_p2p nvidia-smi topo -p2p rwnap
run smi_nvlink_s nvidia-smi nvlink -s
run smi_nvlink_e nvidia-smi nvlink -e
run smi_nvlink_c nvidia-smi nvlink -c
run smi_fabric nvidia-smi -q -d FABRIC
run smi_ver nvidia-smi --version
for c in inventory telemetry topology ecc processes health describe xid version scenarios; do
  run np_$c "$NP" --host-root / $c
done
# 2. busy: one process holding memory and running matmuls
if [ -n "${LOAD:-}" ]; then
  python3 -c "
import torch,time
a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16); b=torch.empty(6<<30,dtype=torch.uint8,device='cuda')
open('$O/load.ready','w').close(); t=time.time()
while time.time()-t<${LOAD}:
    for _ in range(50): a@a
    torch.cuda.synchronize()
" >"$O/load.log" 2>&1 &
  LP=$!
  for i in $(seq 1 120); do [ -e "$O/load.ready" ] && break; sleep 0.5; done
  sleep 2
  snap _busy
  run np_telemetry_busy "$NP" --host-root / telemetry
  run np_processes_busy "$NP" --host-root / processes
  run np_health_busy "$NP" --host-root / health
  kill $LP; wait $LP
fi
