#!/usr/bin/env bash
# Launcher micro-benchmarks (local mode, simulated node, release build):
#   1. median time from process start to the `initialize` reply (target < 30 ms);
#   2. median wall time of one local-mode tool call over MCP, get_gpu_health (target < 30 ms);
#   3. idle RSS of `serve` after the handshake (target < 20 MB), and after the calls.
# Usage: bash tests/bench/launcher.sh   (env: BENCH_RUNS=30, BENCH_CALLS=50, BENCH_SCENARIO=dgx-h100-xid79,
#        BENCH_PROFILE=release|dev)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PROFILE=${BENCH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p k8s-gpu-mcp -p node-probe
  DIR=release
else
  cargo build -q -p k8s-gpu-mcp -p node-probe
  DIR=debug
fi
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
export LAUNCHER=$TARGET/$DIR/k8s-gpu-mcp PROBE=$TARGET/$DIR/node-probe
export RUNS=${BENCH_RUNS:-30} CALLS=${BENCH_CALLS:-50} SCENARIO=${BENCH_SCENARIO:-dgx-h100-xid79}

python3 - <<'PY'
import json, os, statistics, subprocess, time

L, P, SC = os.environ["LAUNCHER"], os.environ["PROBE"], os.environ["SCENARIO"]
RUNS, CALLS = int(os.environ["RUNS"]), int(os.environ["CALLS"])
ARGV = [L, "serve", "--local", "--simulate", SC, "--probe-bin", P]
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}

def start():
    return subprocess.Popen(ARGV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1, env={**os.environ, "RUST_LOG": "error"})

def send(p, msg):
    p.stdin.write(json.dumps(msg) + "\n"); p.stdin.flush()

def reply(p, rid):
    while True:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("server closed stdout")
        m = json.loads(line)
        if m.get("id") == rid:
            return m

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def ms(xs):
    return statistics.median(xs) * 1000

# 1. process start -> initialize reply (the request is written right after spawn, as hosts do).
startup = []
for _ in range(RUNS):
    t0 = time.perf_counter()
    p = start()
    send(p, INIT)
    reply(p, 1)
    startup.append(time.perf_counter() - t0)
    p.stdin.close(); p.wait()

# 2. + 3. one session: handshake, idle RSS, then timed tool calls.
p = start()
send(p, INIT); reply(p, 1)
send(p, {"jsonrpc": "2.0", "method": "notifications/initialized"})
time.sleep(1.0)
idle = rss_kib(p.pid)
calls = []
for i in range(CALLS):
    t0 = time.perf_counter()
    send(p, {"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
             "params": {"name": "get_gpu_health", "arguments": {"node_name": "local"}}})
    r = reply(p, 100 + i)
    calls.append(time.perf_counter() - t0)
    assert r["result"]["isError"] is False, r
time.sleep(0.5)
after = rss_kib(p.pid)
p.stdin.close(); p.wait()

def row(name, value, unit, target):
    ok = "ok" if value < target else "OVER"
    print(f"{name:<44} {value:>8.1f} {unit:<3} (target < {target} {unit}) {ok}")

print(f"k8s-gpu-mcp bench: scenario {SC}, {RUNS} starts, {CALLS} calls, binary {L}")
row("start -> initialize reply, median", ms(startup), "ms", 30)
row("local get_gpu_health call, median", ms(calls), "ms", 30)
print(f"{'local get_gpu_health call, p95':<44} {sorted(calls)[int(0.95 * (len(calls) - 1))] * 1000:>8.1f} ms")
row("idle RSS after handshake", idle / 1024, "MB", 20)
print(f"{'RSS after the calls':<44} {after / 1024:>8.1f} MB")
PY
