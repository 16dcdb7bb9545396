"""Raw NVML values through nvidia-ml-py, a third witness beside nvidia-smi and node-probe."""
import json
import pynvml as n

def g(f, *a):
    try:
        v = f(*a)
        if isinstance(v, bytes):
            v = v.decode()
        return v
    except Exception as e:  # noqa: BLE001
        return "ERR:" + str(e)

n.nvmlInit()
out = {"driver": g(n.nvmlSystemGetDriverVersion), "cuda": g(n.nvmlSystemGetCudaDriverVersion_v2),
       "nvml": g(n.nvmlSystemGetNVMLVersion), "gpus": []}
for i in range(n.nvmlDeviceGetCount()):
    h = n.nvmlDeviceGetHandleByIndex(i)
    d = {}
    d["clocks_event_reasons"] = g(n.nvmlDeviceGetCurrentClocksEventReasons, h)
    d["supported_event_reasons"] = g(n.nvmlDeviceGetSupportedClocksEventReasons, h)
    for nm, c in [("gr", n.NVML_CLOCK_GRAPHICS), ("sm", n.NVML_CLOCK_SM), ("mem", n.NVML_CLOCK_MEM), ("video", n.NVML_CLOCK_VIDEO)]:
        d["clock_" + nm] = g(n.nvmlDeviceGetClockInfo, h, c)
        d["max_" + nm] = g(n.nvmlDeviceGetMaxClockInfo, h, c)
        d["app_" + nm] = g(n.nvmlDeviceGetApplicationsClock, h, c)
        d["defapp_" + nm] = g(n.nvmlDeviceGetDefaultApplicationsClock, h, c)
    d["mem_v1"] = str(g(n.nvmlDeviceGetMemoryInfo, h))
    try:
        m = n.nvmlDeviceGetMemoryInfo(h, version=n.nvmlMemory_v2)
        d["mem_v2"] = {"total": m.total, "reserved": m.reserved, "free": m.free, "used": m.used}
    except Exception as e:  # noqa: BLE001
        d["mem_v2"] = "ERR:" + str(e)
    d["bar1"] = str(g(n.nvmlDeviceGetBAR1MemoryInfo, h))
    d["remapped"] = g(n.nvmlDeviceGetRemappedRows, h)
    d["pcie_gen_cur"] = g(n.nvmlDeviceGetCurrPcieLinkGeneration, h)
    d["pcie_gen_max"] = g(n.nvmlDeviceGetMaxPcieLinkGeneration, h)
    d["pcie_gen_gpu_max"] = g(n.nvmlDeviceGetGpuMaxPcieLinkGeneration, h)
    d["pcie_w_cur"] = g(n.nvmlDeviceGetCurrPcieLinkWidth, h)
    d["pcie_w_max"] = g(n.nvmlDeviceGetMaxPcieLinkWidth, h)
    d["temp_thresholds"] = {k: g(n.nvmlDeviceGetTemperatureThreshold, h, v) for k, v in
                            [("shutdown", 0), ("slowdown", 1), ("mem_max", 2), ("gpu_max", 3), ("acoustic_min", 4), ("acoustic_cur", 5), ("acoustic_max", 6)]}
    ids = {"memory_temp": 82, "perf_power_74": 74, "perf_thermal_75": 75, "perf_sync_76": 76, "perf_board_77": 77,
           "perf_lowutil_78": 78, "perf_reliab_79": 79, "f251": 251, "f252": 252, "f253": 253, "f254": 254, "f255": 255,
           "f269": 269, "f270": 270, "f271": 271, "f272": 272, "f273": 273, "remap_cor": 142, "remap_unc": 143,
           "remap_pend": 144, "remap_fail": 145, "recovery_action_230": 230, "pcie_replay_94": 94}
    fv = {}
    for k, fid in ids.items():
        try:
            r = n.nvmlDeviceGetFieldValues(h, [fid])[0]
            fv[k] = {"ret": r.nvmlReturn, "type": r.valueType, "u64": r.value.ullVal, "u32": r.value.uiVal, "d": r.value.dVal}
        except Exception as e:  # noqa: BLE001
            fv[k] = "ERR:" + str(e)
    d["fields"] = fv
    d["num_fans"] = g(n.nvmlDeviceGetNumFans, h)
    d["power_usage"] = g(n.nvmlDeviceGetPowerUsage, h)
    d["power_enforced"] = g(n.nvmlDeviceGetEnforcedPowerLimit, h)
    d["power_limit"] = g(n.nvmlDeviceGetPowerManagementLimit, h)
    d["power_default"] = g(n.nvmlDeviceGetPowerManagementDefaultLimit, h)
    d["power_constraints"] = g(n.nvmlDeviceGetPowerManagementLimitConstraints, h)
    d["pstate"] = g(n.nvmlDeviceGetPerformanceState, h)
    d["links"] = []
    for l in range(18):
        s = g(n.nvmlDeviceGetNvLinkState, h, l)
        if isinstance(s, str):
            d["links"].append({"link": l, "state": s})
            break
        d["links"].append({"link": l, "state": s, "version": g(n.nvmlDeviceGetNvLinkVersion, h, l)})
    d["fabric"] = str(g(n.nvmlDeviceGetGpuFabricInfo, h)) if hasattr(n, "nvmlDeviceGetGpuFabricInfo") else None
    d["gsp"] = str(g(n.nvmlDeviceGetGspFirmwareMode, h))
    d["addressing_mode"] = str(g(getattr(n, "nvmlDeviceGetAddressingMode", lambda h: "n/a"), h))
    out["gpus"].append(d)
print(json.dumps(out, indent=1, default=str))
