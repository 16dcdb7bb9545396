#!/usr/bin/env python3
"""Generates the built-in simulated nodes (src/scenarios/*.json).

Each scenario is a serialized `gpu_diag::facts::NodeFacts`: raw facts only, exactly what NVML, sysfs, /proc
and the kernel log would return on that node, never a verdict. The JSON files are what the library embeds
(include_str!); this script only keeps eight-GPU nodes consistent (PCI ids, NVLink remotes, topology pairs,
kernel-log PCI addresses). Edit here, run `python3 tests/support/generate_scenarios.py`, review the snapshot
diff. A development tool: it lives out of the library (and its package), and writes into src/scenarios.

Values follow real hardware: PCI layouts of DGX H100 / DGX A100, NVML thresholds, clocks and power limits
of each SKU, driver kernel-log formats from NVIDIA/open-gpu-kernel-modules (the Xid print format of its resman sources).
"""

import hashlib
import json
import os
import re
import sys

# Where the library embeds the scenarios from.
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "scenarios")
NOW = 1795600000.0  # fixed collection time (2026-11-24T..Z) so every report is deterministic
MIB = 1024 * 1024
NS = 1


def err(kind, message=None):
    e = {"error": kind}
    if message:
        e["message"] = message
    return e


NS_ = err("not_supported")
LOST = err("gpu_is_lost")


def uid(seed, prefix="GPU"):
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{prefix}-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def nvml_bus(bdf):
    # NVML prints an 8-digit domain and upper-case hex: 00000000:9A:00.0
    dom, bus, rest = bdf.split(":")
    return f"{int(dom, 16):08X}:{bus.upper()}:{rest.upper()}"


def cpu_ranges(*ranges):
    out = []
    for a, b in ranges:
        out.extend(range(a, b + 1))
    return out


# ---------------------------------------------------------------------------------------------- SKUs

SKU = {
    "h100-sxm": dict(
        name="NVIDIA H100 80GB HBM3", arch="Hopper", cc=[9, 0], devid=0x233010DE, part="692-2G520-0200-000",
        vbios="96.00.89.00.01", mem_mib=81559, power_w=700, sm_max=1980, mem_max=2619,
        pcie_gen=5, thr=dict(shutdown=92, slowdown=89, gpu_max=87, mem_max=95), fan=False,
        remap_banks=2560, retired=False, nvlink_version=4,
    ),
    "h100-pcie": dict(
        name="NVIDIA H100 PCIe", arch="Hopper", cc=[9, 0], devid=0x233110DE, part="900-21010-0000-000",
        vbios="96.00.74.00.0B", mem_mib=81559, power_w=350, sm_max=1755, mem_max=1593,
        pcie_gen=5, thr=dict(shutdown=92, slowdown=89, gpu_max=87, mem_max=95), fan=False,
        remap_banks=2560, retired=False, nvlink_version=None,
    ),
    "a100-sxm": dict(
        name="NVIDIA A100-SXM4-80GB", arch="Ampere", cc=[8, 0], devid=0x20B210DE, part="692-2G506-0210-002",
        vbios="92.00.36.00.02", mem_mib=81920, power_w=400, sm_max=1410, mem_max=1593,
        pcie_gen=4, thr=dict(shutdown=92, slowdown=89, gpu_max=85, mem_max=95), fan=False,
        remap_banks=640, retired=False, nvlink_version=3,
    ),
    "a100-pcie": dict(
        name="NVIDIA A100 80GB PCIe", arch="Ampere", cc=[8, 0], devid=0x20B510DE, part="900-21001-0020-100",
        vbios="92.00.90.00.04", mem_mib=81920, power_w=300, sm_max=1410, mem_max=1512,
        pcie_gen=4, thr=dict(shutdown=92, slowdown=89, gpu_max=85, mem_max=95), fan=False,
        remap_banks=640, retired=False, nvlink_version=None,
    ),
    "l40s": dict(
        name="NVIDIA L40S", arch="Ada", cc=[8, 9], devid=0x26B910DE, part="900-2G133-0080-000",
        vbios="95.02.66.00.02", mem_mib=46068, power_w=350, sm_max=2520, mem_max=9001,
        pcie_gen=4, thr=dict(shutdown=98, slowdown=95, gpu_max=90, mem_max=None), fan=False,
        remap_banks=None, retired=False, nvlink_version=None,
    ),
    # GB200 (Blackwell on a Grace superchip, NVL72 compute tray): NVML's product name "NVIDIA GB200"; about 186 GB
    # of HBM3e per GPU (NVIDIA's GB200 NVL72 datasheet: 13.4 TB for 72 GPUs), up to 1200 W, 18 NVLink5 links
    # per GPU to the rack's switch trays.
    "gb200": dict(
        name="NVIDIA GB200", arch="Blackwell", cc=[10, 0], devid=0x294110DE, part="699-2G548-0200-000",
        vbios="97.00.82.00.10", mem_mib=189471, power_w=1200, sm_max=2062, mem_max=3996,
        pcie_gen=5, thr=dict(shutdown=95, slowdown=92, gpu_max=90, mem_max=95), fan=False,
        remap_banks=2560, retired=False, nvlink_version=5,
    ),
    "t4": dict(
        name="Tesla T4", arch="Turing", cc=[7, 5], devid=0x1EB810DE, part="900-2G183-0000-001",
        vbios="90.04.96.00.02", mem_mib=15360, power_w=70, sm_max=1590, mem_max=5001,
        pcie_gen=3, thr=dict(shutdown=96, slowdown=93, gpu_max=85, mem_max=None), fan=False,
        remap_banks=None, retired=True, nvlink_version=None,
    ),
}


def gpu(scn, index, sku, bdf, serial, *, temp=38, mem_temp=None, util=0, mem_util=0, used_mib=None,
        power_w=None, sm=None, reasons=0x1, pstate=0, persistence=True, numa=0, affinity=(),
        nvlinks=(), fabric=None, processes=(), recovery_action=0, durations=None):
    s = SKU[sku]
    total = s["mem_mib"] * MIB
    # The driver reserves some memory even when idle.
    used = (used_mib if used_mib is not None else 531) * MIB
    thr = s["thr"]
    if power_w is None:
        power_w = 69 if util == 0 else int(s["power_w"] * 0.8)
    if sm is None:
        sm = 345 if util == 0 else s["sm_max"]
    g = {
        "index": index,
        "name": s["name"],
        "uuid": uid(f"{scn}/{index}"),
        "serial": serial,
        "board_part_number": s["part"],
        "pci_bus_id": nvml_bus(bdf),
        "pci_device_id": s["devid"],
        "vbios_version": s["vbios"],
        "architecture": s["arch"],
        "cuda_compute_capability": s["cc"],
        "memory": {"total_bytes": total, "used_bytes": used, "free_bytes": total - used},
        "mig_mode": {"current": False, "pending": False} if sku.startswith(("a100", "h100", "gb200")) else NS_,
        "persistence_mode": persistence,
        "compute_mode": "default",
        "pcie": {
            "max_link_gen": s["pcie_gen"],
            "gpu_max_link_gen": s["pcie_gen"],
            "max_link_width": 16,
            "current_link_gen": s["pcie_gen"] if util > 0 else 1,
            "current_link_width": 16,
            "replay_counter": 0,
            "aer": {"correctable": 0, "nonfatal": 0, "fatal": 0},
        },
        "nvlinks": list(nvlinks),
        "thermal": {
            "gpu_temp_c": temp,
            "memory_temp_c": mem_temp if mem_temp is not None else (temp + 4 if thr["mem_max"] else NS_),
            "shutdown_threshold_c": thr["shutdown"],
            "slowdown_threshold_c": thr["slowdown"],
            "gpu_max_threshold_c": thr["gpu_max"],
            "memory_max_threshold_c": thr["mem_max"] if thr["mem_max"] else NS_,
        },
        "fan_speed_pct": NS_,
        "power": {
            "usage_mw": power_w * 1000,
            "enforced_limit_mw": s["power_w"] * 1000,
            "default_limit_mw": s["power_w"] * 1000,
            "max_limit_mw": s["power_w"] * 1000,
        },
        "utilization": {"gpu_pct": util, "memory_pct": mem_util},
        "clocks": {
            "sm_mhz": sm,
            "sm_max_mhz": s["sm_max"],
            "graphics_mhz": sm,
            "graphics_max_mhz": s["sm_max"],
            "memory_mhz": s["mem_max"] if util > 0 or sku != "t4" else 405,
            "memory_max_mhz": s["mem_max"],
        },
        "performance_state": pstate,
        "clocks_event_reasons": reasons,
        "clocks_event_durations_ns": durations or {
            "sw_power_cap": 0, "sw_thermal_slowdown": 0, "hw_thermal_slowdown": 0,
            "hw_power_brake_slowdown": 0, "sync_boost": 0,
        },
        "ecc": {
            "mode": {"current": True, "pending": True},
            "volatile_corrected": 0,
            "volatile_uncorrected": 0,
            "aggregate_corrected": 0,
            "aggregate_uncorrected": 0,
            "by_location": [
                loc("dram"), loc("sram"),
            ] if sku != "t4" else [loc("l1"), loc("l2"), loc("dram"), loc("register_file")],
            "retired_pages": {"single_bit": 0, "double_bit": 0, "pending": False} if s["retired"] else NS_,
            "remapped_rows": {"correctable": 0, "uncorrectable": 0, "pending": False, "failure": False}
            if s["remap_banks"] or sku == "l40s" else NS_,
            "row_remapper_histogram": {"max": s["remap_banks"], "high": 0, "partial": 0, "low": 0, "none": 0}
            if s["remap_banks"] else NS_,
            "sram_threshold_exceeded": False if sku.startswith(("a100", "h100", "gb200")) else NS_,
        },
        "recovery_action": recovery_action,
        "fabric": fabric if fabric is not None else NS_,
        "processes": list(processes),
        "numa_node": numa,
        "cpu_affinity": list(affinity),
    }
    if s["fan"]:
        g["fan_speed_pct"] = [30]
    return g


def loc(name, vc=0, vu=0, ac=0, au=0):
    return {"location": name, "volatile_corrected": vc, "volatile_uncorrected": vu,
            "aggregate_corrected": ac, "aggregate_uncorrected": au}


def link(n, remote, rtype="switch", active=True, version=4, replay=0, recovery=0, crc_flit=0, crc_data=0):
    return {
        "link": n, "active": active, "version": version, "remote_pci_bus_id": nvml_bus(remote),
        "remote_device_type": rtype, "replay_errors": replay, "recovery_errors": recovery,
        "crc_flit_errors": crc_flit, "crc_data_errors": crc_data,
    }


def proc(pid, used_mib, kind="compute", gi=None, ci=None):
    p = {"pid": pid, "kind": kind, "used_memory_bytes": used_mib * MIB if used_mib is not None else None}
    if gi is not None:
        p["gpu_instance_id"] = gi
        p["compute_instance_id"] = ci
    return p


def host_proc(pid, name, cmdline, pod_uid, container, state="S", age=15432, qos="burstable"):
    slice_uid = pod_uid.replace("-", "_")
    cgroup = (f"0::/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{slice_uid}.slice/"
              f"cri-containerd-{container}.scope") if pod_uid else "0::/system.slice/ssh.service"
    return {"pid": pid, "name": name, "cmdline": cmdline, "cgroup": cgroup, "state": state, "age_seconds": age}


def container_id(seed):
    return hashlib.sha256(seed.encode()).hexdigest()


def pod_resources(pods, allocatable):
    """The kubelet's PodResources answers: pods = [(namespace, name, [(container, resource, [device ids])])]."""
    return {
        "socket": "var/lib/kubelet/pod-resources/kubelet.sock",
        "pods": [{"name": name, "namespace": ns,
                  "containers": [{"name": c, "devices": [{"resource_name": r, "device_ids": ids}]}
                                 for c, r, ids in containers]}
                 for ns, name, containers in pods],
        "allocatable": [{"resource_name": r, "device_ids": ids} for r, ids in allocatable],
    }


def kubelet_logs(pods):
    """The kubelet's log layout: pods = [(namespace, name, uid, [(container, container id, started ago s)])]."""
    return {
        "pods": [{"name": f"{ns}_{name}_{uid}",
                  "containers": [{"name": c, "modified_unix": NOW - ago} for c, _, ago in containers]}
                 for ns, name, uid, containers in pods],
        "containers": sorted(f"{name}_{ns}_{c}-{cid}.log"
                             for ns, name, _, containers in pods for c, cid, _ in containers),
    }


def pairs(n, ancestor, p2p, skip=()):
    out = []
    for a in range(n):
        for b in range(a + 1, n):
            if a in skip or b in skip:
                out.append({"a": a, "b": b, "common_ancestor": LOST, "p2p": {}})
                continue
            out.append({"a": a, "b": b, "common_ancestor": ancestor(a, b), "p2p": p2p(a, b)})
    return out


def host(name, uptime_s, cpus, kernel="5.15.0-1063-nvidia"):
    return {
        "hostname": name,
        "boot_id": uid(name + "/boot", "x")[2:],
        "kernel_release": kernel,
        "boot_time_unix": NOW - uptime_s,
        "now_unix": NOW,
        "cpu_count": cpus,
    }


def driver(version, cuda):
    return {"driver_version": version, "cuda_driver_version": cuda, "nvml_version": f"12.{version}"}


def kmsg(records, first_seq=1800):
    """Raw /dev/kmsg records `pri,seq,usec,flags;text` from (seconds_since_boot, level, text)."""
    out = []
    for i, (t, lvl, text) in enumerate(records):
        out.append(f"{lvl},{first_seq + i},{int(round(t * 1e6))},-;{text}")
    return {"origin": "kmsg", "lines": out, "truncated": False}


def dmesg(records):
    """`dmesg` lines `[seconds.micros] text` from (seconds_since_boot, level, text)."""
    return {"origin": "simulated", "lines": [f"[{t:12.6f}] {text}" for t, _lvl, text in records],
            "truncated": False}


def boot_lines(version, build):
    return [
        (4.802113, 4, "nvidia: loading out-of-tree module taints kernel."),
        (4.802190, 4, "nvidia: module license 'NVIDIA' taints kernel."),
        (4.911275, 6, "nvidia-nvlink: Nvlink Core is being initialized, major device number 510"),
        (5.120034, 5, f"NVRM: loading NVIDIA UNIX x86_64 Kernel Module  {version}  {build}"),
        (5.388410, 6, f"nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver for UNIX platforms  {version}  {build}"),
        (5.402871, 6, "[drm] [nvidia-drm] [GPU ID 0x00001800] Loading driver"),
        (5.930118, 6, "nvidia_uvm: module uses symbols nvUvmInterfaceDisableAccessCntr from proprietary module nvidia, inheriting taint."),
    ]


DISTRACTORS = [
    (12.301988, 6, "IPv6: ADDRCONF(NETDEV_CHANGE): eno1: link becomes ready"),
    (31.550120, 6, "bond0: (slave ens1f0np0): Enslaving as a backup interface with an up link"),
    (1822.019377, 6, "cali8d3f2a1b7c4: renamed from veth4c1d2e3f"),
    (1822.141090, 6, "IPv6: ADDRCONF(NETDEV_CHANGE): cali8d3f2a1b7c4: link becomes ready"),
    (3605.771204, 4, "workqueue: drm_fb_helper_damage_work hogged CPU for >10000us 4 times, consider switching to WQ_UNBOUND"),
]


def services(fm=True, persistenced=True, fm_running=True):
    out = []
    if fm:
        out.append({"name": "nvidia-fabricmanager", "running": fm_running})
    out.append({"name": "nvidia-persistenced", "running": persistenced})
    return out


# ------------------------------------------------------------------------------------ DGX H100 base

H100_BUS = ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
            "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"]
