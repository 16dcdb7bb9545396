#!/usr/bin/env bash
# Benchmarks `node-probe xid --log-file` on generated kernel logs of growing size: wall time, peak RSS
# (GNU time) and the size of the JSON document, and checks the per-GPU/per-code counts are exact.
#   storm N:  a scenario's kernel log plus N Xid 13 + Xid 43 lines from an application that faults and
#             restarts every 10 ms on GPU 0 (N/2 of each code).
#   mixed N:  N lines, one corpus line (tests/kernel_log/corpus/*.log) for every three ordinary kernel lines.
# Targets (issue 14): 10x the events costs <= 15x the time; a 12,000-event storm well under a second;
# 1,000,000 mixed lines under 128 MiB peak RSS, linear.
# With LAUNCHER=path/to/k8s-gpu-mcp, also the storms through `analyze_xid_errors` (local mode, the
# storm in a scenario file): wall time and the sizes of the text and the structured result.
# Usage: bash tests/bench/xid.sh            (env BIN=path/to/node-probe to skip the build;
#                                            BENCH_SIZES="1200 12000 120000", BENCH_MIXED="100000 1000000")
set -euo pipefail
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p node-probe
    TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
    BIN=$TARGET/release/node-probe
fi
WORK=$(mktemp -d /tmp/xid-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SCENARIO=dgx-h100-xid79

python3 - "$WORK" "$BIN" "$SCENARIO" "${BENCH_SIZES:-1200 12000 120000}" "${BENCH_MIXED:-100000 1000000}" "${LAUNCHER:-}" <<'PY'
import glob, json, os, subprocess, sys, time
work, binary, scenario, sizes, mixed, launcher = sys.argv[1:]
facts = json.load(open(f"src/scenarios/{scenario}.json"))
base = facts["kernel_log"]["lines"]
gpu0 = facts["gpus"][0]["pci_bus_id"]            # 00000000:18:00.0
bus = gpu0.split(":", 1)[1][:-2].lower()          # 18:00 -> the Xid line's 0000:18:00 form
pci = "0000:" + bus
boot = facts["host"]["boot_time_unix"]
now = facts["host"]["now_unix"]

def storm(n):
    # kmsg records 10 ms apart, ending before `now`; an app (new pid each restart) faults on GPU 0.
    start_us = int((now - boot - 3600) * 1e6)
    out = []
    for i in range(n):
        us = start_us + i * 10_000
        pid = 50000 + i // 2
        if i % 2 == 0:
            msg = f"NVRM: Xid (PCI:{pci}): 13, pid={pid}, name=python3, Graphics SM Warp Exception on (GPC 1, TPC 2, SM 0): Out Of Range Address"
        else:
            msg = f"NVRM: Xid (PCI:{pci}): 43, pid={pid}, name=python3, Ch 00000008"
        out.append(f"4,{100000 + i},{us},-;{msg}")
    return out

def mixed_lines(n):
    corpus = []
    for p in sorted(glob.glob("tests/kernel_log/corpus/*.log")):
        corpus.extend(open(p, encoding="utf-8", errors="replace").read().splitlines())
    noise = [
        "[ 1234.567890] EXT4-fs (nvme0n1p2): re-mounted. Quota mode: none.",
        '6,99999,1234567890,-;audit: type=1400 audit(1732190000.123:456): apparmor="STATUS" operation="profile_load"',
        "Nov 21 09:00:00 gpu-node-5 kernel: [ 1234.567890] IPv6: ADDRCONF(NETDEV_CHANGE): enp12s0: link becomes ready",
    ]
    return [corpus[(i // 4) % len(corpus)] if i % 4 == 3 else noise[i % 3] for i in range(n)]

def run(name, lines, simulate):
    path = f"{work}/{name}.log"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    if simulate:
        argv = [binary, "--simulate", scenario, "xid", "--log-file", path]
    else:
        # No NVML on a build machine: point the search at nothing so the figures do not depend on it.
        argv = [binary, "--host-root", "/nonexistent", "xid", "--log-file", path]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the page cache
    # Peak RSS from GNU time (wait4's ru_maxrss of a child of python carries python's own size);
    # wall and CPU time (user + system, from wait4: on a shared machine it is the steadier figure)
    # as the median of 3 runs.
    rss_file = f"{work}/rss"
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    rss_kib = open(rss_file).read().split()[-1]
    walls, cpus = [], []
    for _ in range(3):
        with open(f"{work}/doc.json", "wb") as out:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            walls.append(time.perf_counter() - t0)
            cpus.append(ru.ru_utime + ru.ru_stime)
    wall, cpu = sorted(walls)[1], sorted(cpus)[1]
    doc_bytes = os.path.getsize(f"{work}/doc.json")
    doc = json.load(open(f"{work}/doc.json"))
    assert "error" not in doc, doc.get("error")
    return wall, int(rss_kib) / 1024, cpu, doc_bytes, doc

print(f"node-probe xid --log-file ({binary}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
print(f"{'input':<28}{'lines':>10}{'events':>9}{'wall s':>9}{'cpu s':>8}{'peak RSS MiB':>14}{'doc KiB':>10}")
prev = None
for n in [int(x) for x in sizes.split()]:
    lines = base + storm(n)
    wall, rss, cpu, size, doc = run(f"storm{n}", lines, True)
    r = doc["xid"]
    g0 = [g for g in r["gpus"] if g["pci_bus_id"] == pci + ".0"][0]
    counts = {c["code"]: c["count"] for c in g0["xids"]}
    assert counts.get(13) == n // 2 + n % 2 and counts.get(43) == n // 2, (counts, n)
    events = len(r["events"]) + r["log"].get("events_not_listed", 0)
    ratio = f"  x{cpu / prev:.1f} cpu for x10" if prev else ""
    print(f"{'storm ' + str(n) + ' (Xid 13+43)':<28}{len(lines):>10}{events:>9}{wall:>9.3f}{cpu:>8.3f}{rss:>14.1f}{size / 1024:>10.0f}   GPU 0: Xid 13 x{counts[13]}, Xid 43 x{counts[43]}{ratio}")
    prev = cpu
if launcher:
    print(f"analyze_xid_errors through {launcher} call --local (scenario {scenario} + storm):")
    for n in [int(x) for x in sizes.split()]:
        f = dict(facts)
        f["kernel_log"] = dict(facts["kernel_log"], lines=base + storm(n))
        path = f"{work}/storm{n}.json"
        json.dump(f, open(path, "w"))
        argv = [launcher, "call", "--local", "--simulate", path, "--probe-bin", binary,
                "analyze_xid_errors", "--arg", "node_name=local"]
        sizes_out = {}
        walls = []
        for fmt in ["text", "json", "text", "json"]:
            t0 = time.perf_counter()
            p = subprocess.run(argv + ["--output", fmt], capture_output=True, check=True)
            walls.append(time.perf_counter() - t0)
            sizes_out[fmt] = len(p.stdout)
        print(f"  storm {n:>7}: wall {sorted(walls)[1]:.3f} s (median of 4), text {sizes_out['text'] / 1024:.0f} KiB, structured {sizes_out['json'] / 1024:.0f} KiB")
prev = None
for n in [int(x) for x in mixed.split()]:
    lines = mixed_lines(n)
    wall, rss, cpu, size, doc = run(f"mixed{n}", lines, False)
    r = doc["xid"]
    events = len(r["events"]) + r["log"].get("events_not_listed", 0)
    ratio = f"  x{cpu / prev:.1f} cpu for x10" if prev else ""
    print(f"{'mixed corpus':<28}{n:>10}{events:>9}{wall:>9.3f}{cpu:>8.3f}{rss:>14.1f}{size / 1024:>10.0f}{ratio}")
    prev = cpu
PY
