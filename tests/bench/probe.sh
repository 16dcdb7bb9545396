#!/usr/bin/env bash
# Benchmarks node-probe on the embedded default node: median (and p95) wall time and peak RSS of
# `node-probe describe --simulate dgx-h100-healthy` over N runs (plus its CPU time), and the size of the
# stripped release binary.
# Targets: < 10 ms, < 10 MB RSS, < 8 MB binary.
# Usage: bash tests/bench/probe.sh [RUNS]   (default 50; env BENCH_SCENARIO, BENCH_COMMAND)
set -euo pipefail
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUNS=${1:-50}
SCENARIO=${BENCH_SCENARIO:-dgx-h100-healthy}
COMMAND=${BENCH_COMMAND:-describe}

cargo build --release -q -p node-probe
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET/release/node-probe
WORK=$(mktemp -d /tmp/node-probe-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The document must be a success before anything is timed.
"$BIN" "$COMMAND" --simulate "$SCENARIO" >"$WORK/doc.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "error" not in d, d' "$WORK/doc.json"

cp "$BIN" "$WORK/node-probe.stripped"
strip "$WORK/node-probe.stripped"
# Each run is timed by the driver below: wall time around spawn..exit and the child's CPU time from wait4's
# rusage (on a loaded machine wall time includes waiting for a CPU, CPU time does not, so both are printed
# with the load average). Peak RSS comes from GNU time in separate runs: Linux carries the parent's
# high-water mark across exec, so wait4's ru_maxrss of a child of python reports python's size.
python3 - "$WORK" "$RUNS" "$COMMAND" "$SCENARIO" "$BIN" <<'PY'
import os, statistics, subprocess, sys, time
work, runs, command, scenario, binary = sys.argv[1:]
runs = int(runs)
argv = [binary, command, "--simulate", scenario]
devnull = open(os.devnull, "wb")
subprocess.run(argv, stdout=devnull, check=True)  # warm the page cache
wall, cpu, rss = [], [], []
for _ in range(runs):
    out = f"{work}/rss"
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, stdout=devnull, check=True)
    rss.append(int(open(out).read().split()[-1]) / 1024)
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=devnull)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, f"exit {p.returncode}"
    wall.append((t1 - t0) * 1000)
    cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
wall.sort(); cpu.sort(); rss.sort()
p95 = lambda xs: xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
size = os.path.getsize(f"{work}/node-probe.stripped")
doc = os.path.getsize(f"{work}/doc.json")
load = os.getloadavg()[0]
print(f"node-probe {command} --simulate {scenario}: {runs} runs, document {doc / 1024:.0f} KiB, load average {load:.1f} on {os.cpu_count()} CPUs")
print(f"  wall time  median {statistics.median(wall):.2f} ms   p95 {p95(wall):.2f} ms   (target < 10 ms)")
print(f"  CPU time   median {statistics.median(cpu):.2f} ms   p95 {p95(cpu):.2f} ms   (user + system)")
print(f"  peak RSS   median {statistics.median(rss):.2f} MiB  max {rss[-1]:.2f} MiB   (target < 10 MB)")
print(f"  binary     {size / 1e6:.2f} MB stripped ({os.path.getsize(binary) / 1e6:.2f} MB as built)   (target < 8 MB)")
PY
