#!/usr/bin/env python3
"""libhlml's ABI as Intel's own ctypes binding, PyPI `habana-pyhlml`, calls it: for node-probe's truth tests
(node-probe/src/gaudi/hlml_child.rs `abi_matches_pypi_pyhlml`, tests/truth/hlml_abi.rs).

pyhlml declares no argtypes: each function is called with ctypes objects built in pyhlml/main.py. So the
ABI is what those calls pass, and it is recorded here by calling each pyhlml function against a stub
library whose functions note the ctypes type of every argument (`abi`), and then checked live by loading a
real library, the tests' stand-in, through pyhlml itself (`read`).

Usage:
  hlml_abi.py abi WHEEL...         {release: {constants, pci_info, calls}}: no library loaded
  hlml_abi.py read LIBRARY WHEEL...  {release: what pyhlml reads from LIBRARY}
"""
import ctypes
import json
import os
import sys
import warnings

# What node-probe calls, as pyhlml's main.py names them, with the arguments each test call passes.
CALLS = [
    ("hlml_init", "hlmlInit", ()),
    ("hlml_shutdown", "hlmlShutdown", ()),
    ("hlml_device_get_count", "hlmlDeviceGetCount", ()),
    ("hlml_device_get_handle_by_index", "hlmlDeviceGetHandleByIndex", (0,)),
    ("hlml_device_get_pci_info", "hlmlDeviceGetPCIInfo", ("DEV",)),
    ("hlml_device_get_serial", "hlmlDeviceGetSerial", ("DEV",)),
    ("hlml_device_get_module_id", "hlmlDeviceGetModuleID", ("DEV",)),
    ("hlml_get_hlml_version", "hlmlGetHLMLVersion", ()),
    ("hlml_get_driver_version", "hlmlGetDriverVersion", ()),
    ("hlml_device_get_total_ecc_errors", "hlmlDeviceGetTotalECCErrors", ("DEV", 1, 1)),
    (
        "hlml_device_get_replaced_rows_pending_status",
        "hlmlDeviceGetReplacedRowsPendingStatus",
        ("DEV",),
    ),
    ("hlml_get_mac_addr_info", "hlmlDeviceGetMacAddrInfo", ("DEV",)),
    ("hlml_nic_get_link", "hlmlDeviceNicGetLink", ("DEV", 3)),
    (
        "hlml_device_get_current_clocks_throttle_reasons",
        "hlmlDeviceGetCurrentClocksThrottleReasons",
        ("DEV",),
    ),
]
RETURNS = [
    "HLML_SUCCESS",
    "HLML_ERROR_UNINITIALIZED",
    "HLML_ERROR_INVALID_ARGUMENT",
    "HLML_ERROR_NOT_SUPPORTED",
    "HLML_ERROR_NOT_FOUND",
    "HLML_ERROR_INSUFFICIENT_SIZE",
    "HLML_ERROR_DRIVER_NOT_LOADED",
    "HLML_ERROR_TIMEOUT",
    "HLML_ERROR_AIP_IS_LOST",
]


def load(wheel):
    """pyhlml of one wheel, imported from the wheel itself (zipimport); any earlier one forgotten."""
    for m in [m for m in sys.modules if m == "pyhlml" or m.startswith("pyhlml.")]:
        del sys.modules[m]
    sys.path.insert(0, wheel)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pyhlml.main as main
            import pyhlml.hlml_types as t
            import pyhlml.hlml_lib as lib
    finally:
        sys.path.remove(wheel)
    return main, t, lib


def arg_sig(a):
    """An argument as the C side receives it: `int` (a Python int, a C int), `uintN`/`intN`, `ptr` (a
    handle), `ptr:N` (to N bytes), `buf:N` (an array passed by address)."""
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, int):
        return "int"
    if isinstance(a, ctypes.c_void_p):
        return "ptr"
    if isinstance(a, ctypes.Array):
        return "buf:%d" % ctypes.sizeof(a)
    if type(a).__name__ == "CArgObject":  # ctypes.byref(x)
        obj = a._obj
        if isinstance(obj, ctypes.c_void_p):
            return "ptr:%d" % ctypes.sizeof(obj)
        return "ptr:%d" % ctypes.sizeof(obj)
    if isinstance(a, ctypes._SimpleCData):
        signed = type(a)(-1).value == -1
        return ("int" if signed else "uint") + str(8 * ctypes.sizeof(a))
    return type(a).__name__


