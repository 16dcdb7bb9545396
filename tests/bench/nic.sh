#!/usr/bin/env bash
# Benchmarks what the RDMA NIC collection costs node-probe: `topology` on the fake NVML (4 GPUs) against
# a fake host root without NICs and one with N InfiniBand devices (default 8, like a DGX H100's compute
# rails, each with the kernel's ~20 counters and 8 hw_counters), with --nic-interval-ms 0 (the reads alone),
# plus one run at the default interval (the deliberate wait between the two counter samples).
# Needs a C compiler (for tests/fake-nvml). Usage: bash tests/bench/nic.sh [RUNS] [NICS]   (default 30, 8)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUNS=${1:-30}
NICS=${2:-8}

# NODE_PROBE_BIN=path skips the release build (figures from a debug build are not comparable).
if [ -n "${NODE_PROBE_BIN:-}" ]; then
  BIN=$NODE_PROBE_BIN
else
  cargo build --release -q -p node-probe
  TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
  BIN=$TARGET/release/node-probe
fi
WORK=$(mktemp -d /tmp/node-probe-nic-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"${CC:-cc}" -shared -fPIC -o "$WORK/libnvidia-ml.so.1" tests/fake-nvml/fake_nvml.c

python3 - "$WORK" "$RUNS" "$NICS" "$BIN" <<'PY'
import os, statistics, subprocess, sys, time, json
work, runs, nics, binary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)

def base(root):
    write(root, "etc/hostname", "bench-node\n")
    write(root, "proc/stat", "cpu  1 2 3 4\nbtime 1763700000\n")
    write(root, "proc/uptime", "3600.50 7000.00\n")

COUNTERS = ["symbol_error", "link_error_recovery", "link_downed", "port_rcv_errors",
            "port_rcv_remote_physical_errors", "port_rcv_switch_relay_errors", "local_link_integrity_errors",
            "excessive_buffer_overrun_errors", "port_xmit_discards", "port_xmit_constraint_errors",
            "port_rcv_constraint_errors", "VL15_dropped", "port_xmit_data", "port_rcv_data",
            "port_xmit_packets", "port_rcv_packets", "port_xmit_wait", "unicast_xmit_packets",
            "unicast_rcv_packets", "multicast_xmit_packets", "multicast_rcv_packets"]
HW = ["out_of_buffer", "out_of_sequence", "duplicate_request", "rnr_nak_retry_err", "packet_seq_err",
      "implied_nak_seq_err", "local_ack_timeout_err", "lifespan"]

plain = os.path.join(work, "plain"); base(plain)
withnics = os.path.join(work, "nics"); base(withnics)
for i in range(nics):
    path = f"pci0000:{i:02x}/0000:{i:02x}:01.0/0000:{i + 0x40:02x}:00.0"
    dev = f"sys/devices/{path}/infiniband/mlx5_{i}"
    write(withnics, f"sys/devices/{path}/numa_node", f"{i * 2 // max(nics, 1)}\n")
    for f, v in [("hca_type", "MT4129"), ("board_id", "MT_0000000838"), ("fw_ver", "28.39.1002")]:
        write(withnics, f"{dev}/{f}", v + "\n")
    port = f"{dev}/ports/1"
    for f, v in [("state", "4: ACTIVE"), ("phys_state", "5: LinkUp"), ("rate", "400 Gb/sec (4X NDR)"),
                 ("link_layer", "InfiniBand")]:
        write(withnics, f"{port}/{f}", v + "\n")
    for c in COUNTERS:
        busy = c.endswith(("_data", "_packets", "_wait"))
        write(withnics, f"{port}/counters/{c}", "123456789\n" if busy else "0\n")
    for c in HW:
        write(withnics, f"{port}/hw_counters/{c}", "0\n")
    os.makedirs(os.path.join(withnics, "sys/class/infiniband"), exist_ok=True)
    os.symlink(f"../../devices/{path}/infiniband/mlx5_{i}", os.path.join(withnics, f"sys/class/infiniband/mlx5_{i}"))
    os.symlink("../..", os.path.join(withnics, dev, "device"))

lib = os.path.join(work, "libnvidia-ml.so.1")
devnull = open(os.devnull, "wb")

def measure(root, interval):
    argv = [binary, "--nvml-lib", lib, "--host-root", root, "--nic-interval-ms", str(interval), "topology"]
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    doc = json.loads(out)
    assert "error" not in doc, doc
    wall, cpu = [], []
    n = runs if interval == 0 else 3
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=devnull)
        _, status, ru = os.wait4(p.pid, 0)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
        assert os.waitstatus_to_exitcode(status) == 0
    return statistics.median(wall), statistics.median(cpu), doc["topology"]["nics"]["summary"]

print(f"node-probe topology on the fake NVML, {runs} runs each, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
for label, root, interval in [("no RDMA device", plain, 0), (f"{nics} InfiniBand ports", withnics, 0),
                              (f"{nics} InfiniBand ports", withnics, 1000)]:
    w, c, summary = measure(root, interval)
    print(f"  {label:<22} --nic-interval-ms {interval:<5} wall median {w:8.2f} ms   CPU median {c:6.2f} ms   ({summary})")
PY