H100_SWITCHES = ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0"]
# 18 NVLink4 links per GPU to the four NVSwitch chips: 5 + 4 + 4 + 5.
H100_LINK_SWITCH = [0] * 5 + [1] * 4 + [2] * 4 + [3] * 5
H100_FABRIC_HEALTHY = 2 | (2 << 2) | (2 << 4) | (2 << 6) | (1 << 8)  # every health field "false"/"none"
H100_AFFINITY = [cpu_ranges((0, 55), (112, 167)), cpu_ranges((56, 111), (168, 223))]


def h100_links(link_overrides=None):
    out = []
    for n in range(18):
        kw = (link_overrides or {}).get(n, {})
        out.append(link(n, H100_SWITCHES[H100_LINK_SWITCH[n]], **kw))
    return out


def h100_fabric(health=H100_FABRIC_HEALTHY):
    # A single-node NVSwitch system is in no multi-node NVLink domain: the nil cluster UUID, which go-nvlib's
    # IsFabricAttached (what GFD's nvidia.com/gpu.clique label rests on) reads as no domain.
    return {"state": 3, "status": 0, "clique_id": 0,
            "cluster_uuid": "00000000-0000-0000-0000-000000000000", "health_mask": health}


def dgx_h100(scn, hostname, *, loads, overrides=None, kernel_log=None, uptime=3 * 86400 + 7211,
             lost=(), device_count=8):
    gpus, hprocs = [], []
    serial0 = 1654922001230
    for i, bdf in enumerate(H100_BUS):
        temp, util, power, reasons, sm = loads[i]
        pid = 40110 + i * 7
        used = 71234 if util > 0 else 531
        pod = "3f7c9a2e-1b2d-4c5e-9f0a-2b3c4d5e6f70"
        procs = [proc(pid, used - 531)] if util > 0 else []
        if procs:
            hprocs.append(host_proc(pid, "python3",
                                    f"/usr/bin/python3 -u /workspace/train.py --config llama3-70b.yaml --local-rank {i}",
                                    pod, container_id(f"{scn}/trainer"), age=uptime - 3600))
        g = gpu(scn, i, "h100-sxm", bdf, str(serial0 + i), temp=temp, util=util, mem_util=min(util, 60),
                used_mib=used, power_w=power, sm=sm, reasons=reasons, numa=0 if i < 4 else 1,
                affinity=H100_AFFINITY[0 if i < 4 else 1], nvlinks=h100_links(), fabric=h100_fabric(),
                processes=procs,
                durations={"sw_power_cap": 41_203_000_000 if reasons & 0x4 else 0, "sw_thermal_slowdown": 0,
                           "hw_thermal_slowdown": 0, "hw_power_brake_slowdown": 0, "sync_boost": 0})
        g["pcie"]["current_link_gen"] = 5
        for key, fn in (overrides or {}).get(i, {}).items():
            fn(g)
        gpus.append(g)
    numa = lambda a, b: 40 if (a < 4) == (b < 4) else 50  # noqa: E731
    p2p = lambda a, b: {"read": 0, "write": 0, "nvlink": 0, "atomics": 0}  # noqa: E731
    return {
        "host": host(hostname, uptime, 224),
        "driver": driver("570.133.20", 12080),
        "device_count": device_count,
        "gpus": gpus,
        "topology": pairs(8, numa, p2p, skip=lost),
        "kernel_log": kernel_log,
        "host_processes": hprocs,
        "services": services(),
    }


# ------------------------------------------------------------------------------- RDMA NICs (sysfs)

# IBA PortCounters as the kernel shows them under ports/<n>/counters, and a few mlx5 hw_counters.
IB_ERROR_COUNTERS = ["symbol_error", "link_error_recovery", "link_downed", "port_rcv_errors",
                     "port_rcv_remote_physical_errors", "port_rcv_switch_relay_errors",
                     "local_link_integrity_errors", "excessive_buffer_overrun_errors", "port_xmit_discards",
                     "port_xmit_constraint_errors", "port_rcv_constraint_errors", "VL15_dropped"]
RESAMPLED = ["symbol_error", "link_error_recovery", "link_downed", "port_rcv_errors",
             "port_rcv_remote_physical_errors", "local_link_integrity_errors", "excessive_buffer_overrun_errors",
             "port_xmit_discards", "port_xmit_wait", "port_xmit_data"]
IB_STATES = {"up": ("4: ACTIVE", "5: LinkUp"), "down": ("1: DOWN", "2: Polling"),
             "init": ("2: INIT", "5: LinkUp")}
# What a port under a training load sends in one second: 4-byte words (port_xmit_data) and the credit
# waits (port_xmit_wait ticks) that come with a healthy, lightly congested fabric.
WORDS_PER_S = 3_100_000_000
WAITS_PER_S = 41_000_000


def ib_port(seed, *, state="up", rate="400 Gb/sec (4X NDR)", layer="InfiniBand", errors=None, rising=None,
            interval_s=1.0, busy=True):
    """One port's sysfs facts: `errors` are lifetime totals, `rising` what each rose by during the window."""
    h = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    st, phys = IB_STATES[state]
    c = {name: 0 for name in IB_ERROR_COUNTERS}
    c.update(errors or {})
    words = 412_000_000_000_000 + h * 1000 if busy else 9_000_000 + h % 1000
    c.update({"port_xmit_data": words, "port_rcv_data": words + h % 77_777_777,
              "port_xmit_packets": words // 1024, "port_rcv_packets": words // 1024 + h % 7777,
              "port_xmit_wait": 5_400_000_000_000 + h if busy else h % 1000,
              "unicast_xmit_packets": words // 1024, "unicast_rcv_packets": words // 1024 + h % 7777,
              "multicast_xmit_packets": 0, "multicast_rcv_packets": 14})
    later = {k: c[k] for k in RESAMPLED}
    if state == "up" and busy:
        later["port_xmit_data"] += int(WORDS_PER_S * interval_s)
        later["port_xmit_wait"] += int(WAITS_PER_S * interval_s)
    for k, v in (rising or {}).items():
        later[k] += v
    hw = {"out_of_buffer": 0, "out_of_sequence": 0, "duplicate_request": 0, "rnr_nak_retry_err": 0,
          "packet_seq_err": 0, "implied_nak_seq_err": 0, "local_ack_timeout_err": 0, "lifespan": 12}
    return {"port": 1, "state": st, "phys_state": phys, "rate": rate, "link_layer": layer,
            "counters": c, "hw_counters": hw, "counters_later": later}


def netdev(name, *, operstate="up", speed=400000, carrier_changes=2, stats=None, rising=None):
    st = {"rx_packets": 98_231_004_112, "tx_packets": 97_114_302_877, "rx_bytes": 402_118_003_440_112,
          "tx_bytes": 398_440_271_002_004, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0, "tx_dropped": 0,
          "rx_crc_errors": 0, "rx_missed_errors": 0, "collisions": 0, "multicast": 4411}
    st.update(stats or {})
    later = {"carrier_changes": carrier_changes, "rx_errors": st["rx_errors"],
             "rx_crc_errors": st["rx_crc_errors"], "tx_errors": st["tx_errors"]}
    for k, v in (rising or {}).items():
        later[k] += v
    return {"name": name, "operstate": operstate, "speed_mbps": speed if operstate == "up" else -1,
            "carrier_changes": carrier_changes, "statistics": st, "later": later}


def rdma_device(name, pci_path, numa, ports, *, hca="MT4129", board="MT_0000000838", fw="28.39.1002",
                netdevs=()):
    d = {"name": name, "hca_type": hca, "board_id": board, "fw_ver": fw, "pci_bus_id": pci_path[-1],
         "pci_path": pci_path, "numa_node": numa, "ports": ports}
    if netdevs:
        d["netdevs"] = list(netdevs)
    return d


def rdma(devices, interval_ms=1000):
    return {"sample_interval_ms": interval_ms, "devices": devices}


def hx(n):
    return f"{n:02x}"


def h100_pci_paths(i):
    """DGX H100: each GPU and its ConnectX-7 sit on one PCIe switch below a root port (nvidia-smi topo -m
    shows them PIX). Bus numbers follow the GPU's: root complex = bus - 3, the NIC one bus above."""
    b = int(H100_BUS[i][5:7], 16)
    r = b - 3
    up = [f"pci0000:{hx(r)}", f"0000:{hx(r)}:01.0", f"0000:{hx(r + 1)}:00.0"]
    return up + [f"0000:{hx(r + 2)}:00.0", H100_BUS[i]], up + [f"0000:{hx(r + 2)}:01.0", f"0000:{hx(b + 1)}:00.0"]


def dgx_h100_nics(scn, ports=None):
    """The eight compute-fabric ConnectX-7 (mlx5_0..7, one per GPU, 400 Gb/s NDR); `ports` overrides by index."""
    devs = []
    for i in range(8):
        _, nic_path = h100_pci_paths(i)
        kw = (ports or {}).get(i, {})
        devs.append(rdma_device(f"mlx5_{i}", nic_path, 0 if i < 4 else 1, [ib_port(f"{scn}/mlx5_{i}", **kw)]))
    return rdma(devs)


def with_dgx_nics(facts, scn, ports=None):
    for i, g in enumerate(facts["gpus"]):
        g["pci_path"] = h100_pci_paths(i)[0]
    facts["rdma"] = dgx_h100_nics(scn, ports)
    return facts


def busy(temp=58, power=640, reasons=0x0, sm=1980, util=98):
    return (temp, util, power, reasons, sm)


def xid_bus(bdf):
    return bdf[:-2]  # Xid lines print domain:bus:device without the function


H100_BUILD = "Fri Feb 28 02:30:55 UTC 2025"


def scn_dgx_h100_healthy():
    loads = [busy(58), busy(61), busy(63, 690, 0x4, 1875), busy(57), busy(59), busy(62, 688, 0x4, 1890),
             busy(56), busy(60)]
    log = boot_lines("570.133.20", H100_BUILD) + [
        (6.120551, 6, "nvidia-nvswitch0: open (major=509)"),
        (6.120872, 6, "nvidia-nvswitch1: open (major=509)"),
        (6.121130, 6, "nvidia-nvswitch2: open (major=509)"),
        (6.121421, 6, "nvidia-nvswitch3: open (major=509)"),
    ] + DISTRACTORS
    return with_dgx_nics(dgx_h100("dgx-h100-healthy", "dgx-h100-01", loads=loads, kernel_log=dmesg(log)),
                         "dgx-h100-healthy")


def dgx_h100_fabric(scn, hostname, ports):
    """A healthy DGX H100 under a training load whose compute-fabric ports carry the fault."""
    loads = [busy(58), busy(61), busy(60), busy(57), busy(59), busy(62), busy(56), busy(60)]
    log = boot_lines("570.133.20", H100_BUILD) + DISTRACTORS
    return with_dgx_nics(dgx_h100(scn, hostname, loads=loads, kernel_log=dmesg(log)), scn, ports)


def scn_dgx_h100_ib_port_down():
    # mlx5_3 lost its link: DOWN/Polling (no light from the far end), the rate falls back to SDR.
    return dgx_h100_fabric("dgx-h100-ib-port-down", "dgx-h100-07", {
        3: dict(state="down", rate="10 Gb/sec (4X SDR)", errors={"link_downed": 1, "symbol_error": 3})})


def scn_dgx_h100_ib_flapping():
    # mlx5_5 keeps retraining: 37 downs so far and one more during the probe, with symbol and receive errors.
    return dgx_h100_fabric("dgx-h100-ib-flapping", "dgx-h100-11", {
        5: dict(errors={"link_downed": 37, "link_error_recovery": 12, "symbol_error": 8812, "port_rcv_errors": 214},
                rising={"link_downed": 1, "symbol_error": 81, "port_rcv_errors": 5})})


def scn_dgx_h100_ib_rate_degraded():
    # mlx5_6 trained at HDR 200 Gb/s (a cable or transceiver that only negotiates the lower speed).
    return dgx_h100_fabric("dgx-h100-ib-rate-degraded", "dgx-h100-14", {
        6: dict(rate="200 Gb/sec (4X HDR)")})


def scn_dgx_h100_straggler_brake():
    # One rank of a training job is slow: GPU 5's HW power brake (an external power-supply signal) holds
    # its SM clock at 1095 MHz while the other seven run at 1980 MHz. No XID, no ECC error, no NVLink fault.
    loads = [busy(58), busy(61), busy(60), busy(57), busy(59), busy(49, 402, 0x80, 1095), busy(56), busy(60)]
    log = boot_lines("570.133.20", H100_BUILD) + DISTRACTORS
    brake = {5: {"durations": lambda g: g["clocks_event_durations_ns"].update(
        hw_power_brake_slowdown=1_913_000_000_000)}}
    return with_dgx_nics(dgx_h100("dgx-h100-straggler-brake", "dgx-h100-19", loads=loads, overrides=brake,
                                  kernel_log=dmesg(log)), "dgx-h100-straggler-brake")


def scn_dgx_h100_pcie_downtrained():
    # GPU 2's PCIe link trained down to Gen3 x8 (a marginal riser or retimer) while its peers run Gen5 x16:
    # host transfers and GPUDirect traffic through it are a sixth as fast. No XID.
    loads = [busy(58), busy(61), busy(60), busy(57), busy(59), busy(62), busy(56), busy(60)]
    log = boot_lines("570.133.20", H100_BUILD) + DISTRACTORS

    def down(g):
        g["pcie"]["current_link_gen"] = 3
        g["pcie"]["current_link_width"] = 8

    return with_dgx_nics(dgx_h100("dgx-h100-pcie-downtrained", "dgx-h100-23", loads=loads,
                                  overrides={2: {"pcie": down}}, kernel_log=dmesg(log)),
                         "dgx-h100-pcie-downtrained")


def scn_h100_roce_carrier_flaps():
    # Two ConnectX-7 400GbE RoCE ports, both on socket 0: ens1f0np0's carrier went down and up during the
    # probe (23 changes in all) with CRC errors; GPU 1 on socket 1 reaches either only across sockets.
    pod = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
    facts = h100_pcie_node(
        "h100-roce-carrier-flaps", "gpu-node-12",
        g0=dict(temp=55, util=88, mem_util=50, used_mib=61240, power_w=281, sm=1755, reasons=0x0,
                processes=[proc(81022, 60709)]),
        g1=dict(temp=53, util=87, mem_util=50, used_mib=61240, power_w=279, sm=1755, reasons=0x0,
                processes=[proc(81023, 60709)]),
        kernel_log=dmesg(boot_lines("570.124.06", "Wed Feb 26 23:53:15 UTC 2025") + DISTRACTORS + [
            (401200.112004, 6, "mlx5_core 0000:18:00.0 ens1f0np0: Link down"),
            (401202.950311, 6, "mlx5_core 0000:18:00.0 ens1f0np0: Link up"),
        ]),
        driver_version="570.124.06", cuda=12080,
        host_processes=[host_proc(81022 + i, "python3", f"torchrun --nnodes 4 train.py --local-rank {i}", pod,
                                  container_id("roce/train"), age=90000) for i in range(2)],
        uptime=401210)
    facts["gpus"][0]["pci_path"] = ["pci0000:15", "0000:15:01.0", "0000:16:00.0", "0000:17:00.0"]
    facts["gpus"][1]["pci_path"] = ["pci0000:c8", "0000:c8:01.0", "0000:c9:00.0", "0000:ca:00.0"]
    eth = dict(layer="Ethernet", rate="400 Gb/sec (4X NDR)")
    facts["rdma"] = rdma([
        rdma_device("mlx5_0", ["pci0000:15", "0000:15:03.0", "0000:18:00.0"], 0,
                    [ib_port("roce/mlx5_0", **eth)],
                    netdevs=[netdev("ens1f0np0", carrier_changes=23, stats={"rx_crc_errors": 1410, "rx_errors": 1410},
                                    rising={"carrier_changes": 2, "rx_crc_errors": 37, "rx_errors": 37})]),
        rdma_device("mlx5_1", ["pci0000:15", "0000:15:05.0", "0000:19:00.0"], 0,
                    [ib_port("roce/mlx5_1", **eth)], netdevs=[netdev("ens2f0np0")]),
    ])
    return facts