def abi(wheel):
    main, t, lib = load(wheel)
    calls = {}

    class Fn:
        def __init__(self, name):
            self.name = name

        def __call__(self, *args):
            calls[self.name] = [arg_sig(a) for a in args]
            return 0

    class Stub:
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Fn(name)

    real = ctypes.CDLL
    ctypes.CDLL = lambda *a, **k: Stub()
    try:
        # An instance before pyhlml 1.11 (`TYPE = ctypes.c_void_p()`), the type after.
        dev = ctypes.c_void_p()
        for cname, pyname, args in CALLS:
            fn = getattr(main, pyname, None)
            if fn is None:
                calls[cname] = None
                continue
            fn(*[dev if a == "DEV" else a for a in args])
    finally:
        ctypes.CDLL = real
    pci = t.c_hlml_pci_info
    mem = t.HLML_MEMORY_ERROR
    ecc = t.HLML_ECC_COUNTER
    return {
        "default_path": lib.LibHLML.__init__.__defaults__[0],
        "constants": dict(
            {r: int(getattr(t.HLML_RETURN, r)) for r in RETURNS},
            HL_FIELD_MAX_SIZE=t.HLML_DEFINE.HL_FIELD_MAX_SIZE,
            PCI_ADDR_LEN=t.HLML_DEFINE.PCI_ADDR_LEN,
            VERSION_MAX_LEN=t.COMMON_DEFINE.VERSION_MAX_LEN,
            HLML_MEMORY_ERROR_TYPE_CORRECTED=int(mem.HLML_MEMORY_ERROR_TYPE_CORRECTED),
            HLML_MEMORY_ERROR_TYPE_UNCORRECTED=int(mem.HLML_MEMORY_ERROR_TYPE_UNCORRECTED),
            HLML_VOLATILE_ECC=int(ecc.HLML_VOLATILE_ECC),
            HLML_AGGREGATE_ECC=int(ecc.HLML_AGGREGATE_ECC),
            HLML_CLOCKS_THROTTLE_REASON_POWER=int(t.HLML_DEFINE.HLML_CLOCKS_THROTTLE_REASON_POWER),
            HLML_CLOCKS_THROTTLE_REASON_THERMAL=int(t.HLML_DEFINE.HLML_CLOCKS_THROTTLE_REASON_THERMAL),
        ),
        "return_size": ctypes.sizeof(t.HLML_RETURN.TYPE),
        "pci_info": {
            "size": ctypes.sizeof(pci),
            "bus_id_offset": pci.bus_id.offset,
            "bus_id_size": pci.bus_id.size,
        },
        "calls": calls,
    }


def ports(main, h):
    """The ports of the masks pyhlml returns, each with its link as pyhlml reads it."""
    (m0, m1), (e0, e1) = main.hlmlDeviceGetMacAddrInfo(h)
    mask, ext = m0 | (m1 << 64), e0 | (e1 << 64)
    return [
        {"port": p, "external": bool(ext >> p & 1), "up": bool(main.hlmlDeviceNicGetLink(h, p))}
        for p in range(128)
        if mask >> p & 1
    ]


def read(library, wheel):
    """What pyhlml itself reads from `library`: the same calls node-probe makes, in its order."""
    main, t, lib = load(wheel)
    default = lib.LibHLML.__init__.__defaults__
    lib.LibHLML.__init__.__defaults__ = (library,)
    out = {}
    try:
        main.hlmlInit()
        try:
            out["version"] = main.hlmlGetHLMLVersion().decode()
            out["driver_version"] = main.hlmlGetDriverVersion().decode()
            devs = []
            for i in range(main.hlmlDeviceGetCount()):
                h = main.hlmlDeviceGetHandleByIndex(i)
                e = t.HLML_MEMORY_ERROR
                c = t.HLML_ECC_COUNTER
                ecc = lambda kind, counter: main.hlmlDeviceGetTotalECCErrors(h, kind, counter)
                devs.append(
                    {
                        "index": i,
                        "bus_id": main.hlmlDeviceGetPCIInfo(h).bus_id.decode(),
                        "serial": main.hlmlDeviceGetSerial(h).decode(),
                        "module_id": main.hlmlDeviceGetModuleID(h),
                        "ecc": {
                            "corrected_volatile": ecc(e.HLML_MEMORY_ERROR_TYPE_CORRECTED, c.HLML_VOLATILE_ECC),
                            "uncorrected_volatile": ecc(e.HLML_MEMORY_ERROR_TYPE_UNCORRECTED, c.HLML_VOLATILE_ECC),
                            "corrected_aggregate": ecc(e.HLML_MEMORY_ERROR_TYPE_CORRECTED, c.HLML_AGGREGATE_ECC),
                            "uncorrected_aggregate": ecc(e.HLML_MEMORY_ERROR_TYPE_UNCORRECTED, c.HLML_AGGREGATE_ECC),
                        },
                        "replaced_rows_pending": bool(main.hlmlDeviceGetReplacedRowsPendingStatus(h)),
                        "nic_ports": ports(main, h),
                        "clocks_throttle_reasons": main.hlmlDeviceGetCurrentClocksThrottleReasons(h),
                    }
                )
            out["devices"] = devs
        finally:
            main.hlmlShutdown()
    finally:
        lib.LibHLML.__init__.__defaults__ = default
    return out


def release(wheel):
    # habana_pyhlml-1.24.2.481-py3-none-any.whl -> 1.24.2.481
    return os.path.basename(wheel).split("-")[1]


def main(argv):
    if len(argv) < 2 or argv[0] not in ("abi", "read") or (argv[0] == "read" and len(argv) < 3):
        print(__doc__, file=sys.stderr)
        return 2
    out = {}
    if argv[0] == "abi":
        for w in argv[1:]:
            try:
                out[release(w)] = abi(w)
            except Exception as e:  # one broken wheel is named, not a traceback
                out[release(w)] = {"error": f"{type(e).__name__}: {e}"}
    else:
        for w in argv[2:]:
            try:
                out[release(w)] = read(argv[1], w)
            except Exception as e:
                out[release(w)] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(out, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
