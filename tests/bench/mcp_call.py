#!/usr/bin/env python3
"""Minimal MCP stdio client for the benchmarks: starts `k8s-gpu-mcp serve ARGS...`, runs tool calls from a
JSON plan on argv[1], and prints one JSON object with each call's wall time, result and CPU time and the server's peak RSS.

plan: {"server": [argv...], "calls": [{"tool": "...", "arguments": {...}, "repeat": N, "pause_ms": MS}],
"timeout": S}
"""
import json
import os
import subprocess
import sys
import threading
import time


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ms(pid):
    """User + system CPU time of pid so far (ms)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main():
    plan = json.load(open(sys.argv[1]))
    proc = subprocess.Popen(plan["server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(plan.get("stderr", os.devnull), "w"), text=True, bufsize=1)
    peak = [0]
    done = threading.Event()

    def sample():
        # VmHWM is the process's own high-water mark; sampling just keeps the last value before exit.
        while not done.is_set():
            v = peak_rss_kib(proc.pid)
            if v:
                peak[0] = max(peak[0], v)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    next_id = [0]

    def request(method, params):
        next_id[0] += 1
        msg = {"jsonrpc": "2.0", "id": next_id[0], "method": method, "params": params}
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"server closed stdout during {method}")
            resp = json.loads(line)
            if resp.get("id") == next_id[0]:
                if "error" in resp:
                    raise SystemExit(f"{method}: {resp['error']}")
                return resp["result"]

    t0 = time.monotonic()
    request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "k8s-bench", "version": "0"}})
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    proc.stdin.flush()
    init_ms = (time.monotonic() - t0) * 1000
    results = []
    for call in plan["calls"]:
        for _ in range(call.get("repeat", 1)):
            # pause_ms: time between calls (e.g. to let an ephemeral container's reuse window pass)
            time.sleep(call.get("pause_ms", 0) / 1000)
            t = time.monotonic()
            # Wall-clock start and end, to match the API server's audit log to each call.
            start_unix = time.time()
            c0 = cpu_ms(proc.pid)
            r = request("tools/call", {"name": call["tool"], "arguments": call.get("arguments", {})})
            ms = (time.monotonic() - t) * 1000
            c1 = cpu_ms(proc.pid)
            results.append({"tool": call["tool"], "ms": ms, "is_error": bool(r.get("isError")),
                            "start_unix": start_unix, "end_unix": time.time(),
                            "cpu_ms": c1 - c0 if c0 is not None and c1 is not None else None,
                            "structured": r.get("structuredContent"),
                            "text": "\n".join(c.get("text", "") for c in r.get("content", []))[:2000]})
    peak[0] = max(peak[0], peak_rss_kib(proc.pid) or 0)
    done.set()
    proc.stdin.close()
    try:
        proc.wait(timeout=plan.get("timeout", 60))
    except subprocess.TimeoutExpired:
        proc.kill()
    json.dump({"init_ms": init_ms, "peak_rss_kib": peak[0], "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