def lose(g, *, keep=("index", "name", "uuid", "serial", "pci_bus_id", "board_part_number", "pci_device_id",
                     "vbios_version", "architecture", "cuda_compute_capability")):
    """The GPU fell off the bus after enumeration: NVML still has its cached identity, every live query
    returns NVML_ERROR_GPU_IS_LOST."""
    for k in list(g.keys()):
        if k in keep:
            continue
        v = g[k]
        if k == "nvlinks":
            g[k] = [{"link": n, "active": LOST, "version": LOST, "remote_pci_bus_id": LOST,
                     "remote_device_type": LOST, "replay_errors": LOST, "recovery_errors": LOST,
                     "crc_flit_errors": LOST, "crc_data_errors": LOST} for n in range(18)]
        elif k in ("pcie", "thermal", "power", "clocks", "clocks_event_durations_ns"):
            g[k] = {kk: LOST for kk in v}
        elif k == "ecc":
            g[k] = {kk: ([] if kk == "by_location" else LOST) for kk in v}
        elif k == "mig_devices":
            pass
        else:
            g[k] = LOST


def scn_dgx_h100_xid79():
    loads = [busy(58)] * 4 + [busy(0)] + [busy(60)] * 3
    bdf = H100_BUS[4]
    uuid4 = uid("dgx-h100-xid79/4")
    x = xid_bus(bdf)
    log = boot_lines("570.133.20", H100_BUILD) + DISTRACTORS[:3] + [
        (183920.144001, 3, "pcieport 0000:97:01.0: AER: Uncorrected (Fatal) error message received from 0000:9a:00.0"),
        (183920.144090, 3, "nvidia 0000:9a:00.0: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, (Receiver ID)"),
        (183920.144101, 3, "nvidia 0000:9a:00.0:   device [10de:2330] error status/mask=00000020/00000000"),
        (183920.144110, 3, "nvidia 0000:9a:00.0:    [ 5] SDES                   (First)"),
        (183920.301556, 4, f"NVRM: GPU at PCI:{x}: {uuid4}"),
        (183920.301561, 4, "NVRM: GPU Board Serial Number: 1654922001234"),
        (183920.301570, 4, f"NVRM: Xid (PCI:{x}): 79, pid=40138, name=python3, GPU has fallen off the bus."),
        (183920.301602, 3, f"NVRM: GPU {bdf}: GPU has fallen off the bus."),
        (183920.301608, 3, f"NVRM: GPU {bdf}: GPU serial number is 1654922001234."),
        (183920.302115, 4, f"NVRM: Xid (PCI:{x}): 154, GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)"),
        (183920.318003, 4, "NVRM: A GPU crash dump has been created. If possible, please run"),
        (183920.318004, 4, "NVRM: nvidia-bug-report.sh as root to collect this data before"),
        (183920.318005, 4, "NVRM: the NVIDIA kernel module is unloaded."),
        (183921.002417, 6, "NVRM: GPU is lost, skipping nvidia_ioctl"),
        (183980.551020, 6, "python3[40138]: segfault at 8 ip 00007f1c2b4a1e2d sp 00007ffd7b1e9a40 error 4 in libcuda.so.570.133.20[7f1c2b200000+1c6e000] likely on CPU 17 (core 17, socket 0)"),
    ]
    facts = dgx_h100("dgx-h100-xid79", "dgx-h100-07", loads=loads, kernel_log=kmsg(log),
                     uptime=183920 + 5400, lost=(4,))
    lose(facts["gpus"][4])
    # The dead GPU's process is gone from NVML's view; its host process is stuck exiting.
    facts["host_processes"] = [p for p in facts["host_processes"] if p["pid"] != 40110 + 4 * 7]
    return facts


def scn_dgx_h100_nvlink_errors():
    loads = [busy(58)] * 8
    bdf = H100_BUS[3]
    x = xid_bus(bdf)

    def bad_links(g):
        g["nvlinks"] = h100_links({
            5: dict(replay=1523, recovery=12, crc_flit=87412, crc_data=311),
            7: dict(active=False),
        })
        g["fabric"] = h100_fabric(health=1 | (2 << 2) | (2 << 4) | (2 << 6) | (1 << 8))
        g["recovery_action"] = 1

    log = boot_lines("570.133.20", H100_BUILD) + DISTRACTORS + [
        (86011.220190, 4, f"NVRM: GPU at PCI:{x}: {uid('dgx-h100-nvlink-errors/3')}"),
        (86011.220196, 4, "NVRM: GPU Board Serial Number: 1654922001233"),
        (86011.220204, 4, f"NVRM: Xid (PCI:{x}): 74, pid=40131, name=python3, NVLink: fatal error detected on link 7(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)"),
        (86011.220911, 4, "nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 33 LTSSM Fault Up"),
        (86011.221530, 4, f"NVRM: Xid (PCI:{x}): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"),
        (86011.240118, 4, f"NVRM: Xid (PCI:{x}): 45, pid=40131, name=python3, Ch 00000010 caused by previous Xid 74"),
    ]
    return dgx_h100("dgx-h100-nvlink-errors", "dgx-h100-03", loads=loads,
                    overrides={3: {"links": bad_links}}, kernel_log=kmsg(log, 2211),
                    uptime=86011 + 2400)


# ------------------------------------------------------------------------------------ DGX A100 base

A100_BUS = ["0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
            "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"]
A100_SWITCHES = ["0000:c4:00.0", "0000:c5:00.0", "0000:c6:00.0", "0000:c7:00.0", "0000:c8:00.0", "0000:c9:00.0"]
A100_NUMA = [3, 3, 1, 1, 7, 7, 5, 5]
A100_BUILD = "Wed Jul 10 08:21:27 UTC 2024"


def a100_affinity(node):
    return cpu_ranges((node * 16, node * 16 + 15), (128 + node * 16, 128 + node * 16 + 15))


