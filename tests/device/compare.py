#!/usr/bin/env python3
"""Compare node-probe's facts with nvidia-smi field by field, from the files capture.sh wrote.

Usage: compare.py CAPTURE_DIR [SUFFIX]   (SUFFIX: _idle, the default, or _busy)

Reads CAPTURE_DIR/smi_x{SUFFIX}.out (nvidia-smi -q -x), np_facts{SUFFIX}.out (node-probe facts),
smi_topo.out and smi_nvlink_s.out, and prints one line per field: match, close (a live value read a moment
apart), differs, or only one side has it. Exit status 1 when any field differs.
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

MIB = 1024 * 1024


def smi_mib(b):
    """nvidia-smi's MiB: to nearest, ties to even (Python's round)."""
    return round(b / MIB)


def num(text):
    """The leading number of an nvidia-smi value ('81559 MiB', '16x', '700.00 W'), None for N/A."""
    if text is None:
        return None
    m = re.match(r"\s*(-?[0-9.]+)", text)
    return float(m.group(1)) if m else None


def err(v):
    return isinstance(v, dict) and "error" in v


# nvmlClocksEventReasons bits and nvidia-smi's XML element for each.
REASONS = {
    0x1: "clocks_event_reason_gpu_idle",
    0x2: "clocks_event_reason_applications_clocks_setting",
    0x4: "clocks_event_reason_sw_power_cap",
    0x8: "clocks_event_reason_hw_slowdown",
    0x10: "clocks_event_reason_sync_boost",
    0x20: "clocks_event_reason_sw_thermal_slowdown",
    0x40: "clocks_event_reason_hw_thermal_slowdown",
    0x80: "clocks_event_reason_hw_power_brake_slowdown",
    0x100: "clocks_event_reason_display_clocks_setting",
}


class Table:
    def __init__(self):
        self.rows = []

    def add(self, field, smi, probe, verdict):
        self.rows.append((field, str(smi), str(probe), verdict))

    def eq(self, field, smi, probe, note=""):
        self.add(field, smi, probe, ("match" if smi == probe else "DIFFERS") + note)

    def near(self, field, smi, probe, tol):
        if smi is None or probe is None or err(probe):
            self.add(field, smi, probe, "DIFFERS")
        elif abs(float(smi) - float(probe)) <= tol:
            self.add(field, smi, probe, "match" if float(smi) == float(probe) else f"close (±{tol}, live)")
        else:
            self.add(field, smi, probe, f"DIFFERS (beyond ±{tol})")

    def na(self, field, smi, probe):
        """nvidia-smi N/A against an inline not_supported (or absent) reading."""
        ok = smi in (None, "N/A") and (probe is None or (err(probe) and probe["error"] == "not_supported"))
        self.add(field, smi, json.dumps(probe) if probe is not None else "-", "match (N/A)" if ok else "DIFFERS")

    def only(self, field, smi, probe):
        self.add(field, smi, probe, "only nvidia-smi" if probe == "-" else "only node-probe")

    def print(self):
        w = max(len(r[0]) for r in self.rows)
        for f, s, p, v in self.rows:
            print(f"{f:<{w}}  {v:<22}  smi={s[:40]:<40}  probe={p[:60]}")
        bad = [r for r in self.rows if r[3].startswith("DIFFERS")]
        print(f"\n{len(self.rows)} fields: {len(bad)} differ")
        return 1 if bad else 0


def compare(d, suffix):
    x = ET.parse(f"{d}/smi_x{suffix}.out").getroot()
    facts = json.load(open(f"{d}/np_facts{suffix}.out"))["facts"]
    t = Table()
    t.eq("driver_version", x.findtext("driver_version"), facts["driver"]["driver_version"])
    cuda = facts["driver"]["cuda_driver_version"]
    t.eq("cuda_version", x.findtext("cuda_version"), f"{cuda // 1000}.{cuda % 1000 // 10}")
    t.eq("device_count", int(x.findtext("attached_gpus")), facts["device_count"])
    for g, n in zip(x.findall("gpu"), facts["gpus"]):
        p = f"gpu{n['index']}."
        s = g.findtext
        t.eq(p + "name", s("product_name"), n["name"])
        t.eq(p + "uuid", s("uuid"), n["uuid"])
        t.eq(p + "serial", s("serial"), n["serial"])
        t.eq(p + "board_part_number", s("board_part_number"), n["board_part_number"])
        t.eq(p + "vbios_version", s("vbios_version"), n["vbios_version"])
        t.eq(p + "architecture", s("product_architecture"), n["architecture"])
        t.eq(p + "pci_bus_id", s("pci/pci_bus_id"), n["pci_bus_id"])
        t.eq(p + "pci_device_id", int(s("pci/pci_device_id"), 16), n["pci_device_id"])
        t.eq(p + "persistence_mode", s("persistence_mode") == "Enabled", n["persistence_mode"])
        t.eq(p + "compute_mode", s("compute_mode").lower().replace(" ", "_"), n["compute_mode"])
        mig = n["mig_mode"]
        t.eq(p + "mig_mode", (s("mig_mode/current_mig"), s("mig_mode/pending_mig")),
             tuple("Enabled" if mig[k] else "Disabled" for k in ("current", "pending")) if not err(mig) else mig)
        m = n["memory"]
        t.eq(p + "memory.total_mib", num(s("fb_memory_usage/total")), smi_mib(m["total_bytes"]))
        t.near(p + "memory.used_mib", num(s("fb_memory_usage/used")), smi_mib(m["used_bytes"]), 64)
        t.near(p + "memory.free_mib", num(s("fb_memory_usage/free")), smi_mib(m["free_bytes"]), 64)
        reserved = m["total_bytes"] - m["used_bytes"] - m["free_bytes"]
        t.add(p + "memory.reserved_mib", s("fb_memory_usage/reserved"), f"{smi_mib(reserved)} (total-used-free)",
              "derived only" if num(s("fb_memory_usage/reserved")) == smi_mib(reserved) else "DIFFERS")
        pc = n["pcie"]
        lg = "pci/pci_gpu_link_info/"
        t.eq(p + "pcie.max_link_gen", num(s(lg + "pcie_gen/max_link_gen")), pc["max_link_gen"])
        t.eq(p + "pcie.gpu_max_link_gen", num(s(lg + "pcie_gen/max_device_link_gen")), pc["gpu_max_link_gen"])
        t.eq(p + "pcie.current_link_gen", num(s(lg + "pcie_gen/current_link_gen")), pc["current_link_gen"])
        t.eq(p + "pcie.max_link_width", num(s(lg + "link_widths/max_link_width")), pc["max_link_width"])
        t.eq(p + "pcie.current_link_width", num(s(lg + "link_widths/current_link_width")), pc["current_link_width"])
        t.eq(p + "pcie.replay_counter", num(s("pci/replay_counter")), pc["replay_counter"])
        t.only(p + "pcie.host_max_link_gen", s(lg + "pcie_gen/max_host_link_gen"), "-")
        t.only(p + "pcie.aer (sysfs)", "-", json.dumps(pc.get("aer")))
        t.na(p + "fan_speed", s("fan_speed"), n["fan_speed_pct"]) if s("fan_speed") == "N/A" else t.eq(
            p + "fan_speed", num(s("fan_speed")), n["fan_speed_pct"])
        t.eq(p + "performance_state", s("performance_state"), f"P{n['performance_state']}")
        mask = n["clocks_event_reasons"]
        active = {b for b, tag in REASONS.items() if s("clocks_event_reasons/" + tag) == "Active"}
        probe_bits = {b for b in REASONS if mask & b}
        t.add(p + "clocks_event_reasons", sorted(hex(b) for b in active), hex(mask),
              "match" if active == probe_bits else "close (live)" if (active ^ probe_bits) <= {0x1, 0x4} else "DIFFERS")
        cnt = "clocks_event_reasons_counters/clocks_event_reasons_counters_"
        dur = n["clocks_event_durations_ns"]
        for smi_k, np_k in [("sw_power_cap", "sw_power_cap"), ("sync_boost", "sync_boost"),
                            ("sw_therm_slowdown", "sw_thermal_slowdown"), ("hw_therm_slowdown", "hw_thermal_slowdown"),
                            ("hw_power_brake", "hw_power_brake_slowdown")]:
            sv, pv = num(s(cnt + smi_k)), dur[np_k]
            # nvidia-smi shows microseconds, NVML's field is nanoseconds; node-probe read after nvidia-smi.
            t.near(p + f"clocks_event_time_us.{np_k}", sv, None if err(pv) else pv / 1000, 2_000_000)
        th = n["thermal"]
        t.near(p + "temp.gpu_c", num(s("temperature/gpu_temp")), th["gpu_temp_c"], 3)
        t.near(p + "temp.memory_c", num(s("temperature/memory_temp")), th["memory_temp_c"], 3)
        # nvidia-smi (R5xx) shows thresholds relative to T.Limit (the GPU max operating temperature): negative
        # past it. T.Limit itself is the margin of the current temperature.
        gmax = th["gpu_max_threshold_c"]
        rel = lambda tag: num(s("temperature/" + tag))  # noqa: E731
        tl = rel("gpu_temp_tlimit")
        if tl is not None:
            t.near(p + "temp.tlimit_margin_c", tl, gmax - th["gpu_temp_c"], 3)
            t.eq(p + "temp.shutdown_c", gmax - rel("gpu_temp_max_tlimit_threshold"), th["shutdown_threshold_c"], " (via T.Limit)")
            t.eq(p + "temp.slowdown_c", gmax - rel("gpu_temp_slow_tlimit_threshold"), th["slowdown_threshold_c"], " (via T.Limit)")
            t.eq(p + "temp.gpu_max_c", gmax - rel("gpu_temp_max_gpu_tlimit_threshold"), gmax, " (via T.Limit)")
            t.add(p + "temp.memory_max_c", s("temperature/gpu_temp_max_mem_tlimit_threshold"),
                  th["memory_max_threshold_c"], "not comparable (smi relative, base unknown)")
        else:
            t.eq(p + "temp.shutdown_c", num(s("temperature/gpu_temp_max_threshold")), th["shutdown_threshold_c"])
            t.eq(p + "temp.slowdown_c", num(s("temperature/gpu_temp_slow_threshold")), th["slowdown_threshold_c"])
        pw = n["power"]
        pr = "gpu_power_readings/"
        t.near(p + "power.draw_w (avg)", num(s(pr + "average_power_draw")), pw["usage_mw"] / 1000, 80)
        t.only(p + "power.instant_w", s(pr + "instant_power_draw"), "-")
        t.eq(p + "power.limit_w", num(s(pr + "current_power_limit")), pw["enforced_limit_mw"] / 1000)
        t.eq(p + "power.default_limit_w", num(s(pr + "default_power_limit")), pw["default_limit_mw"] / 1000)
        t.eq(p + "power.max_limit_w", num(s(pr + "max_power_limit")), pw["max_limit_mw"] / 1000)
        t.only(p + "power.min_limit_w", s(pr + "min_power_limit"), "-")
        u = n["utilization"]
        t.near(p + "util.gpu_pct", num(s("utilization/gpu_util")), u["gpu_pct"], 10)
        t.near(p + "util.memory_pct", num(s("utilization/memory_util")), u["memory_pct"], 15)
        c = n["clocks"]
        t.near(p + "clock.graphics_mhz", num(s("clocks/graphics_clock")), c["graphics_mhz"], 300)
        t.near(p + "clock.sm_mhz", num(s("clocks/sm_clock")), c["sm_mhz"], 300)
        t.near(p + "clock.memory_mhz", num(s("clocks/mem_clock")), c["memory_mhz"], 0)
        t.eq(p + "clock.graphics_max_mhz", num(s("max_clocks/graphics_clock")), c["graphics_max_mhz"])
        t.eq(p + "clock.sm_max_mhz", num(s("max_clocks/sm_clock")), c["sm_max_mhz"])
        t.eq(p + "clock.memory_max_mhz", num(s("max_clocks/mem_clock")), c["memory_max_mhz"])
        t.only(p + "clock.applications_graphics_mhz", s("applications_clocks/graphics_clock"), "-")
        t.only(p + "clock.video_mhz", s("clocks/video_clock"), "-")
        e = n["ecc"]
        t.eq(p + "ecc.mode", (s("ecc_mode/current_ecc"), s("ecc_mode/pending_ecc")),
             tuple("Enabled" if e["mode"][k] else "Disabled" for k in ("current", "pending")))
        loc = {l["location"]: l for l in e["by_location"]}
        for scope in ("volatile", "aggregate"):
            ee = f"ecc_errors/{scope}/"
            t.eq(p + f"ecc.{scope}.dram_corrected", num(s(ee + "dram_correctable")), loc.get("dram", {}).get(f"{scope}_corrected"))
            t.eq(p + f"ecc.{scope}.dram_uncorrected", num(s(ee + "dram_uncorrectable")), loc.get("dram", {}).get(f"{scope}_uncorrected"))
            t.eq(p + f"ecc.{scope}.sram_corrected", num(s(ee + "sram_correctable")), loc.get("sram", {}).get(f"{scope}_corrected"))
            sram_unc = (num(s(ee + "sram_uncorrectable_parity")) or 0) + (num(s(ee + "sram_uncorrectable_secded")) or 0)
            t.eq(p + f"ecc.{scope}.sram_uncorrected (parity+secded)", sram_unc, loc.get("sram", {}).get(f"{scope}_uncorrected"))
            tot_c = (num(s(ee + "dram_correctable")) or 0) + (num(s(ee + "sram_correctable")) or 0)
            t.eq(p + f"ecc.{scope}.total_corrected", tot_c, e[f"{scope}_corrected"])
        t.eq(p + "ecc.sram_threshold_exceeded", s("ecc_errors/aggregate/sram_threshold_exceeded") == "Yes", e["sram_threshold_exceeded"])
        for k in ("channel_repair_pending", "tpc_repair_pending", "unrepairable_memory"):
            t.only(p + "ecc." + k, s("ecc_errors/" + k), "-")
        t.na(p + "retired_pages", s("retired_pages/pending_retirement"), e["retired_pages"]) if s(
            "retired_pages/pending_retirement") == "N/A" else t.eq(
            p + "retired_pages.pending", s("retired_pages/pending_retirement") == "Yes", e["retired_pages"]["pending"])
        rr = e["remapped_rows"]
        t.eq(p + "remapped_rows.correctable", num(s("remapped_rows/remapped_row_corr")), rr["correctable"])
        t.eq(p + "remapped_rows.uncorrectable", num(s("remapped_rows/remapped_row_unc")), rr["uncorrectable"])
        t.eq(p + "remapped_rows.pending", s("remapped_rows/remapped_row_pending") == "Yes", rr["pending"])
        t.eq(p + "remapped_rows.failure", s("remapped_rows/remapped_row_failure") == "Yes", rr["failure"])
        t.only(p + "remapped_rows.inactive", s("remapped_rows/remapped_row_corr_inactive"), "-")
        h = e["row_remapper_histogram"]
        for k in ("max", "high", "partial", "low", "none"):
            t.eq(p + f"row_remapper_histogram.{k}", num(s(f"remapped_rows/row_remapper_histogram/row_remapper_histogram_{k}")), h[k])
        ra = {"None": 0, "Reset": 1, "Reboot": 2, "Drain P2P": 3, "Drain and Reset": 4}.get(s("gpu_recovery_action"))
        t.eq(p + "recovery_action", ra, n["recovery_action"])
        fab = n["fabric"]
        if s("fabric/state") == "N/A":
            ok = err(fab) or fab.get("state") == 0  # NVML_GPU_FABRIC_STATE_NOT_SUPPORTED
            t.add(p + "fabric.state", "N/A", json.dumps(fab), "match (N/A = state 0)" if ok else "DIFFERS")
        else:
            t.add(p + "fabric.state", s("fabric/state"), json.dumps(fab), "compare by hand")
        smi_procs = {int(pi.findtext("pid")): num(pi.findtext("used_memory")) for pi in g.findall("processes/process_info")}
        np_procs = {q["pid"]: smi_mib(q["used_memory_bytes"]) if q["used_memory_bytes"] is not None else None
                    for q in (n["processes"] if not err(n["processes"]) else [])}
        t.eq(p + "processes (pid: MiB)", smi_procs, np_procs)
        links = n["nvlinks"]
        t.add(p + "nvlinks", "see smi_nvlink_s.out", f"{len(links)} links, {sum(1 for l in links if l.get('active') is True)} active", "compare with nvlink -s")
    # capture.sh names the idle run of each command without a suffix.
    tel = f"{d}/np_telemetry{'' if suffix == '_idle' else suffix}.out"
    if os.path.exists(tel):
        # The analysis' MiB figures against nvidia-smi's own (GPU memory held steady between the two reads).
        for g, tg in zip(x.findall("gpu"), json.load(open(tel))["telemetry"]["gpus"]):
            for k in ("total", "used", "free"):
                t.eq(f"gpu{tg['index']}.telemetry.memory.{k}_mib", num(g.findtext(f"fb_memory_usage/{k}")),
                     tg["memory"][f"{k}_mib"])
    return t


def topo(d, facts):
    """NUMA and CPU affinity against `nvidia-smi topo -m`."""
    out = []
    text = open(f"{d}/smi_topo.out").read()
    for line in text.splitlines():
        m = re.match(r"GPU(\d+)\s+(.*)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if not m:
            continue
        cols = m.group(2).split("\t")
        idx = int(m.group(1))
        g = facts["gpus"][idx]
        n_gpu = len(facts["gpus"])
        cpu, numa = cols[n_gpu].strip(), cols[n_gpu + 1].strip()
        from_probe = ",".join(_ranges(g["cpu_affinity"]))
        out.append((f"gpu{idx}.cpu_affinity", cpu, from_probe, "match" if cpu == from_probe else "DIFFERS"))
        out.append((f"gpu{idx}.numa_node", numa, g["numa_node"], "match" if numa == str(g["numa_node"]) else "DIFFERS"))
    return out


def _ranges(cpus):
    cpus = sorted(set(cpus))
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return out


def main():
    d = sys.argv[1]
    suffix = sys.argv[2] if len(sys.argv) > 2 else "_idle"
    t = compare(d, suffix)
    facts = json.load(open(f"{d}/np_facts{suffix}.out"))["facts"]
    for r in topo(d, facts):
        t.add(*r)
    sys.exit(t.print())


if __name__ == "__main__":
    main()
