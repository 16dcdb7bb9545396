#!/usr/bin/env bash
# `node-probe watch` on a real NVIDIA GPU host (the lent device machine): the probe's CPU time and peak memory
# per GPU at each sampling rate, and its readings beside `nvidia-smi dmon` over the same window while a load of
# our own (cuMemsetD32 on GPU 0 through the CUDA driver API, ctypes) runs in the window's middle.
# Usage (on the device): OUT=/some/dir NP=path/to/node-probe bash tests/device/watch.sh (RATES="" skips the
# quiet windows)
set -uo pipefail
OUT=${OUT:?OUT names the folder for the results}
NP=${NP:-target/device/watch/node-probe}
SECONDS=0
log() { printf '[%4ss] %s\n' "$SECONDS" "$*" | tee -a "$OUT/steps.log" >&2; }
nvidia-smi -L >"$OUT/gpus.txt" 2>&1
gpus=$(grep -c '^GPU ' "$OUT/gpus.txt")
log "GPUs: $gpus; driver $(cat /proc/driver/nvidia/version | head -1)"
# CPU and memory per rate: a quiet window each.
for ms in ${RATES-1000 250 100}; do
  /usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB peak' -o "$OUT/time-$ms.txt" \
    "$NP" watch --seconds 15 --interval-ms "$ms" >"$OUT/watch-$ms.json" 2>"$OUT/watch-$ms.err"
  log "watch 15 s at $ms ms: rc=$? $(cat "$OUT/time-$ms.txt")"
done
# A load in the window's middle, nvidia-smi's view of the same seconds beside it.
cat >"$OUT/load.py" <<'PY'
import ctypes, time, sys
cuda = ctypes.CDLL("libcuda.so.1")
# Sizes and device pointers are 64-bit: ctypes would pass a plain int as 32 bits.
cuda.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
cuda.cuMemsetD32_v2.argtypes = [ctypes.c_uint64, ctypes.c_uint, ctypes.c_size_t]
assert cuda.cuInit(0) == 0
dev = ctypes.c_int(); assert cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
ctx = ctypes.c_void_p(); assert cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
n = 1 << 30  # 4 GiB of 32-bit words
ptr = ctypes.c_uint64(); assert cuda.cuMemAlloc_v2(ctypes.byref(ptr), n * 4) == 0
time.sleep(float(sys.argv[1]))
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    cuda.cuMemsetD32_v2(ptr, i & 0xffff, n)
    i += 1
    if i % 8 == 0:
        cuda.cuCtxSynchronize()
cuda.cuCtxSynchronize()
print("memsets", i)
PY
nvidia-smi dmon -s pucm -d 1 -c 26 >"$OUT/dmon.txt" 2>&1 &
dmon=$!
python3 "$OUT/load.py" 8 10 >"$OUT/load.out" 2>&1 &
load=$!
/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB peak' -o "$OUT/time-load.txt" \
  "$NP" watch --seconds 25 --interval-ms 500 >"$OUT/watch-load.json" 2>"$OUT/watch-load.err"
log "watch 25 s at 500 ms with a load from 8 to 18 s: rc=$? $(cat "$OUT/time-load.txt")"
wait "$load"; wait "$dmon"
log "load: $(cat "$OUT/load.out" | tail -1)"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d = json.load(open(f"{out}/watch-load.json"))
w = d.get("watch", {})
with open(f"{out}/summary.txt", "w") as f:
    print("verdict:", w.get("verdict"), "|", w.get("headline"), file=f)
    print("pattern:", w.get("pattern", {}).get("kind"), file=f)
    for e in w.get("episodes", []):
        print("episode:", e["severity"], e["text"], file=f)
    for g in w.get("gpus", []):
        print(f"GPU {g['index']}: {g['line']}", file=f)
        print("   util buckets:", g["timeline"]["util_pct"], file=f)
        print("   power buckets:", g["timeline"]["power_w"], file=f)
    print("samples:", w.get("window"), file=f)
PY
cat "$OUT/summary.txt" >&2
log "done"