def dgx_a100(scn, hostname, *, overrides=None, kernel_log=None, uptime=12 * 86400 + 3312):
    gpus, hprocs = [], []
    for i, bdf in enumerate(A100_BUS):
        pid = 28810 + i
        pod = "9b2e4f10-5a6c-4d7e-8f90-1a2b3c4d5e6f"
        hprocs.append(host_proc(pid, "pt_main_thread",
                                f"/opt/conda/bin/python -m torch.distributed.run --nproc_per_node=8 pretrain_gpt.py --rank {i}",
                                pod, container_id(f"{scn}/megatron"), age=uptime - 7200, qos="guaranteed"))
        g = gpu(scn, i, "a100-sxm", bdf, str(1564120012340 + i), temp=52 + i % 3, util=95, mem_util=48,
                used_mib=64711, power_w=318, sm=1410, reasons=0x0, numa=A100_NUMA[i],
                affinity=a100_affinity(A100_NUMA[i]),
                nvlinks=[link(n, A100_SWITCHES[n // 2], version=3) for n in range(12)],
                fabric=NS_, processes=[proc(pid, 64180)],
                recovery_action=err("not_supported", "NVML field 230 (GPU recovery action) needs driver R565+"))
        g["pcie"]["current_link_gen"] = 4
        for fn in (overrides or {}).get(i, []):
            fn(g)
        gpus.append(g)
    switch_pair = lambda a, b: 20 if a // 2 == b // 2 else 50  # noqa: E731
    p2p = lambda a, b: {"read": 0, "write": 0, "nvlink": 0, "atomics": 0}  # noqa: E731
    return {
        "host": host(hostname, uptime, 256, kernel="5.15.0-1058-nvidia"),
        "driver": driver("535.183.01", 12020),
        "device_count": 8,
        "gpus": gpus,
        "topology": pairs(8, switch_pair, p2p),
        "kernel_log": kernel_log,
        "host_processes": hprocs,
        "services": services(),
    }


def scn_dgx_a100_remap_pending():
    bdf = A100_BUS[2]
    x = xid_bus(bdf)

    def pending(g):
        e = g["ecc"]
        e["volatile_corrected"] = 14
        e["aggregate_corrected"] = 37
        e["by_location"] = [loc("dram", vc=14, ac=37), loc("sram")]
        e["remapped_rows"] = {"correctable": 1, "uncorrectable": 0, "pending": True, "failure": False}
        e["row_remapper_histogram"] = {"max": 639, "high": 1, "partial": 0, "low": 0, "none": 0}

    log = boot_lines("535.183.01", A100_BUILD) + DISTRACTORS + [
        (901233.410022, 4, f"NVRM: GPU at PCI:{x}: {uid('dgx-a100-row-remap-pending/2')}"),
        (901233.410027, 4, "NVRM: GPU Board Serial Number: 1564120012342"),
        (901233.410035, 4, f"NVRM: Xid (PCI:{x}): 63, pid='<unknown>', name=<unknown>, Row Remapper: New row (0x00000000075a1100) marked for remapping, reset gpu to activate."),
    ]
    return dgx_a100("dgx-a100-row-remap-pending", "dgx-a100-12", overrides={2: [pending]},
                    kernel_log=dmesg(log))


def scn_dgx_a100_remap_failure():
    bdf = A100_BUS[5]
    x = xid_bus(bdf)

    def failed(g):
        e = g["ecc"]
        e["volatile_corrected"] = 3
        e["volatile_uncorrected"] = 1
        e["aggregate_corrected"] = 211
        e["aggregate_uncorrected"] = 9
        e["by_location"] = [loc("dram", 3, 1, 211, 9), loc("sram")]
        e["remapped_rows"] = {"correctable": 3, "uncorrectable": 8, "pending": False, "failure": True}
        e["row_remapper_histogram"] = {"max": 634, "high": 3, "partial": 1, "low": 1, "none": 1}
        g["processes"] = []
        g["utilization"] = {"gpu_pct": 0, "memory_pct": 0}
        g["memory"]["used_bytes"] = 4915 * MIB
        g["memory"]["free_bytes"] = g["memory"]["total_bytes"] - g["memory"]["used_bytes"]
        g["power"]["usage_mw"] = 71000
        g["clocks"]["sm_mhz"] = 210
        g["clocks"]["graphics_mhz"] = 210
        g["clocks_event_reasons"] = 0x1

    log = boot_lines("535.183.01", A100_BUILD) + DISTRACTORS + [
        (640112.700120, 4, f"NVRM: GPU at PCI:{x}: {uid('dgx-a100-row-remap-failure/5')}"),
        (640112.700126, 4, "NVRM: GPU Board Serial Number: 1564120012345"),
        (640112.700133, 4, f"NVRM: Xid (PCI:{x}): 48, pid=28815, name=pt_main_thread, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 3, subpartition 1."),
        (640112.700201, 4, f"NVRM: Xid (PCI:{x}): 94, pid=28815, name=pt_main_thread, Contained: SM (0x1). RST: No, D-RST: No"),
        (640112.700288, 4, f"NVRM: Xid (PCI:{x}): 64, pid='<unknown>', name=<unknown>, Row Remapper: Failed to remap row (0x0000000002b3e840), bank 0x1f has no spare rows left."),
        (640119.003415, 6, "pt_main_thread[28815]: segfault at 0 ip 00007f8e4c21a9b0 sp 00007ffc52a1d7f0 error 4 in libc.so.6[7f8e4c1a6000+195000]"),
    ]
    facts = dgx_a100("dgx-a100-row-remap-failure", "dgx-a100-05", overrides={5: [failed]},
                     kernel_log=kmsg(log, 30412), uptime=640112 + 86000)
    facts["host_processes"] = [p for p in facts["host_processes"] if p["pid"] != 28815]
    return facts


# ---------------------------------------------------------------------------------- 2x H100 PCIe

def h100_pcie_node(scn, hostname, *, g0, g1, kernel_log, driver_version="550.127.05", cuda=12040,
                   host_processes=(), uptime=5 * 86400 + 1804):
    bus = ["0000:17:00.0", "0000:ca:00.0"]
    ra = 0 if driver_version >= "565" else err("not_supported", "NVML field 230 (GPU recovery action) needs driver R565+")
    gpus = []
    for i, (b, kw) in enumerate(zip(bus, (g0, g1))):
        kw = dict(kw)
        fix = kw.pop("fix", None)
        g = gpu(scn, i, "h100-pcie", b, str(1651723004560 + i), numa=i,
                affinity=cpu_ranges((i * 32, i * 32 + 31), (64 + i * 32, 64 + i * 32 + 31)),
                recovery_action=ra, **kw)
        if fix:
            fix(g)
        gpus.append(g)
    return {
        "host": host(hostname, uptime, 128, kernel="6.8.0-48-generic"),
        "driver": driver(driver_version, cuda),
        "device_count": 2,
        "gpus": gpus,
        "topology": [{"a": 0, "b": 1, "common_ancestor": 50,
                      "p2p": {"read": 3, "write": 3, "nvlink": 5, "atomics": 3}}],
        "kernel_log": kernel_log,
        "host_processes": list(host_processes),
        "services": services(fm=False),
    }


def scn_h100_xid48_dbe():
    x = "0000:ca:00"
    pod = "c0ffee12-3456-4789-abcd-ef0123456789"

    def dbe(g):
        e = g["ecc"]
        e["volatile_uncorrected"] = 2
        e["aggregate_uncorrected"] = 2
        e["by_location"] = [loc("dram", vu=2, au=2), loc("sram")]
        e["remapped_rows"] = {"correctable": 0, "uncorrectable": 2, "pending": True, "failure": False}
        e["row_remapper_histogram"] = {"max": 2558, "high": 2, "partial": 0, "low": 0, "none": 0}
        g["recovery_action"] = 4

    log = boot_lines("570.124.06", "Wed Feb 26 23:53:15 UTC 2025") + DISTRACTORS + [
        (52210.881120, 4, f"NVRM: GPU at PCI:{x}: {uid('h100-xid48-dbe/1')}"),
        (52210.881126, 4, "NVRM: GPU Board Serial Number: 1651723004561"),
        (52210.881140, 4, f"NVRM: Xid (PCI:{x}): 48, pid=71734, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 5, subpartition 1."),
        (52210.881209, 4, f"NVRM: Xid (PCI:{x}): 63, pid=71734, name=python3, Row Remapper: New row (0x0000000000a1f340) marked for remapping, reset gpu to activate."),
        (52210.881277, 4, f"NVRM: Xid (PCI:{x}): 94, pid=71734, name=python3, Contained: FBHUB (0x2). RST: No, D-RST: Yes"),
        (52210.881950, 4, f"NVRM: Xid (PCI:{x}): 154, GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)"),
    ]
    hp = [host_proc(70022, "python3", "python3 serve.py --model mistral-7b --port 8000", pod,
                    container_id("xid48/serve"), age=400000)]
    return h100_pcie_node(
        "h100-xid48-dbe", "gpu-node-5",
        g0=dict(temp=54, util=71, mem_util=40, used_mib=31240, power_w=221, sm=1755, reasons=0x0,
                processes=[proc(70022, 30709)]),
        g1=dict(temp=41, util=0, used_mib=1210, reasons=0x1, fix=dbe),
        kernel_log=kmsg(log, 5120), driver_version="570.124.06", cuda=12080, host_processes=hp,
        uptime=52210 + 1500)


def scn_h100_thermal_slowdown():
    pod = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    hp = [host_proc(91230 + i, "python3", f"python3 finetune.py --rank {i}", pod, container_id("thermal/ft"),
                    age=20000) for i in range(2)]
    log = boot_lines("550.127.05", "Tue Oct  8 03:22:07 UTC 2024") + DISTRACTORS + [
        (431002.118371, 4, "mce: CPU33: Package temperature above threshold, cpu clock throttled (total events = 1)"),
        (431002.120018, 6, "mce: CPU33: Package temperature/speed normal"),
    ]
    durations = {"sw_power_cap": 3_120_000_000, "sw_thermal_slowdown": 612_004_000_000,
                 "hw_thermal_slowdown": 1_904_377_000_000, "hw_power_brake_slowdown": 0, "sync_boost": 0}
    return h100_pcie_node(
        "h100-thermal-slowdown", "gpu-node-12",
        g0=dict(temp=71, util=100, mem_util=55, used_mib=62010, power_w=348, sm=1650, reasons=0x4,
                processes=[proc(91230, 61479)],
                durations={"sw_power_cap": 9_880_000_000_000, "sw_thermal_slowdown": 0, "hw_thermal_slowdown": 0,
                           "hw_power_brake_slowdown": 0, "sync_boost": 0}),
        g1=dict(temp=90, mem_temp=93, util=100, mem_util=31, used_mib=62010, power_w=182, sm=825,
                reasons=0x68, processes=[proc(91231, 61479)], durations=durations),
        kernel_log=dmesg(log), host_processes=hp, uptime=431002 + 3000)


def scn_h100_power_brake():
    pod = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    hp = [host_proc(61200 + i, "python3", f"python3 -m vllm.entrypoints.openai.api_server --tensor-parallel-size 2",
                    pod, container_id("brake/vllm"), age=90000) for i in range(2)]
    log = boot_lines("550.127.05", "Tue Oct  8 03:22:07 UTC 2024") + DISTRACTORS + [
        (212300.551002, 4, "ACPI: \\_SB_.PMI0: Power meter capping: power limit changed"),
        (212300.551118, 6, "power_meter ACPI000D:00: Found ACPI power meter."),
    ]
    durations = {"sw_power_cap": 0, "sw_thermal_slowdown": 0, "hw_thermal_slowdown": 0,
                 "hw_power_brake_slowdown": 812_440_000_000, "sync_boost": 0}
    return h100_pcie_node(
        "h100-power-brake", "gpu-node-21",
        g0=dict(temp=39, util=100, mem_util=22, used_mib=70110, power_w=96, sm=345, reasons=0x88,
                processes=[proc(61200, 69579)], durations=durations),
        g1=dict(temp=41, util=100, mem_util=21, used_mib=70110, power_w=101, sm=345, reasons=0x88,
                processes=[proc(61201, 69579)], durations=durations),
        kernel_log=dmesg(log), host_processes=hp, uptime=212300 + 1200)


def scn_h100_zombie_process():
    pod = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    x = "0000:17:00"
    hp = [
        host_proc(48213, "python3", "", pod, container_id("zombie/notebook"), state="Z", age=8100),
        {"pid": 39977, "name": err("not_found"), "cmdline": err("not_found"), "cgroup": err("not_found"),
         "state": err("not_found"), "age_seconds": err("not_found")},
        host_proc(51022, "python3", "python3 train.py --epochs 40", "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e",
                  container_id("zombie/train"), age=3600),
    ]
    log = boot_lines("550.127.05", "Tue Oct  8 03:22:07 UTC 2024") + DISTRACTORS + [
        (93811.002331, 4, f"NVRM: GPU at PCI:{x}: {uid('h100-zombie-process/0')}"),
        (93811.002337, 4, "NVRM: GPU Board Serial Number: 1651723004560"),
        (93811.002350, 4, f"NVRM: Xid (PCI:{x}): 43, pid=48213, name=python3, Ch 00000018"),
        (93811.410225, 6, "python3[48219]: segfault at 18 ip 00007f2a9c01b3e4 sp 00007f29e3ffe8d0 error 4 in libcuda.so.550.127.05[7f2a9bc00000+1c6e000] likely on CPU 5 (core 5, socket 0)"),
    ]
    facts = h100_pcie_node(
        "h100-zombie-process", "gpu-node-8",
        g0=dict(temp=36, util=0, used_mib=33302, power_w=74, sm=1755, reasons=0x0, pstate=0,
                processes=[proc(48213, 30720), proc(39977, 2048)]),
        g1=dict(temp=63, util=97, mem_util=52, used_mib=58110, power_w=301, sm=1755, reasons=0x0,
                processes=[proc(51022, 57579)]),
        kernel_log=kmsg(log, 990), host_processes=hp, uptime=93811 + 8200)
    # The zombie's notebook pod is deleted (not listed, no log directory); the kubelet gave GPU 0 to a new
    # notebook three hours ago, which has run nothing on it since.
    g0, g1 = (g["uuid"] for g in facts["gpus"])
    bob = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f"
    facts["pod_resources"] = pod_resources(
        [("ml", "train-0", [("trainer", "nvidia.com/gpu", [g1])]),
         ("research", "notebook-bob", [("notebook", "nvidia.com/gpu", [g0])])],
        [("nvidia.com/gpu", [g0, g1])])
    facts["kubelet_logs"] = kubelet_logs(
        [("ml", "train-0", "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e",
          [("trainer", container_id("zombie/train"), 3600)]),
         ("research", "notebook-bob", bob, [("notebook", container_id("zombie/bob"), 3 * 3600 + 120)])])
    return facts


# ------------------------------------------------------------------------------ GB200 NVL72 tray

# A compute tray's four GPUs as nvidia-smi lists them on a GB200 NVL72 node (PCI domains 8, 9, 0x18, 0x19:
# two Grace superchips, two GPUs each, attached over NVLink-C2C).
GB200_BUS = ["0008:01:00.0", "0009:01:00.0", "0018:01:00.0", "0019:01:00.0"]
GB200_SWITCH = "0000:00:00.0"  # NVLink5 links end on switch trays outside the node: no local PCI function
# One NVL72 rack is one NVLink domain: every tray's GPUs carry its cluster UUID and clique.
GB200_CLUSTER = "6e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a14"
GB200_CLIQUE = 1
# The fabric health mask's 2-bit fields (NVML_GPU_FABRIC_HEALTH_MASK_*): degraded bandwidth TRUE (1) when a
# switch tray of the rack is lost, the others FALSE (2); incorrect configuration NONE (1).
GB200_DEGRADED_BW = 1 | (2 << 2) | (2 << 4) | (2 << 6) | (1 << 8)
# GB200 trays run NVIDIA's arm64 64k-page kernel (Ubuntu's linux-nvidia-64k).
GB200_KERNEL = "6.8.0-1021-nvidia-64k"
DRA_CLAIM = "7d2c9e41-5b3a-4f6e-8d1c-0a9b8c7d6e5f"


def gb200_tray(scn, hostname, *, health=H100_FABRIC_HEALTHY, busy_gpus=(0, 1, 2, 3), kernel_log=None):
    gpus, hprocs = [], []
    pod = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4c3d2e1f"
    for i, bdf in enumerate(GB200_BUS):
        util = 97 if i in busy_gpus else 0
        pid = 61200 + i * 11
        used = 171208 if util else 612
        procs = [proc(pid, used - 612)] if util else []
        if procs:
            hprocs.append(host_proc(pid, "python3",
                                    f"/usr/bin/python3 -u /workspace/pretrain.py --local-rank {i}",
                                    pod, container_id(f"{scn}/trainer"), age=5400))
        g = gpu(scn, i, "gb200", bdf, f"17812250{i:05d}", temp=52 + i, util=util, mem_util=min(util, 64),
                used_mib=used, power_w=1010 if util else 160, numa=0 if i < 2 else 1,
                affinity=cpu_ranges((0, 71)) if i < 2 else cpu_ranges((72, 143)),
                nvlinks=[link(n, GB200_SWITCH, version=5) for n in range(18)],
                fabric={"state": 3, "status": 0, "clique_id": GB200_CLIQUE, "cluster_uuid": GB200_CLUSTER,
                        "health_mask": health},
                processes=procs)
        g["minor_number"] = i
        g["pcie"]["current_link_gen"] = 5
        gpus.append(g)
    numa = lambda a, b: 40 if (a < 2) == (b < 2) else 50  # noqa: E731
    p2p = lambda a, b: {"read": 0, "write": 0, "nvlink": 0, "atomics": 0}  # noqa: E731
    log = boot_lines("570.148.08", "Fri Jun 20 01:33:15 UTC 2025") + DISTRACTORS
    return {
        "host": host(hostname, 5 * 86400 + 3120, 144, kernel=GB200_KERNEL),
        "driver": driver("570.148.08", 12080),
        "device_count": 4,
        "gpus": gpus,
        "topology": pairs(4, numa, p2p),
        "kernel_log": kernel_log if kernel_log is not None else dmesg(log),
        "host_processes": hprocs,
        # Multi-node NVLink on GB200 runs IMEX, not a node-local Fabric Manager.
        "services": services(fm=False),
    }


def scn_gb200_tray_dra():
    """A GB200 tray whose GPUs are allocated through NVIDIA's DRA driver: a training rank holds all four
    through one ResourceClaim; the kubelet reports it (PodResources dynamic resources), the driver's per-claim
    CDI spec is on the node."""
    scn = "gb200-tray-dra"
    facts = gb200_tray(scn, "gb-rack1-tray03")
    pod_uid = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4c3d2e1f"
    devices = [f"gpu-{i}" for i in range(4)]
    facts["pod_resources"] = {
        "socket": "var/lib/kubelet/pod-resources/kubelet.sock",
        "pods": [{"name": "pretrain-rank-3", "namespace": "ml", "containers": [{
            "name": "trainer", "devices": [],
            "claims": [{"name": "pretrain-rank-3-gpus-x7k2p", "namespace": "ml", "devices": [
                {"driver": "gpu.nvidia.com", "pool": "gb-rack1-tray03", "device": d,
                 "cdi_ids": [f"k8s.gpu.nvidia.com/claim={DRA_CLAIM}-{d}"]} for d in devices]}]}]}],
        # The device plugin is off where the DRA driver runs: nothing to allocate through it.
        "allocatable": [],
    }
    facts["kubelet_logs"] = kubelet_logs(
        [("ml", "pretrain-rank-3", pod_uid, [("trainer", container_id(f"{scn}/trainer"), 5400)])])
    facts["dra"] = {
        "registered": ["compute-domain.nvidia.com", "gpu.nvidia.com"],
        "claim_specs": [{"file": f"var/run/cdi/k8s.gpu.nvidia.com-claim_{DRA_CLAIM}.yaml",
                         "kind": "k8s.gpu.nvidia.com/claim", "claim_uid": DRA_CLAIM, "devices": devices}],
    }
    return facts


def scn_gb200_tray_imex_degraded():
    """A GB200 tray whose host IMEX service (the driver's nvidia-imex package, IMEX_CMD_ENABLED=1) sees its
    domain DEGRADED: tray 09's daemon waits for its peers and its links to two trays are down. The driver asks
    to recover the IMEX domain (recovery action 5, Xid 154) on GPU 0. One fault: the IMEX domain.
    Shapes: NVIDIA IMEX guide (nvidia-imex-ctl -q, -N -j); DCGM dcgm_fields.h (DCGM_FI_IMEX_DOMAIN_STATUS
    UP/DOWN/DEGRADED, DCGM_FI_IMEX_DAEMON_STATUS READY/WAITING_FOR_PEERS/...)."""
    scn = "gb200-tray-imex-degraded"
    bdf = GB200_BUS[0]
    x = xid_bus(bdf)
    log = boot_lines("570.148.08", "Fri Jun 20 01:33:15 UTC 2025") + DISTRACTORS + [
        (301204.118210, 4, f"NVRM: GPU at PCI:{x}: {uid(scn + '/0')}"),
        (301204.118232, 4, f"NVRM: Xid (PCI:{x}): 154, GPU recovery action changed from 0x0 (None) to 0x5 (Recover IMEX Domain)"),
    ]
    facts = gb200_tray(scn, "gb-rack1-tray05", kernel_log=dmesg(log))
    facts["gpus"][0]["recovery_action"] = 5
    trays = [(i, f"10.0.3.{i}", f"gb-rack1-tray{i:02d}") for i in range(1, 19)]
    down = {"10.0.3.9"}

    def member(i, host, name):
        conns = {str(j): {"host": h, "status": "DISCONNECTED" if (host in down) != (h in down) else "CONNECTED"}
                 for j, h, _n in trays}
        bad = sorted(f"{c['host']} {c['status']}" for c in conns.values() if c["status"] != "CONNECTED")
        m = {"index": str(i - 1), "host": host, "host_name": name,
             "status": "WAITING_FOR_PEERS" if host in down else "READY", "version": "570.148.08"}
        if bad:
            m["not_connected"] = bad
        return m

    facts["imex"] = {
        "command_service": "10.0.3.5:50005",
        "config": "/etc/nvidia-imex/config.cfg",
        "daemon": "READY",
        "domain": {"status": "DEGRADED", "nodes": [member(*t) for t in trays]},
    }
    return facts


def scn_gb200_tray_fabric_degraded():
    """A GB200 tray of a rack that lost a switch tray: every GPU's fabric health says degraded bandwidth. The
    same shows on every tray of the rack: one fault of the rack, not of this node."""
    return gb200_tray("gb200-tray-fabric-degraded", "gb-rack1-tray07", health=GB200_DEGRADED_BW)


# --------------------------------------------------------------------------------------- L40S

def scn_l40s_pcie_degraded():
    bus = ["0000:01:00.0", "0000:21:00.0", "0000:c1:00.0", "0000:e1:00.0"]
    scn = "l40s-pcie-degraded"
    pod = "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
    gpus, hp = [], []
    uptime = 3 * 3600 + 612
    for i, b in enumerate(bus):
        pid = 7710 + i
        g = gpu(scn, i, "l40s", b, str(1322623051100 + i), temp=49 + i, util=88, mem_util=61, used_mib=40110,
                power_w=301, sm=2520, reasons=0x0, numa=0 if i < 2 else 1,
                affinity=cpu_ranges((0, 47), (96, 143)) if i < 2 else cpu_ranges((48, 95), (144, 191)),
                processes=[proc(pid, 39579)], recovery_action=err("not_supported", "NVML field 230 (GPU recovery action) needs driver R565+"))
        g["pcie"]["current_link_gen"] = 4
        hp.append(host_proc(pid, "tritonserver", "tritonserver --model-repository=/models", pod,
                            container_id(f"l40s/triton{i}"), age=uptime - 600))
        gpus.append(g)
    bad = gpus[2]["pcie"]
    bad["current_link_width"] = 8
    bad["replay_counter"] = 52140
    bad["aer"] = {"correctable": 312, "nonfatal": 0, "fatal": 0}
    numa = lambda a, b: 40 if (a < 2) == (b < 2) else 50  # noqa: E731
    p2p = lambda a, b: ({"read": 0, "write": 0, "nvlink": 5, "atomics": 5} if (a < 2) == (b < 2)
                        else {"read": 3, "write": 3, "nvlink": 5, "atomics": 3})  # noqa: E731
    log = boot_lines("550.144.03", "Mon Dec 30 17:44:29 UTC 2024") + [
        (1.902118, 6, "pci 0000:c1:00.0: [10de:26b9] type 00 class 0x030200 PCIe Endpoint"),
        (1.902544, 6, "pci 0000:c1:00.0: 126.024 Gb/s available PCIe bandwidth, limited by 16.0 GT/s PCIe x8 link at 0000:c0:01.1 (capable of 252.048 Gb/s with 16.0 GT/s PCIe x16 link)"),
    ] + DISTRACTORS + [
        (7420.118002, 6, "pcieport 0000:c0:01.1: AER: Correctable error message received from 0000:c1:00.0"),
        (7420.118044, 4, "nvidia 0000:c1:00.0: PCIe Bus Error: severity=Correctable, type=Physical Layer, (Receiver ID)"),
        (7420.118051, 4, "nvidia 0000:c1:00.0:   device [10de:26b9] error status/mask=00000001/0000e000"),
        (7420.118058, 4, "nvidia 0000:c1:00.0:    [ 0] RxErr                  (First)"),
        (9115.530771, 6, "pcieport 0000:c0:01.1: AER: Multiple Correctable error message received from 0000:c1:00.0"),
        (9115.530790, 4, "nvidia 0000:c1:00.0: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Transmitter ID)"),
        (9115.530797, 4, "nvidia 0000:c1:00.0:   device [10de:26b9] error status/mask=00001000/0000e000"),
        (9115.530803, 4, "nvidia 0000:c1:00.0:    [12] Timeout               "),
    ]
    return {
        "host": host("gpu-infer-03", uptime, 192, kernel="6.5.0-1024-azure"),
        "driver": driver("550.144.03", 12040),
        "device_count": 4,
        "gpus": gpus,
        "topology": pairs(4, numa, p2p),
        "kernel_log": dmesg(log),
        "host_processes": hp,
        "services": services(fm=False),
    }


# ---------------------------------------------------------------------------------------- A100 MIG

def scn_a100_mig():
    scn = "a100-mig"
    bus = ["0000:07:00.0", "0000:46:00.0"]
    gpus = []
    for i, b in enumerate(bus):
        g = gpu(scn, i, "a100-pcie", b, str(1324721034560 + i), temp=44 - i * 6, util=0, used_mib=0,
                power_w=88 - i * 20, sm=1410 if i == 0 else 210, reasons=0x0 if i == 0 else 0x1, numa=0,
                affinity=cpu_ranges((0, 31), (64, 95)),
                recovery_action=err("not_supported", "NVML field 230 (GPU recovery action) needs driver R565+"))
        g["pcie"]["current_link_gen"] = 4 if i == 0 else 1
        gpus.append(g)
    g0 = gpus[0]
    g0["mig_mode"] = {"current": True, "pending": True}
    g0["utilization"] = err("not_supported", "utilization is not reported for a GPU in MIG mode")
    g0["memory"]["used_bytes"] = 36411 * MIB
    g0["memory"]["free_bytes"] = g0["memory"]["total_bytes"] - g0["memory"]["used_bytes"]
    # NVML refuses the remapped-rows query on a GPU with active MIG instances.
    g0["ecc"]["remapped_rows"] = NS_
    g0["ecc"]["row_remapper_histogram"] = NS_
    g0["mig_devices"] = [
        {"index": 0, "uuid": uid("a100-mig/0/mig0", "MIG"), "gpu_instance_id": 1, "compute_instance_id": 0,
         "name": "NVIDIA A100 80GB PCIe MIG 3g.40gb",
         "memory": {"total_bytes": 40192 * MIB, "used_bytes": 34410 * MIB, "free_bytes": 5782 * MIB}},
        {"index": 1, "uuid": uid("a100-mig/0/mig1", "MIG"), "gpu_instance_id": 2, "compute_instance_id": 0,
         "name": "NVIDIA A100 80GB PCIe MIG 3g.40gb",
         "memory": {"total_bytes": 40192 * MIB, "used_bytes": 2001 * MIB, "free_bytes": 38191 * MIB}},
    ]
    # MIG processes: NVML reports memory only with enough privilege; the second one is unprivileged.
    g0["processes"] = [proc(3312, 33792, gi=1, ci=0), proc(4410, None, gi=2, ci=0)]
    # The admin asked for MIG on GPU 1 (nvidia-smi -mig 1) but it has not been reset yet.
    gpus[1]["mig_mode"] = {"current": False, "pending": True}
    hp = [
        host_proc(3312, "python3", "python3 infer.py --model llama3-8b", "4d5e6f70-8192-4a3b-8c4d-5e6f70819203",
                  container_id("mig/a"), age=7200),
        host_proc(4410, "jupyter-lab", "/opt/conda/bin/python /opt/conda/bin/jupyter-lab --ip=0.0.0.0",
                  "8192a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7", container_id("mig/b"), age=2600),
    ]
    log = boot_lines("550.90.07", "Fri May 31 09:35:42 UTC 2024") + DISTRACTORS + [
        (8012.553019, 4, f"NVRM: GPU at PCI:0000:07:00: {g0['uuid']}"),
        (8012.553024, 4, f"NVRM: GPU Board Serial Number: {g0['serial']}"),
        (8012.553031, 4, "NVRM: Xid (PCI:0000:07:00 GPU-I:01 GPU-CI:00): 31, pid=3312, name=python3, Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f3c_9b400000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ"),
        (8013.001288, 4, "NVRM: Xid (PCI:0000:07:00 GPU-I:01): 43, pid=3312, name=python3, Ch 00000008"),
    ]
    # Mixed MIG strategy: each 3g.40gb instance is its own resource; GPU 1 (MIG pending) is a whole GPU.
    mig0, mig1 = (m["uuid"] for m in g0["mig_devices"])
    pr = pod_resources(
        [("inference", "llama-0", [("server", "nvidia.com/mig-3g.40gb", [mig0])]),
         ("notebooks", "jupyter-ana", [("lab", "nvidia.com/mig-3g.40gb", [mig1])])],
        [("nvidia.com/mig-3g.40gb", [mig0, mig1]), ("nvidia.com/gpu", [gpus[1]["uuid"]])])
    logs = kubelet_logs(
        [("inference", "llama-0", "4d5e6f70-8192-4a3b-8c4d-5e6f70819203", [("server", container_id("mig/a"), 7300)]),
         ("notebooks", "jupyter-ana", "8192a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7", [("lab", container_id("mig/b"), 2700)])])
    return {
        "host": host("gpu-mig-01", 9000, 128, kernel="5.15.0-122-generic"),
        "driver": driver("550.90.07", 12040),
        "device_count": 2,
        "gpus": gpus,
        "topology": [{"a": 0, "b": 1, "common_ancestor": 40,
                      "p2p": {"read": 0, "write": 0, "nvlink": 5, "atomics": 5}}],
        "kernel_log": kmsg(log, 402),
        "host_processes": hp,
        "services": services(fm=False),
        "pod_resources": pr,
        "kubelet_logs": logs,
    }


# --------------------------------------------------------------------------------------------- T4

def scn_t4_single():
    g = gpu("t4-single", 0, "t4", "0000:00:1e.0", "1562520017523", temp=31, util=0, used_mib=0, power_w=12,
            sm=300, reasons=0x1, pstate=8, persistence=False, numa=err("not_supported"),
            affinity=cpu_ranges((0, 3)),
            recovery_action=err("not_supported", "NVML field 230 (GPU recovery action) needs driver R565+"))
    g["clocks"]["memory_mhz"] = 405
    g["mig_mode"] = NS_
    log = boot_lines("535.216.01", "Wed Oct 30 00:41:12 UTC 2024")[:4] + [
        (0.000000, 5, "Linux version 6.1.112-124.190.amzn2023.x86_64 (mockbuild@ip-10-0-58-110) (gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2), GNU ld version 2.39-6.amzn2023.0.10) #1 SMP PREEMPT_DYNAMIC Tue Oct  1 20:41:37 UTC 2024"),
        (2.118020, 6, "ena 0000:00:05.0: Elastic Network Adapter (ENA) v2.13.0g"),
        (14.220301, 6, "nvidia 0000:00:1e.0: enabling device (0000 -> 0002)"),
    ] + DISTRACTORS[:2]
    log.sort(key=lambda r: r[0])
    return {
        "host": host("ip-10-0-17-42.ec2.internal", 26 * 3600, 4, kernel="6.1.112-124.190.amzn2023.x86_64"),
        "driver": driver("535.216.01", 12020),
        "device_count": 1,
        "gpus": [g],
        "topology": [],
        "kernel_log": dmesg(log),
        "host_processes": [],
        "services": [{"name": "nvidia-persistenced", "running": False}],
    }


# ------------------------------------------------------------------------------------ AMD Instinct

# Facts as the amdgpu driver's sysfs and KFD print them (the project's AMD reference, sources [K1-K5][P1][P2]):
# device ids from the GPU Operator's node-feature rule, `gfx_target_version` from kfd_device.c, VRAM and
# power caps from AMD's product pages (MI300X 192 GB / 750 W, MI325X 256 GB / 1000 W, MI355X 288 GB / 1400 W,
# MI250X 128 GB per OAM = 64 GB per GCD / 560 W, MI210 64 GB / 300 W). Temperature limits (hwmon
# temp2_crit / temp2_emergency / temp3_crit) are not in the reference: the values below are the ones
# `amd-smi static --limit` is commonly shown printing for MI300X, used as plausible placeholders.
AMD_SKU = {
    "mi300x": dict(name="AMD Instinct MI300X", devid="74a1", gfx=90402, arch="CDNA3", vram_gib=192, power_w=750,
                   gfx_max=2100, mem_max=1300, simd=1216, xcc=8, metrics="1.7", ras="aca", threshold=128,
                   crit=(100, 110, 105), vbios="113-M3000100-103", board="oam", edge=False, xgmi_links=7),
    "mi325x": dict(name="AMD Instinct MI325X", devid="74a5", gfx=90402, arch="CDNA3", vram_gib=256, power_w=1000,
                   gfx_max=2100, mem_max=1500, simd=1216, xcc=8, metrics="1.7", ras="aca", threshold=128,
                   crit=(100, 110, 105), vbios="113-M3250101-100", board="oam", edge=False, xgmi_links=7),
    # MI355X: GC 9.5.0, MP0 13.0.14 whose driver reserves 32 MiB for bad pages: threshold 256 [K1][K2].
    "mi355x": dict(name="AMD Instinct MI355X", devid="75a3", gfx=90500, arch="CDNA4", vram_gib=288, power_w=1400,
                   gfx_max=2400, mem_max=2000, simd=1024, xcc=8, metrics="1.7", ras="aca", threshold=256,
                   crit=(100, 110, 105), vbios="113-M3550100-101", board="oam", edge=False, xgmi_links=7),
    # MI250X: one OAM is two GCDs, each its own PCI function, KFD node and card; gpu_metrics v1.3 (no
    # residency accumulators); RAS in the legacy `<block>_err_count` files; an edge sensor.
    "mi250x": dict(name="AMD Instinct MI250X/MI250", devid="740c", gfx=90010, arch="CDNA2", vram_gib=64,
                   power_w=560, gfx_max=1700, mem_max=1600, simd=440, xcc=1, metrics="1.3", ras="legacy",
                   threshold=None, crit=(100, 105, 95), vbios="113-D65201-X2", board="oam", edge=True,
                   xgmi_links=4),
    "mi210": dict(name="AMD Instinct MI210", devid="740f", gfx=90010, arch="CDNA2", vram_gib=64, power_w=300,
                  gfx_max=1700, mem_max=1600, simd=416, xcc=1, metrics="1.3", ras="legacy", threshold=None,
                  crit=(100, 105, 95), vbios="113-D67301-063", board="cem", edge=True, xgmi_links=0),
}
ACA_BLOCKS = ["umc", "gfx", "sdma", "mmhub", "pcie_bif", "hdp", "xgmi_wafl"]
LEGACY_BLOCKS = ["umc", "sdma", "gfx", "mmhub", "pcie_bif", "hdp", "xgmi_wafl"]
# MI300X OAM platforms as amd-smi lists them (the reference's `0000:0c:00.0` example and its neighbours).
MI300_BUS = ["0000:0c:00.0", "0000:22:00.0", "0000:38:00.0", "0000:5c:00.0",
             "0000:9f:00.0", "0000:af:00.0", "0000:bf:00.0", "0000:df:00.0"]
MI300_AFFINITY = [cpu_ranges((0, 47), (96, 143)), cpu_ranges((48, 95), (144, 191))]
AMD_HIVE = 0x4b1f9c3e52d10a77
AMD_KERNEL = "5.15.0-125-generic"
AMD_DRIVER_VERSION = "6.12.12"
# `/opt/rocm/.info/version` of a ROCm 6.4.1 install (the release that ships amdgpu-dkms 6.12.12).
AMD_ROCM_VERSION = "6.4.1-83"
# IP discovery versions (`ip_discovery/die/0/<block>/0/{major,minor,revision}`): MP0 13.0.6 and UMC 12.0.0
# are MI300's (GC 9.4.3 family: psp_v13_0 and umc_v12_0 in Linux 6.12), 13.0.2 / UMC 6.7.0 Aldebaran's
# (MI200), 13.0.14 the MI355X's as the reference gives it [K1][K2] (its UMC is left unread).
AMD_IP = {
    "mi300x": ("13.0.6", "12.0.0"), "mi325x": ("13.0.6", "12.0.0"), "mi355x": ("13.0.14", None),
    "mi250x": ("13.0.2", "6.7.0"), "mi210": ("13.0.2", "6.7.0"),
}


def amd_unique_id(seed):
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def kfd_gpu_id(seed):
    # A 16-bit CRC in the driver; any stable 16-bit value stands for it here.
    return int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) or 1


def ras_blocks(layout, overrides=None):
    names = ACA_BLOCKS if layout == "aca" else LEGACY_BLOCKS
    out = []
    for b in names:
        entry = {"block": b, "layout": layout, "ue": 0, "ce": 0}
        # The ACA files always print `de`; of the legacy files only UMC's does [K1].
        if layout == "aca" or b == "umc":
            entry["de"] = 0
        entry.update((overrides or {}).get(b, {}))
        out.append(entry)
    return out


def throttle_sample(acc, **residencies):
    s = {"accumulation_counter": acc, "prochot": 0, "ppt": 0, "socket_thermal": 0, "vr_thermal": 0,
         "hbm_thermal": 0}
    s.update(residencies)
    return s


def amd_gpu(scn, index, sku, bdf, serial, *, hotspot=52, mem_temp=None, util=0, mem_util=0, used_mib=None,
            power_w=None, gfx=None, numa=0, affinity=(), processes=(), ras=None, event_state=None,
            bad_pages=None, xgmi_down=(), xgmi_error=0, throttle=None, partition=("SPX", "NPS1"), xcps=(),
            render_minor=None, card=None, pcie=None, hive=AMD_HIVE):
    s = AMD_SKU[sku]
    total = s["vram_gib"] * 1024 * MIB
    used = (used_mib if used_mib is not None else 283) * MIB
    if power_w is None:
        power_w = 142 if util == 0 else int(s["power_w"] * 0.86)
    if gfx is None:
        gfx = 132 if util == 0 else s["gfx_max"]
    uid_hex = amd_unique_id(f"{scn}/{index}")
    render = render_minor if render_minor is not None else 128 + index
    bus = int(bdf[5:7], 16)
    crit, emergency, mem_crit = s["crit"]
    mi300 = s["ras"] == "aca"
    n_kfd = max(1, len(xcps))
    kfd = []
    for k in range(n_kfd):
        kfd.append({"node": 2 + index * n_kfd + k, "gpu_id": kfd_gpu_id(f"{scn}/{index}/{k}"),
                    "gfx_target_version": s["gfx"], "simd_count": s["simd"] // n_kfd,
                    "drm_render_minor": render if k == 0 else xcps[k]["render_minor"],
                    "location_id": (bus << 8) | k, "hive_id": hive if s["xgmi_links"] else 0,
                    "num_xcc": s["xcc"] // n_kfd})
    samples = throttle or [throttle_sample(918_441_200), throttle_sample(918_442_200)]
    metrics = {"version": s["metrics"], "pcie_l0_to_recov_count_acc": 0, "pcie_replay_count_acc": 0,
               "pcie_nak_sent_count_acc": 0, "pcie_nak_rcvd_count_acc": 0}
    if s["metrics"] >= "1.4":
        metrics["throttle_samples"] = samples
    links = [{"link": n, "active": n not in xgmi_down,
              "read_kb": 0 if util == 0 else 812_004_112 + n * 1_117, "write_kb": 0 if util == 0 else 809_112_640 + n * 977}
             for n in range(s["xgmi_links"])]
    xgmi = {"hive_id": hive, "device_id": int(uid_hex[:12], 16), "physical_id": index % 8, "links": links,
            "link_width": 16, "link_speed_gbps": 32, "error_count": xgmi_error} if s["xgmi_links"] else NS_
    # No debugfs in the scenarios: the threshold is the analysis's, by the kernel's rule.
    bp = {"reserved": 0, "pending": 0, "unreservable": 0, "first_pages": [], "threshold": None}
    bp.update(bad_pages or {})
    pcie_f = {"max_link_gen": 5 if mi300 else 4, "gpu_max_link_gen": 5 if mi300 else 4, "max_link_width": 16,
              "current_link_gen": 5 if mi300 else 4, "current_link_width": 16, "replay_counter": 0,
              "aer": {"correctable": 0, "nonfatal": 0, "fatal": 0}}
    pcie_f.update(pcie or {})
    amd = {
        "card": card or f"card{index + 1}",
        "render_minor": render,
        "unique_id": uid_hex,
        "board_type": s["board"],
        "mp0_version": AMD_IP[sku][0],
        **({"umc_version": AMD_IP[sku][1]} if AMD_IP[sku][1] else {}),
        "kfd_nodes": kfd,
        "partition": {"compute": partition[0], "memory": partition[1], "xcps": list(xcps)} if mi300 else NS_,
        "ras": {"features_mask": 0x3fff if mi300 else 0x1fff, "blocks": ras_blocks(s["ras"], ras)},
        "bad_pages": bp,
        "xgmi": xgmi,
        "metrics": metrics,
        "edge_temp_c": hotspot - 9 if s["edge"] else err("not_found", "MI300-class GPUs have no edge sensor"),
    }
    if mi300:
        amd["ras"]["event_state"] = event_state or {"seqno": 0, "fatal": 0, "poison_creation": 0,
                                                    "poison_consumption": 0}
    ns_msg = lambda what: err("not_supported", f"{what}: NVIDIA only")  # noqa: E731
    g = {
        "index": index,
        "vendor": "amd",
        "name": s["name"],
        "uuid": uid_hex,
        "serial": serial,
        "board_part_number": f"102-{s['devid'].upper()}-00",
        "pci_bus_id": bdf,
        "pci_device_id": (int(s["devid"], 16) << 16) | 0x1002,
        "vbios_version": s["vbios"],
        "architecture": s["arch"],
        "cuda_compute_capability": NS_,
        "memory": {"total_bytes": total, "used_bytes": used, "free_bytes": total - used},
        "mig_mode": NS_,
        "persistence_mode": NS_,
        "compute_mode": NS_,
        "pcie": pcie_f,
        "nvlinks": [],
        "thermal": {
            "gpu_temp_c": hotspot,
            "memory_temp_c": mem_temp if mem_temp is not None else hotspot - 6,
            "shutdown_threshold_c": emergency,
            "slowdown_threshold_c": crit,
            "gpu_max_threshold_c": NS_,
            "memory_max_threshold_c": mem_crit,
        },
        "fan_speed_pct": NS_,
        "power": {"usage_mw": power_w * 1000, "enforced_limit_mw": s["power_w"] * 1000,
                  "default_limit_mw": s["power_w"] * 1000, "max_limit_mw": s["power_w"] * 1000},
        "utilization": {"gpu_pct": util, "memory_pct": mem_util},
        "clocks": {"sm_mhz": gfx, "sm_max_mhz": s["gfx_max"], "graphics_mhz": gfx, "graphics_max_mhz": s["gfx_max"],
                   "memory_mhz": s["mem_max"] if util else 900, "memory_max_mhz": s["mem_max"]},
        "performance_state": NS_,
        "clocks_event_reasons": NS_,
        "clocks_event_durations_ns": {k: NS_ for k in ("sw_power_cap", "sw_thermal_slowdown", "hw_thermal_slowdown",
                                                       "hw_power_brake_slowdown", "sync_boost")},
        "ecc": {k: err("not_supported", "AMD: see amd.ras and amd.bad_pages") for k in (
            "mode", "volatile_corrected", "volatile_uncorrected", "aggregate_corrected", "aggregate_uncorrected",
            "retired_pages", "remapped_rows", "row_remapper_histogram", "sram_threshold_exceeded")},
        "recovery_action": NS_,
        "fabric": NS_,
        "processes": list(processes),
        "numa_node": numa,
        "cpu_affinity": list(affinity),
        "amd": amd,
    }
    g["ecc"]["by_location"] = []
    return g


def amd_driver(bus, devid, *, param=-1, unbound=()):
    return {
        "version": AMD_DRIVER_VERSION,
        "ras_enable": -1,
        "ras_mask": 0xFFFFFFFF,
        "bad_page_threshold_param": param,
        "rocm_version": AMD_ROCM_VERSION,
        "pci_functions": [{"bdf": b, "device_id": devid, "driver": None if b in unbound else "amdgpu"} for b in bus],
    }


def amd_boot_lines(bus, devid, hive=AMD_HIVE, xgmi=True):
    """What amdgpu prints at load for each GPU (formats: amdgpu_drv.c, kfd_device.c, amdgpu_xgmi.c, drm_drv.c)."""
    out = [(4.118220, 6, "[drm] amdgpu kernel modesetting enabled."),
           (4.118301, 6, "amdgpu: Virtual CRAT table created for CPU")]
    t = 4.9
    for i, b in enumerate(bus):
        out.append((t, 6, f"[drm] initializing kernel modesetting (IP DISCOVERY 0x1002:0x{devid.upper()} 0x1002:0x{devid.upper()} 0x00)."))
        if xgmi:
            out.append((t + 0.52, 6, f"amdgpu {b}: amdgpu: XGMI: Add node {i}, hive 0x{hive:x}."))
        out.append((t + 0.81, 6, f"kfd kfd: amdgpu: added device 1002:{devid}"))
        out.append((t + 0.83, 6, f"[drm] Initialized amdgpu 3.61.0 20150101 for {b} on minor {i + 1}"))
        t += 1.37
    return out


AMD_DISTRACTORS = [d for d in DISTRACTORS if "drm_fb_helper" not in d[2]]


def amd_node(scn, hostname, gpus, *, kernel_log, uptime=4 * 86400 + 5120, host_processes=(), cpus=192,
             driver_facts=None, pod_res=None, logs=None):
    facts = {
        "host": host(hostname, uptime, cpus, kernel=AMD_KERNEL),
        # No NVIDIA driver on an AMD node: what node-probe reports when NVML does not load.
        "driver": {"driver_version": err("not_found", "no NVIDIA driver: libnvidia-ml.so.1 not found"),
                   "cuda_driver_version": err("not_found"), "nvml_version": err("not_found")},
        "device_count": len(gpus),
        "gpus": gpus,
        "topology": [],
        "kernel_log": kernel_log,
        "host_processes": list(host_processes),
        "services": [],
        "amd_driver": driver_facts,
    }
    if pod_res:
        facts["pod_resources"] = pod_res
    if logs:
        facts["kubelet_logs"] = logs
    return facts


AMD_POD = "a7d3c2e1-4f5b-4c6d-9e8f-0a1b2c3d4e5f"


def mi_node(scn, hostname, sku="mi300x", *, busy=True, per_gpu=None, extra_log=(), uptime=4 * 86400 + 5120,
            driver_facts=None, partition=("SPX", "NPS1"), xcps_per_gpu=0):
    """Eight OAM GPUs of one XGMI hive on a UBB board (two sockets), each with its keyword overrides."""
    gpus, hprocs = [], []
    s = AMD_SKU[sku]
    for i, bdf in enumerate(MI300_BUS):
        kw = dict(temp_load(i, busy))
        kw.update((per_gpu or {}).get(i, {}))
        util = kw.pop("util", 100 if busy else 0)
        procs = kw.pop("processes", None)
        if procs is None:
            procs = [proc(52110 + i * 9, int(s["vram_gib"] * 1024 * 0.84))] if util else []
        for p in procs:
            hprocs.append(host_proc(p["pid"], "python3",
                                    f"/opt/conda/bin/python3 -u train.py --config llama3-405b.yaml --local-rank {i}",
                                    AMD_POD, container_id(f"{scn}/trainer"), age=uptime - 7200))
        xcps = []
        if xcps_per_gpu:
            for k in range(xcps_per_gpu):
                n = i * xcps_per_gpu + k
                xcps.append({"name": f"amdgpu_xcp_{n}", "render_minor": 136 + n,
                             "gpu_id": kfd_gpu_id(f"{scn}/{i}/{k}")})
        used = kw.pop("used_mib", int(s["vram_gib"] * 1024 * 0.85) if util else 283)
        g = amd_gpu(scn, i, sku, bdf, f"692325{i:02d}{hashlib.sha256(scn.encode()).hexdigest()[:4].upper()}",
                    util=util, mem_util=min(util, 71), used_mib=used, numa=0 if i < 4 else 1,
                    affinity=MI300_AFFINITY[0 if i < 4 else 1], processes=procs, partition=partition,
                    xcps=xcps, **kw)
        gpus.append(g)
    log = amd_boot_lines(MI300_BUS, s["devid"]) + AMD_DISTRACTORS + list(extra_log)
    log.sort(key=lambda r: r[0])
    return amd_node(scn, hostname, gpus, kernel_log=dmesg(log), uptime=uptime, host_processes=hprocs,
                    driver_facts=driver_facts or amd_driver(MI300_BUS, s["devid"]))


def temp_load(i, busy):
    if not busy:
        return dict(hotspot=41 + i % 3)
    return dict(hotspot=71 + (i * 3) % 7)


def scn_mi300x_healthy():
    return mi_node("mi300x-healthy", "mi300x-01")


def scn_mi325x_healthy():
    return mi_node("mi325x-healthy", "mi325x-04", sku="mi325x")


def scn_mi355x_healthy():
    return mi_node("mi355x-healthy", "mi355x-02", sku="mi355x")


def scn_mi300x_umc_ue_poison():
    """GPU 3 hit an uncorrectable HBM error that a kernel then read (poison consumption): the driver
    retired the page and mode-1 reset the hive; the job died with it. Formats: amdgpu_ras.c, umc_v12_0.c,
    kfd_int_process_v9.c, amdgpu_device.c [K1][K2][K5]; `{N}` is the RAS event number [K1][K8]. The log
    keeps one line per step (not the "in total", per-instance and second reset-method lines a real one
    also has) so that analyze_xid_errors' text stays in its 12 KiB budget: with them it renders 13.6 KiB,
    the events' catalog text repeated in the details (a renderer change is due)."""
    b = MI300_BUS[3]
    t = 301822.0
    log = [
        (t + 0.000112, 4, f"amdgpu {b}: {{1}}socket: 3, die: 1, 1 new deferred hardware errors detected in umc block"),
        (t + 0.000140, 4, f"amdgpu {b}: amdgpu: Poison is created"),
        (t + 0.118221, 3, f"amdgpu {b}: {{1}}poison is consumed by client 12, kick off gpu reset flow"),
        (t + 0.121002, 4, f"amdgpu {b}: amdgpu: GPU reset begin!"),
        (t + 0.402118, 3, f"amdgpu {b}: {{1}}socket: 3, die: 1, 1 new uncorrectable hardware errors detected in umc block"),
        (t + 0.402190, 4, f"amdgpu {b}: amdgpu: Error Address(PA):0x3a81c3000  Row:0x1d40 Col:0x0  Bank:0xa Channel:0x5"),
        (t + 0.518804, 6, f"amdgpu {b}: amdgpu: Saved 1 pages to EEPROM table."),
        (t + 0.611210, 6, f"amdgpu {b}: amdgpu: MODE1 reset"),
        (t + 2.913110, 6, f"amdgpu {b}: amdgpu: GPU reset succeeded, trying to resume"),
        (t + 4.101872, 6, f"amdgpu {b}: amdgpu: GPU reset(1) succeeded!"),
        (t + 4.990113, 6, "python3[52137]: segfault at 0 ip 00007f3a11c2b0d0 sp 00007ffd2b1e8c10 error 4 in libamdhip64.so.6[7f3a11a00000+3c6000]"),
    ]
    bad = {
        3: dict(ras={"umc": {"ue": 1, "de": 1}},
                event_state={"seqno": 1, "fatal": 0, "poison_creation": 1, "poison_consumption": 1},
                bad_pages={"reserved": 1, "first_pages": [{"pfn": 0x3a81c3, "size": 4096, "flag": "R"}]}),
    }
    # The reset took the whole hive: every rank of the job died, the GPUs are idle.
    facts = mi_node("mi300x-umc-ue-poison", "mi300x-07", busy=False, per_gpu=bad, extra_log=log,
                    uptime=301822 + 1800)
    return facts


def scn_mi300x_bad_pages_near():
    """GPU 2 has retired 118 pages of its 128-page default threshold, three more pending: at the next
    boot the driver warns `RAS records:%u exceeds 90%% of threshold:%d` [K2]; still in service."""
    pages = [{"pfn": 0x1a2b000 + n * 0x1337, "size": 4096, "flag": "R"} for n in range(8)]
    bad = {2: dict(ras={"umc": {"ce": 412, "de": 121}},
                   bad_pages={"reserved": 118, "pending": 3, "first_pages": pages})}
    b = MI300_BUS[2]
    log = [(8.611020, 4, f"amdgpu {b}: amdgpu: RAS records:118 exceeds 90% of threshold:128")]
    return mi_node("mi300x-bad-pages-near", "mi300x-12", per_gpu=bad, extra_log=log, uptime=9 * 86400)


def scn_mi300x_bad_pages_rma():
    """GPU 5 has retired 131 pages, past its 128-page default threshold: the driver logs that the records
    exceed the threshold and points at AMD's Service Action Guide (an RMA) [K1][K2]. With the default
    threshold (-1) it keeps running."""
    pages = [{"pfn": 0x2f00000 + n * 0x2a1, "size": 4096, "flag": "R"} for n in range(8)]
    bad = {5: dict(ras={"umc": {"ce": 977, "de": 131, "ue": 2}},
                   bad_pages={"reserved": 131, "first_pages": pages})}
    b = MI300_BUS[5]
    log = [
        (8.702114, 3, f"amdgpu {b}: amdgpu: RAS records:131 exceed threshold:128"),
        (8.702121, 3, f"amdgpu {b}: amdgpu: Please consult AMD Service Action Guide (SAG) for appropriate service procedures"),
    ]
    return mi_node("mi300x-bad-pages-rma", "mi300x-15", per_gpu=bad, extra_log=log, uptime=2 * 86400 + 1400)


def scn_mi300x_xgmi_link_down():
    """GPU 4's XGMI link 2 is down (`gpu_metrics.xgmi_link_status[2] = 0`), with CRC errors on the WAFL/XGMI
    block and the driver's PCS error lines [K5 amdgpu_xgmi.c]. The job still runs, slower across that link."""
    b = MI300_BUS[4]
    bad = {4: dict(xgmi_down=(2,), xgmi_error=14, ras={"xgmi_wafl": {"ce": 2210}})}
    log = [
        (152004.118002, 4, f"amdgpu {b}: amdgpu: XGMI PCS CRCErr detected"),
        (152004.118119, 4, f"amdgpu {b}: amdgpu: XGMI PCS TrainingErr detected"),
    ]
    return mi_node("mi300x-xgmi-link-down", "mi300x-09", per_gpu=bad, extra_log=log, uptime=152004 + 3600)


def scn_mi300x_ring_timeout():
    """GPU 6's compute ring hangs again and again: a ring timeout, a mode-1 reset, the job restarts and hangs
    the same ring (amdgpu_job.c [K4], amdgpu_device.c [K5]). The facts look healthy: only the kernel log shows it."""
    b = MI300_BUS[6]
    log = []
    t = 64002.0
    for n in range(1, 4):
        log += [
            (t, 3, f"amdgpu {b}: [drm] *ERROR* ring comp_1.2.0 timeout, signaled seq={1041 * n}, emitted seq={1041 * n + 3}"),
            (t + 0.000041, 3, f"amdgpu {b}: [drm] *ERROR* Process information: process python3 pid {52164 + n} thread python3 pid {52170 + n}"),
            (t + 0.002110, 4, f"amdgpu {b}: amdgpu: GPU reset begin!"),
            (t + 0.310004, 6, f"amdgpu {b}: amdgpu: MODE1 reset"),
            (t + 2.701995, 6, f"amdgpu {b}: amdgpu: GPU reset succeeded, trying to resume"),
            (t + 3.880012, 6, f"amdgpu {b}: amdgpu: GPU reset({n}) succeeded!"),
        ]
        t += 611.2
    return mi_node("mi300x-ring-timeout", "mi300x-21", extra_log=log, uptime=64002 + 2200,
                   per_gpu={6: dict(util=100, processes=[proc(52168, 160_000)])})


def scn_mi300x_thermal_throttle():
    """GPU 6 at its 100 C hotspot limit under load: the SMU's socket-thermal and HBM-thermal residency
    accumulators grow between the probe's two reads, the clock is held at 1420 of 2100 MHz and the driver
    warns `GPU is throttled ... SOC and HBM.` [K5 smu_v13_0_6_ppt.c]."""
    b = MI300_BUS[6]
    samples = [throttle_sample(918_441_200, socket_thermal=41_200_118, hbm_thermal=11_020_400),
               throttle_sample(918_442_200, socket_thermal=41_201_118, hbm_thermal=11_021_020)]
    hot = {6: dict(hotspot=100, mem_temp=97, gfx=1420, power_w=611, throttle=samples)}
    log = [(412200.331022, 4, f"amdgpu {b}: amdgpu: WARN: GPU is throttled, expect performance decrease. SOC and HBM.")]
    return mi_node("mi300x-thermal-throttle", "mi300x-03", per_gpu=hot, extra_log=log, uptime=412200 + 900)


def scn_mi300x_cpx():
    """An MI300X node in CPX/NPS4: each GPU is eight compute partitions with their own KFD node and render
    node (`amdgpu_xcp_<n>`), 64 in all, as the device plugin advertises them (`amd.com/gpu` per partition)."""
    return mi_node("mi300x-cpx", "mi300x-cpx-02", busy=False, partition=("CPX", "NPS4"), xcps_per_gpu=8)


def scn_mi250x_legacy_ras():
    """An MI250X node (4 OAMs = 8 GCDs, each its own GPU) with the pre-ACA RAS files `<block>_err_count`:
    GCD 3 has counted a few correctable HBM errors, nothing uncorrectable. gpu_metrics v1.3 has no
    throttle residencies."""
    scn = "mi250x-legacy-ras"
    bus = ["0000:29:00.0", "0000:2c:00.0", "0000:2f:00.0", "0000:32:00.0",
           "0000:a9:00.0", "0000:ac:00.0", "0000:af:00.0", "0000:b2:00.0"]
    gpus, hp = [], []
    for i, b in enumerate(bus):
        pid = 33120 + i
        gpus.append(amd_gpu(scn, i, "mi250x", b, f"PCB0471{i:02d}61", hotspot=64 + i % 4, util=96, mem_util=58,
                            used_mib=58_112, power_w=498 if i % 2 == 0 else 0, numa=i // 4,
                            affinity=cpu_ranges((0, 63)) if i < 4 else cpu_ranges((64, 127)),
                            processes=[proc(pid, 57_800)], partition=None,
                            ras={"umc": {"ce": 7}} if i == 3 else None, pcie={"current_link_gen": 4}))
        hp.append(host_proc(pid, "python3", f"python3 train_gpt.py --local_rank {i}", AMD_POD,
                            container_id(f"{scn}/gpt"), age=30000))
    log = amd_boot_lines(bus, "740c") + AMD_DISTRACTORS
    log.sort(key=lambda r: r[0])
    return amd_node(scn, "mi250x-05", gpus, kernel_log=dmesg(log), host_processes=hp, cpus=128,
                    driver_facts=amd_driver(bus, "740c"), uptime=31000)


def scn_mixed_h100_mi210():
    """A workstation-class node with one GPU of each vendor: an H100 PCIe (NVML's GPU 0) and an MI210 (the
    probe's GPU 1, after the NVIDIA GPUs). Both idle, both healthy; each is read by its own vendor's rules."""
    scn = "mixed-h100-mi210"
    nv = gpu(scn, 0, "h100-pcie", "0000:17:00.0", "1651723009910", numa=0, affinity=cpu_ranges((0, 31)))
    amd = amd_gpu(scn, 1, "mi210", "0000:ca:00.0", "PCB0530C711", hotspot=38, numa=0,
                  affinity=cpu_ranges((0, 31)), partition=None, card="card1", render_minor=128,
                  pcie={"max_link_gen": 4, "gpu_max_link_gen": 4, "current_link_gen": 1})
    log = boot_lines("570.124.06", "Wed Feb 26 23:53:15 UTC 2025") + \
        amd_boot_lines(["0000:ca:00.0"], "740f", xgmi=False) + DISTRACTORS[:3]
    log.sort(key=lambda r: r[0])
    return {
        "host": host("ws-mixed-01", 2 * 86400, 64, kernel="6.8.0-48-generic"),
        "driver": driver("570.124.06", 12080),
        "device_count": 2,
        "gpus": [nv, amd],
        "topology": [],
        "kernel_log": dmesg(log),
        "host_processes": [],
        "services": services(fm=False),
        "amd_driver": amd_driver(["0000:ca:00.0"], "740f"),
    }


# ------------------------------------------------------------------------------------ Intel Gaudi

# Facts as the habanalabs driver's sysfs prints them (Linux 6.12 drivers/accel/habanalabs; the same
# printers tests/support/gaudi_tree.rs writes a host tree from), each value's printer cited where it is set.
# An HLS-Gaudi2 server: eight Gaudi 2 OAMs (PCI device id 0x1020, `PCI_IDS_GAUDI2`, common/habanalabs_drv.c:66)
# on two sockets. BDFs, versions, counts, pids and temperatures are invented; only their formats are the
# kernel's. What sysfs does not show (UUID, serial, memory use, utilization, ECC counters, HBM row
# replacement: HLML and `hl-smi` read those from the firmware or the INFO ioctl, common/habanalabs_ioctl.c:1125)
# is an inline error, as node-probe reports it.
GAUDI2_BUS = ["0000:19:00.0", "0000:1a:00.0", "0000:33:00.0", "0000:34:00.0",
              "0000:9a:00.0", "0000:9b:00.0", "0000:b3:00.0", "0000:b4:00.0"]
GAUDI_KERNEL = "6.8.0-51-generic"
GAUDI_POD = "5b0e7c1d-2a3f-4e6d-8c9b-1f2e3d4c5b6a"


def gaudi_not_in_sysfs(what):
    return err("not_supported",
               f"the habanalabs driver shows no {what} in sysfs (HLML and hl-smi read it from the firmware)")


# Gaudi 3 (HL-325L OAM) is not in Linux 6.12: Intel's out-of-tree habanalabs driver runs it with the same common
# sysfs.c printers. Its PCI device id 0x1060 is one of the ids HLML's Go bindings count as the Gaudi family
# (gohlml v1.14.0 hlml.go `getDeviceName`: 1060, 1061, 1062); its `device_type` string and firmware names are
# those tests/support/gaudi_tree.rs writes, not checked against a driver (no registry serves it).
GAUDI_GEN = {
    2: dict(name="Intel Gaudi 2", card="HL-225", device_id=0x1020, device_type="GAUDI2", max_power_mw=600000,
            clk_max=1650, firmware={
                "cpucp": "1.17.0-fw-51.2.0-sec-9",
                "cpucp_kernel": "Linux gaudi2 5.10.18-hl-gaudi2-1.17.0-fw-51.2.0-sec-9",
                "uboot": "U-Boot 2021.04-hl-gaudi2-1.17.0-fw-51.2.0-sec-9",
                "preboot_btl": "Preboot version hl-gaudi2-1.17.0-fw-51.2.0-sec-9 (Aug 01 2024 - 10:11:12)",
                "fuse": "fuse-gaudi2-0x5a",
                "thermal": "thermal-gaudi2-3.2.1",
                "fw_os": "fwos-gaudi2-2.1.0",
                "cpld": "0x66012e3f00000010",  # cpld_ver_show `0x%08x%08x` (common/sysfs.c:145)
                "vrm": "0x45",  # vrm_ver_show `%#04x` (common/sysfs.c:106)
            }),
    3: dict(name="Intel Gaudi 3", card="HL-325L", device_id=0x1060, device_type="GAUDI3", max_power_mw=900000,
            clk_max=1900, firmware={
                "cpucp": "1.21.0-fw-59.1.1-sec-3",
                "cpucp_kernel": "Linux gaudi3 6.1.41-hl-gaudi3-1.21.0-fw-59.1.1-sec-3",
                "uboot": "U-Boot 2023.01-hl-gaudi3-1.21.0-fw-59.1.1-sec-3",
                "preboot_btl": "Preboot version hl-gaudi3-1.21.0-fw-59.1.1-sec-3 (Mar 02 2025 - 08:09:10)",
                "fuse": "fuse-gaudi3-0x61",
                "thermal": "thermal-gaudi3-4.0.2",
                "fw_os": "fwos-gaudi3-3.0.0",
                "cpld": "0x6790aa0100000021",
                "vrm": "0x52",
            }),
}


def gaudi_dev(scn, index, bdf, *, status="Operational", hard_resets=0, temp=38, power_w=97, clk=1400,
              numa=0, pid=None, gen=2):
    # status: hdev->status[] (common/habanalabs_drv.c:468-475) with its first letter upper-cased by
    # status_show (common/sysfs.c:298-309): "Operational", "In reset", "Disabled", "Needs reset", ...
    # A device that is not operational answers -ENODEV to the clock and power printers (common/sysfs.c:18-19,
    # :61-62, :334-335) and to every hwmon read (common/hwmon.c:251-252): read(2) fails with ENODEV.
    up = status == "Operational"
    enodev = err("unknown", "No such device (os error 19)")
    g = GAUDI_GEN[gen]

    def live(v):
        return v if up else enodev
    return {
        "index": index,
        "vendor": "intel",
        "name": g["name"],
        "uuid": gaudi_not_in_sysfs("UUID"),
        "serial": gaudi_not_in_sysfs("serial number"),
        "memory": gaudi_not_in_sysfs("memory size or use"),
        # hwmon's name is the firmware's card name (common/hwmon.c:883-884).
        "board_part_number": g["card"],
        "pci_bus_id": bdf,
        "pci_device_id": (g["device_id"] << 16) | 0x1DA3,
        # hwmon channels (Documentation/hwmon/sysfs-interface.rst): temp1_input millidegrees, power1_input uW.
        "thermal": {"gpu_temp_c": live(temp)},
        "power": {"usage_mw": live(power_w * 1000), "enforced_limit_mw": live(g["max_power_mw"])},
        # clk_cur_freq_mhz / clk_max_freq_mhz (common/sysfs.c:68, :27).
        "clocks": {"sm_mhz": live(clk), "sm_max_mhz": live(g["clk_max"])},
        # One compute context per device: a second open is -EBUSY (common/habanalabs_drv.c:232-236).
        "processes": [{"pid": pid, "kind": "compute"}] if pid else [],
        "numa_node": numa,
        "gaudi": {
            "device": f"accel{index}",
            "device_type": g["device_type"],  # device_type_show (common/sysfs.c:266)
            "status": status,
            "hard_reset_count": hard_resets,  # hard_reset_cnt_show `%d` (common/sysfs.c:325)
            # soft_reset_cnt exists only where allow_inference_soft_reset (common/sysfs.c:533): not a Gaudi.
            "soft_reset_count": err("not_found"),
            "module_id": 7 - index,  # module_id_show: cpucp_info.card_location (common/sysfs.c:414)
            "security_enabled": True,  # security_enabled_show `%d` (common/sysfs.c:406)
            "max_power_mw": live(g["max_power_mw"]),  # max_power_show `%lu`, milliwatts (common/sysfs.c:341)
            "firmware": dict(g["firmware"]),
        },
    }


def gaudi_boot_lines(bus):
    """What habanalabs prints as each device is added: dev_notice on the PCI device (`habanalabs <pci>: `,
    HL_NAME common/habanalabs.h:37), `Successfully added device %s to habanalabs driver` (common/device.c:2427)."""
    return [(6.201004 + i * 0.911, 5, f"habanalabs {b}: Successfully added device {b} to habanalabs driver")
            for i, b in enumerate(bus)]


GAUDI3_BUS = ["0000:21:00.0", "0000:22:00.0", "0000:43:00.0", "0000:44:00.0",
              "0000:a1:00.0", "0000:a2:00.0", "0000:c3:00.0", "0000:c4:00.0"]


def gaudi2_node(scn, hostname, *, busy=True, per_dev=None, extra_log=(), uptime=5 * 86400 + 3110, gen=2):
    """Eight Gaudi 2 (or 3) devices on one board, a training job holding each (`/dev/accel/accel<n>`)."""
    devs, hprocs = [], []
    bus = GAUDI2_BUS if gen == 2 else GAUDI3_BUS
    for i, b in enumerate(bus):
        kw = (dict(temp=61 + (i * 3) % 7, power_w=410 + i * 7, clk=GAUDI_GEN[gen]["clk_max"]) if busy
              else dict(temp=36 + i % 3))
        kw.update((per_dev or {}).get(i, {}))
        pid = kw.pop("pid", 61200 + i * 11 if busy else None)
        if pid:
            hprocs.append(host_proc(pid, "python3",
                                    f"python3 -u run_clm.py --model_name_or_path meta-llama/Llama-2-70b-hf "
                                    f"--use_habana --local_rank {i}",
                                    GAUDI_POD, container_id(f"{scn}/trainer"), age=uptime - 5400))
        devs.append(gaudi_dev(scn, i, b, numa=0 if i < 4 else 1, pid=pid, gen=gen, **kw))
    log = gaudi_boot_lines(bus) + AMD_DISTRACTORS + list(extra_log)
    log.sort(key=lambda r: r[0])
    return {
        "host": host(hostname, uptime, 160, kernel=GAUDI_KERNEL),
        # No NVIDIA driver on a Gaudi node: what node-probe reports when NVML does not load.
        "driver": {"driver_version": err("not_found", "no NVIDIA driver: libnvidia-ml.so.1 not found"),
                   "cuda_driver_version": err("not_found"), "nvml_version": err("not_found")},
        "device_count": len(devs),
        "gpus": devs,
        "topology": [],
        "kernel_log": dmesg(log),
        "host_processes": hprocs,
        "services": [],
    }


def scn_mixed_h100_gaudi2():
    """A development node with one device of two vendors: an H100 PCIe (NVML's GPU 0, idle) and a Gaudi 2
    (the probe's GPU 1, after the NVIDIA GPUs; its class device `accel0`) that a job holds. Both healthy;
    each is read by its own vendor's rules, and the Gaudi's process is the holder of `/dev/accel/accel0`."""
    scn = "mixed-h100-gaudi2"
    nv = gpu(scn, 0, "h100-pcie", "0000:17:00.0", "1651723009911", numa=0, affinity=cpu_ranges((0, 31)))
    pid = 48811
    hl = gaudi_dev(scn, 1, "0000:ca:00.0", temp=57, power_w=388, clk=GAUDI_GEN[2]["clk_max"], pid=pid)
    hl["gaudi"]["device"] = "accel0"
    hl["gaudi"]["module_id"] = 0
    hprocs = [host_proc(pid, "python3", "python3 -u train.py --use_habana", GAUDI_POD,
                        container_id(f"{scn}/trainer"), age=7200)]
    log = boot_lines("570.124.06", "Wed Feb 26 23:53:15 UTC 2025") + gaudi_boot_lines(["0000:ca:00.0"]) + \
        DISTRACTORS[:3]
    log.sort(key=lambda r: r[0])
    return {
        "host": host("ws-mixed-02", 2 * 86400, 64, kernel=GAUDI_KERNEL),
        "driver": driver("570.124.06", 12080),
        "device_count": 2,
        "gpus": [nv, hl],
        "topology": [],
        "kernel_log": dmesg(log),
        "host_processes": hprocs,
        "services": services(fm=False),
    }


def scn_gaudi2_healthy():
    return gaudi2_node("gaudi2-healthy", "gaudi2-01")


def scn_gaudi2_hbm_ecc():
    """Device 2 read a double-bit HBM error: the firmware's HBM SEI event (gaudi2_print_event,
    gaudi2/gaudi2.c:9398, its name from include/gaudi2/gaudi2_async_ids_map_extended.h:1131), the read-error
    lines (gaudi2.c:9283, :9290, :9308: a DERR asks for a hard reset), then the hard reset (common/device.c:1741,
    :1974). The device is back and operational with one more hard reset; the job on it died. The row the
    firmware will replace (pending rows) is not in sysfs or the kernel log: HLML and `hl-smi -d ROW_REPLACEMENT`
    read it through the INFO ioctl (common/habanalabs_ioctl.c:1125-1128), which this probe does not call."""
    b = GAUDI2_BUS[2]
    t = 402211.0
    log = [
        (t, 3, f"habanalabs {b}: HBM0_MC0_SEI_NON_SEVERE: System Non-critical Error Interrupt - HBM(0) MC(0) MC_CH(3) MC_PC(1). Error cause: SEI read data error"),
        (t + 0.000021, 3, f"habanalabs {b}: READ ERROR count: ECC SERR: 0, ECC DERR: 1, RD_PARITY: 0"),
        (t + 0.000030, 3, f"habanalabs {b}: READ ERROR address: sid(0), bg(2), ba(1), col(17), row(5121)"),
        (t + 0.000038, 3, f"habanalabs {b}: Beat2 ECC DERR: DM: 0x0, Syndrome: 0x8a"),
        (t + 0.004410, 6, f"habanalabs {b}: Going to reset device"),
        (t + 0.731002, 6, f"habanalabs {b}: Killing user process pid=61222"),
        (t + 9.118004, 6, f"habanalabs {b}: Successfully finished resetting the {b} device"),
    ]
    per = {2: dict(hard_resets=1, pid=None, temp=40)}
    node = gaudi2_node("gaudi2-hbm-ecc", "gaudi2-07", per_dev=per, extra_log=log, uptime=402211 + 1200)
    # This node has Intel's libhlml: the serials (the device plugin's ids), and what sysfs lacks (pyhlml
    # main.py hlmlDeviceGetTotalECCErrors, hlmlDeviceGetReplacedRowsPendingStatus): device 2's DERR counted
    # since the driver loaded, and on device 5, with no line in the log, single-bit errors whose rows wait for
    # the device's next reset to be replaced. Serials and versions invented.
    node["hlml"] = gaudi_hlml(GAUDI2_BUS, {2: dict(uncorrected=1), 5: dict(corrected=14, pending=True)})
    for g, d in zip(node["gpus"], node["hlml"]["devices"]):
        g["serial"] = d["serial"]
    return node


def gaudi_hlml(bus, per_dev):
    """libhlml's reading of the devices at `bus` (node-probe's `hlml` facts): a serial each, the module id
    sysfs shows (gaudi_dev's), ECC totals, rows pending, clocks throttle reasons and NIC ports (`nic`: the
    ports present, the external ones, the ones down) as `per_dev` says; no NIC port read where it says none."""
    devices = []
    for i, b in enumerate(bus):
        p = per_dev.get(i, {})
        ue = p.get("uncorrected", 0)
        devices.append({
            "index": i,
            "bus_id": b,
            "serial": f"AN{23140417 + i * 37:010d}",
            "module_id": 7 - i,
            "ecc": {"corrected_volatile": p.get("corrected", 0), "uncorrected_volatile": ue,
                    "corrected_aggregate": 2 + p.get("corrected", 0), "uncorrected_aggregate": ue},
            "replaced_rows_pending": p.get("pending", False),
            "nic_ports": [{"port": n, "external": n in p["nic"]["external"], "up": n not in p["nic"].get("down", ())}
                          for n in p["nic"]["ports"]] if "nic" in p else [],
            "clocks_throttle_reasons": p.get("throttle", 0),
        })
    return {"path": "/usr/lib/habanalabs/libhlml.so", "version": "1.17.0",
            "driver_version": "1.17.0-495", "devices": devices}


def scn_gaudi2_in_reset():
    """Device 5's heartbeat to its firmware failed (common/device.c:1140) and the driver is hard-resetting it
    (common/device.c:1741): sysfs `status` reads `In reset` while the reset runs; the job on it is gone."""
    b = GAUDI2_BUS[5]
    t = 88120.0
    log = [
        (t, 3, f"habanalabs {b}: Device heartbeat failed! PCI link is healthy"),
        (t + 0.000310, 6, f"habanalabs {b}: Going to reset device"),
        (t + 0.512004, 6, f"habanalabs {b}: Killing user process pid=61255"),
    ]
    per = {5: dict(status="In reset", pid=None)}
    return gaudi2_node("gaudi2-in-reset", "gaudi2-03", per_dev=per, extra_log=log, uptime=int(t) + 6)


def scn_gaudi2_malfunction():
    """Device 6 failed its hard reset after a lost heartbeat: the driver prints `Failed to reset! Device is NOT
    usable` (common/device.c:2015) and marks it malfunctioning, which sysfs prints as `Disabled`
    (common/habanalabs_drv.c:470, common/sysfs.c:298-309)."""
    b = GAUDI2_BUS[6]
    t = 230410.0
    log = [
        (t, 3, f"habanalabs {b}: Device heartbeat failed! PCI link is healthy"),
        (t + 0.000290, 6, f"habanalabs {b}: Going to reset device"),
        (t + 0.499120, 6, f"habanalabs {b}: Killing user process pid=61266"),
        (t + 31.002113, 3, f"habanalabs {b}: {b} Failed to reset! Device is NOT usable"),
    ]
    per = {6: dict(status="Disabled", pid=None)}
    return gaudi2_node("gaudi2-malfunction", "gaudi2-11", per_dev=per, extra_log=log, uptime=int(t) + 900)


def scn_gaudi3_healthy():
    return gaudi2_node("gaudi3-healthy", "gaudi3-01", gen=3)


def scn_gaudi3_thermal():
    """Device 3 of a Gaudi 3 board runs hot. The firmware's thermal events make the driver print `Clock
    throttling due to overheating` and, when it cools, `Thermal envelop is safe, back to optimal clock`
    (dev_info_ratelimited, common/device.c:2948, :2955); it is throttling again now: libhlml's current
    throttle reasons say THERMAL (pyhlml hlmlDeviceGetCurrentClocksThrottleReasons, `1 << 1`,
    pyhlml_types_generated.py:265) and its clock is below its peers'. Device 6 runs at its 900 W limit
    (POWER, `1 << 0`), as a device at full load may: information. Serials invented."""
    b = GAUDI3_BUS[3]
    t = 215000.0
    log = [
        (t, 6, f"habanalabs {b}: Clock throttling due to overheating"),
        (t + 412.2, 6, f"habanalabs {b}: Thermal envelop is safe, back to optimal clock"),
        (t + 1210.7, 6, f"habanalabs {b}: Clock throttling due to overheating"),
    ]
    per = {3: dict(temp=96, clk=1150), 6: dict(power_w=897)}
    node = gaudi2_node("gaudi3-thermal", "gaudi3-04", per_dev=per, extra_log=log, uptime=int(t) + 1500, gen=3)
    node["hlml"] = gaudi_hlml(GAUDI3_BUS, {3: dict(throttle=0x2), 6: dict(throttle=0x1)})
    for g, d in zip(node["gpus"], node["hlml"]["devices"]):
        g["serial"] = d["serial"]
    return node


def scn_gaudi3_nic_link_down():
    """A Gaudi 3 board whose NICs the RDMA core does not show (Intel's `habanalabs_ib` not loaded): only libhlml
    reads the links (pyhlml hlmlDeviceGetMacAddrInfo's port masks, hlmlDeviceNicGetLink). Each device has 24
    ports, three of them external (scale-out) by the library's mask; device 1's internal port 9 (a board link
    to another Gaudi) is down, and device 5's external port 22. Nothing in the kernel log; every device
    operational. Port numbers, masks and serials invented."""
    nic = dict(ports=range(24), external={20, 21, 22})
    node = gaudi2_node("gaudi3-nic-link-down", "gaudi3-06", uptime=98000, gen=3)
    per = {i: dict(nic=dict(nic)) for i in range(8)}
    per[1]["nic"]["down"] = {9}
    per[5]["nic"]["down"] = {22}
    node["hlml"] = gaudi_hlml(GAUDI3_BUS, per)
    for g, d in zip(node["gpus"], node["hlml"]["devices"]):
        g["serial"] = d["serial"]
    return node


def gaudi_pci_path(bdf):
    """A Gaudi below a root port of its own root complex (its sysfs path, root first; invented buses)."""
    b = int(bdf[5:7], 16)
    return [f"pci0000:{b - 1:02x}", f"0000:{b - 1:02x}:01.0", bdf]


def gaudi_roce(dev_index, bdf, numa, down=()):
    """A Gaudi's own scale-out RoCE ports: the NIC is on the Gaudi chip, so its RDMA device sits on the Gaudi's
    PCI function. Port files as the RDMA core prints them for any driver (Linux 6.12
    drivers/infiniband/core/sysfs.c: state_show `%d: %s`, phys_state_show, rate_show `%d%s Gb/sec (%s)`); the
    device name `hbl_<n>`, three ports a device and their 100 GbE rate are those of Intel's out-of-tree
    NIC driver as its public docs describe the HLS-Gaudi2 scale-out (3 of each device's 24 ports), not
    checked against its code (no registry serves it)."""
    eth = dict(layer="Ethernet", rate="100 Gb/sec (4X EDR)")
    ports = []
    for n in (1, 2, 3):
        p = ib_port(f"gaudi-roce/{dev_index}/{n}", state="down" if n in down else "up",
                    busy=n not in down, **eth)
        p["port"] = n
        ports.append(p)
    return rdma_device(f"hbl_{dev_index}", gaudi_pci_path(bdf), numa, ports, hca="Gaudi2", board="HL-225",
                       fw="1.17.0-fw-51.2.0-sec-9")


def scn_gaudi2_roce_port_down():
    """Device 4's scale-out RoCE port 2 is down (the switch port or cable): every rank of a multi-node job that
    routes through it stalls, though each device is operational and nothing is in the kernel log."""
    facts = gaudi2_node("gaudi2-roce-port-down", "gaudi2-05", uptime=310400)
    for i, g in enumerate(facts["gpus"]):
        g["pci_path"] = gaudi_pci_path(g["pci_bus_id"])
    facts["rdma"] = rdma([gaudi_roce(i, b, 0 if i < 4 else 1, down=(2,) if i == 4 else ())
                          for i, b in enumerate(GAUDI2_BUS)])
    return facts


# ------------------------------------------------------------------------------------ AWS Neuron

# Not written here: each is node-probe's own reading of a host tree written from aws-neuron-driver's printers
# (tests/support/neuron_scenarios.rs, file:line beside each value). `NEURON_SCENARIOS=write cargo test --workspace
# --test probe_neuron the_neuron_scenarios` writes them and, without the variable, checks them against the probe;
# this generator only keeps their format.
def probe_read(name):
    def read():
        with open(os.path.join(HERE, f"{name}.json")) as f:
            return json.load(f)
    return read


SCENARIOS = {
    "dgx-h100-healthy": scn_dgx_h100_healthy,
    "dgx-h100-xid79": scn_dgx_h100_xid79,
    "dgx-a100-row-remap-pending": scn_dgx_a100_remap_pending,
    "dgx-a100-row-remap-failure": scn_dgx_a100_remap_failure,
    "h100-xid48-dbe": scn_h100_xid48_dbe,
    "h100-thermal-slowdown": scn_h100_thermal_slowdown,
    "h100-power-brake": scn_h100_power_brake,
    "dgx-h100-nvlink-errors": scn_dgx_h100_nvlink_errors,
    "l40s-pcie-degraded": scn_l40s_pcie_degraded,
    "a100-mig": scn_a100_mig,
    "h100-zombie-process": scn_h100_zombie_process,
    "t4-single": scn_t4_single,
    "dgx-h100-ib-port-down": scn_dgx_h100_ib_port_down,
    "dgx-h100-ib-flapping": scn_dgx_h100_ib_flapping,
    "dgx-h100-ib-rate-degraded": scn_dgx_h100_ib_rate_degraded,
    "h100-roce-carrier-flaps": scn_h100_roce_carrier_flaps,
    "dgx-h100-straggler-brake": scn_dgx_h100_straggler_brake,
    "dgx-h100-pcie-downtrained": scn_dgx_h100_pcie_downtrained,
    "gb200-tray-dra": scn_gb200_tray_dra,
    "gb200-tray-fabric-degraded": scn_gb200_tray_fabric_degraded,
    "gb200-tray-imex-degraded": scn_gb200_tray_imex_degraded,
    "mi300x-healthy": scn_mi300x_healthy,
    "mi300x-umc-ue-poison": scn_mi300x_umc_ue_poison,
    "mi300x-bad-pages-near": scn_mi300x_bad_pages_near,
    "mi300x-bad-pages-rma": scn_mi300x_bad_pages_rma,
    "mi300x-xgmi-link-down": scn_mi300x_xgmi_link_down,
    "mi300x-ring-timeout": scn_mi300x_ring_timeout,
    "mi300x-thermal-throttle": scn_mi300x_thermal_throttle,
    "mi300x-cpx": scn_mi300x_cpx,
    "mi325x-healthy": scn_mi325x_healthy,
    "mi355x-healthy": scn_mi355x_healthy,
    "mi250x-legacy-ras": scn_mi250x_legacy_ras,
    "mixed-h100-mi210": scn_mixed_h100_mi210,
    "gaudi2-healthy": scn_gaudi2_healthy,
    "mixed-h100-gaudi2": scn_mixed_h100_gaudi2,
    "gaudi2-hbm-ecc": scn_gaudi2_hbm_ecc,
    "gaudi2-in-reset": scn_gaudi2_in_reset,
    "gaudi2-malfunction": scn_gaudi2_malfunction,
    "gaudi2-roce-port-down": scn_gaudi2_roce_port_down,
    "gaudi3-healthy": scn_gaudi3_healthy,
    "gaudi3-thermal": scn_gaudi3_thermal,
    "gaudi3-nic-link-down": scn_gaudi3_nic_link_down,
    "trn2-healthy": probe_read("trn2-healthy"),
    "trn2-hbm-ue": probe_read("trn2-hbm-ue"),
    "trn2-device-failed": probe_read("trn2-device-failed"),
}


def render(facts):
    text = json.dumps(facts, indent=1)
    # Keep number lists (CPU affinity, compute capability) on one line so files stay reviewable.
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    return text + "\n"


def main():
    # --check (tests/run-all.sh): the committed files are what this generator writes, byte for byte.
    check = sys.argv[1:] == ["--check"]
    stale = []
    for name, fn in SCENARIOS.items():
        path = os.path.join(HERE, f"{name}.json")
        text = render(fn())
        if check:
            try:
                same = open(path).read() == text
            except FileNotFoundError:
                same = False
            if not same:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit(f"src/scenarios: not what tests/support/generate_scenarios.py writes: {', '.join(stale)} "
                 "(run it and review the diff)")
    if check:
        print(f"generate_scenarios: {len(SCENARIOS)} scenarios match their files", file=sys.stderr)


if __name__ == "__main__":
    main()
