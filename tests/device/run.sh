#!/usr/bin/env bash
# The product on a real NVIDIA GPU host (the device machine the project is lent at times): the release archive
# in target/device/ (packaging/release.sh's linux-amd64 archive, carried there; or a release build's two
# binaries in target/device/bin/), every node-probe command and
# every node tool of the launcher in local mode, beside nvidia-smi's own view of the same GPUs, written to $OUT.
# A compute process of our own (CUDA driver API through ctypes, memory only) gives the process tools a real
# process to find, a kill preflight to refuse and a real kill to do. Usage (on the device):
#   OUT=/some/dir bash tests/device/run.sh
set -uo pipefail
OUT=${OUT:?OUT names the folder for the results}
SECONDS=0
log() { printf '[%4ss] %s\n' "$SECONDS" "$*" | tee -a "$OUT/steps.log" >&2; }
work=$(mktemp -d)
if [ -x target/device/bin/k8s-gpu-mcp ] && [ -x target/device/bin/node-probe ]; then
  # A build of this tree instead of an archive (local mode finds node-probe beside the launcher).
  np=$PWD/target/device/bin/node-probe
  launcher=$PWD/target/device/bin/k8s-gpu-mcp
else
  tar -xzf target/device/k8s-gpu-mcp-*-linux-amd64.tar.gz -C "$work" || { log "no archive in target/device"; exit 1; }
  app=$(echo "$work"/k8s-gpu-mcp-*-linux-amd64)
  np=$app/probes/node-probe-linux-amd64
  launcher=$app/k8s-gpu-mcp
fi
run() { # name, command...: stdout to $OUT/name, stderr to $OUT/name.err, rc and seconds logged
  local name=$1; shift
  local t0 rc
  t0=$(date +%s%N)
  timeout 120 "$@" >"$OUT/$name" 2>"$OUT/$name.err"
  rc=$?
  log "$name rc=$rc $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

log "host"
{ uname -a; cat /etc/os-release; ldd --version | head -1; cat /proc/driver/nvidia/version; nproc; free -g;
  ls -la /dev/nvidia* /dev/kmsg; id; command -v dcgmi nv-hostengine nvidia-bug-report.sh python3 kubelet;
  ls /run/nvidia 2>&1; cat /proc/cmdline; } >"$OUT/host.txt" 2>&1

log "nvidia-smi's view"
run smi.txt nvidia-smi
run smi-q.xml nvidia-smi -q -x
run smi-topo.txt nvidia-smi topo -m
run smi-nvlink.txt nvidia-smi nvlink -s
run smi-query.csv nvidia-smi --format=csv --query-gpu=index,uuid,pci.bus_id,name,serial,vbios_version,memory.total,memory.used,temperature.gpu,temperature.memory,power.draw,power.limit,enforced.power.limit,clocks.sm,clocks.mem,clocks.max.sm,utilization.gpu,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,ecc.mode.current,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,retired_pages.pending,remapped_rows.correctable,remapped_rows.uncorrectable,remapped_rows.pending,remapped_rows.failure,clocks_throttle_reasons.active,persistence_mode,mig.mode.current,compute_mode
run dmesg-nvrm.txt sh -c 'dmesg 2>&1 | grep -iE "nvrm|xid|nvidia" | tail -200'

log "node-probe, every command"
for c in version inventory telemetry topology ecc processes health describe xid allocation workload facts; do
  run "np-$c.json" "$np" "$c"
done
run np-xid-7d.json "$np" xid --since 7d
run np-reset-dry.json "$np" reset --gpu 0 --dry-run
run np-evidence.json "$np" evidence --time-limit 90
if command -v dcgmi >/dev/null; then run np-dcgm.json "$np" dcgm-diag --gpus 0 --level 1; fi

log "a compute process of our own"
cat >"$work/hold.py" <<'PY'
import ctypes, sys, time
cuda = ctypes.CDLL("libcuda.so.1")
assert cuda.cuInit(0) == 0
dev = ctypes.c_int(); assert cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
ctx = ctypes.c_void_p(); assert cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
ptr = ctypes.c_uint64(); assert cuda.cuMemAlloc_v2(ctypes.byref(ptr), 1 << 30) == 0
print("holding", flush=True)
time.sleep(float(sys.argv[1]))
PY
holder=
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null; rm -rf "$work"' EXIT
if command -v python3 >/dev/null; then
  python3 "$work/hold.py" 200 >"$OUT/holder.out" 2>&1 &
  holder=$!
  for _ in $(seq 1 60); do
    grep -q holding "$OUT/holder.out" 2>/dev/null && break
    kill -0 "$holder" 2>/dev/null || { holder=; break; }
    sleep 0.5
  done
  log "holder pid=${holder:-none}: $(head -c 300 "$OUT/holder.out")"
fi
if [ -n "$holder" ]; then
  run smi-apps.csv nvidia-smi --format=csv --query-compute-apps=pid,gpu_uuid,used_memory,process_name
  run smi-held.csv nvidia-smi --format=csv --query-gpu=memory.used,power.draw,clocks.sm,temperature.gpu,clocks_event_reasons.active
  run np-telemetry-held.json "$np" telemetry
  run np-processes-held.json "$np" processes
  run np-kill-dry.json "$np" kill --pid "$holder" --dry-run
  run np-kill-refused.json "$np" kill --pid "$holder"
  run np-reset-held-dry.json "$np" reset --gpu 0 --dry-run
fi

log "under load: a bf16 matmul loop (torch, where the host has it), nvidia-smi and node-probe back to back"
cat >"$work/load.py" <<'PY'
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
print("loading", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    b = a @ a
    torch.cuda.synchronize()
PY
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  python3 "$work/load.py" 30 >"$OUT/load.out" 2>&1 &
  loader=$!
  for _ in $(seq 1 120); do grep -q loading "$OUT/load.out" 2>/dev/null && break; sleep 0.5; done
  sleep 3
  for i in 1 2 3; do
    run "smi-load-$i.csv" nvidia-smi --format=csv --query-gpu=utilization.gpu,power.draw,clocks.sm,clocks.mem,temperature.gpu,memory.used,clocks_event_reasons.active
    run "np-telemetry-load-$i.json" "$np" telemetry
    sleep 2
  done
  run smi-load-apps.csv nvidia-smi --format=csv --query-compute-apps=pid,used_memory,process_name
  run np-processes-load.json "$np" processes
  run tool-get_gpu_telemetry-load.txt "$launcher" call get_gpu_telemetry --local --arg node_name=local
  wait "$loader"
fi

log "the launcher's tools in local mode (text, then json)"
for t in get_gpu_inventory get_gpu_telemetry inspect_topology snapshot_ecc get_gpu_processes get_gpu_health \
  describe_gpu_node analyze_xid_errors get_pod_gpu_allocation; do
  run "tool-$t.txt" "$launcher" call "$t" --local --arg node_name=local
  run "tool-$t.json" "$launcher" call "$t" --local --arg node_name=local --output json
done
run tool-collect_evidence.txt "$launcher" call collect_evidence --local --arg node_name=local --arg time_limit_secs=60
run tool-run_gpu_diagnostic.txt "$launcher" call run_gpu_diagnostic --local --arg node_name=local
if [ -n "$holder" ]; then
  run tool-kill-dry.txt "$launcher" --mode operator call kill_gpu_process --local --arg node_name=local --arg pid="$holder" --arg dry_run=true
  run np-kill-override.json "$np" kill --pid "$holder" --override-unknown-holders --grace-seconds 3
  sleep 1
  log "holder after the kill: $(kill -0 "$holder" 2>&1 && echo alive || echo gone)"
  run smi-apps-after.csv nvidia-smi --format=csv --query-compute-apps=pid,gpu_uuid,used_memory,process_name
fi
run tool-reset-dry.txt "$launcher" --mode operator call reset_gpu --local --arg node_name=local --arg gpu=0 --arg dry_run=true
log "done"
rm -rf "$work"
