//! Truth test for the fake NVML (`tests/fake-nvml/fake_nvml.c`): its structs, status codes and the
//! numbers it answers with are NVIDIA's own, checked against `nvml.h` from NVIDIA's PyPI wheel
//! `nvidia-nvml-dev` (13.5.37; `tests/truth/fetch-nvml-header.sh` fetches it into
//! `$NVML_HEADER_DIR`, else `${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream/nvidia-nvml-dev-13.5.37`).
//! Before this test the fake's layouts were checked only against nvml-wrapper-sys, the bindings the reader
//! itself uses: the same reading on both sides.
//!
//! The system C compiler lays out each struct twice, once from nvml.h and once from the fake (the fake's
//! source included whole), and every member's offset and size and every struct's size must agree; so must
//! the status codes both name. The literals the fake answers with (field ids, threshold kinds, event types,
//! value types, recovery actions) must be the header's values for the names its comments give.
//! Without the header or a C compiler the test skips (a failure under CI=true, tests/support/gate.rs).

#[path = "../support/gate.rs"]
mod gate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (type, members) the fake defines; a union's members all sit at 0.
const LAYOUTS: &[(&str, &[&str])] = &[
    (
        "nvmlPciInfo_t",
        &[
            "busIdLegacy",
            "domain",
            "bus",
            "device",
            "pciDeviceId",
            "pciSubSystemId",
            "busId",
        ],
    ),
    ("nvmlMemory_t", &["total", "free", "used"]),
    (
        "nvmlProcessInfo_t",
        &["pid", "usedGpuMemory", "gpuInstanceId", "computeInstanceId"],
    ),
    (
        "nvmlValue_t",
        &[
            "dVal", "siVal", "uiVal", "ulVal", "ullVal", "sllVal", "usVal",
        ],
    ),
    (
        "nvmlFieldValue_t",
        &[
            "fieldId",
            "scopeId",
            "timestamp",
            "latencyUsec",
            "valueType",
            "nvmlReturn",
            "value",
        ],
    ),
    (
        "nvmlGpuFabricInfo_v2_t",
        &[
            "version",
            "clusterUuid",
            "status",
            "cliqueId",
            "state",
            "healthMask",
        ],
    ),
    (
        "nvmlEventData_t",
        &[
            "device",
            "eventType",
            "eventData",
            "gpuInstanceId",
            "computeInstanceId",
        ],
    ),
    ("nvmlUtilization_t", &["gpu", "memory"]),
];

/// Status codes the fake's enum names.
const STATUSES: &[&str] = &[
    "NVML_SUCCESS",
    "NVML_ERROR_INVALID_ARGUMENT",
    "NVML_ERROR_NOT_SUPPORTED",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_NOT_FOUND",
    "NVML_ERROR_INSUFFICIENT_SIZE",
    "NVML_ERROR_GPU_IS_LOST",
    "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
];

/// Literals in the fake's source: (a piece of the fake's line that identifies it, the text just before
/// the number on that line, the nvml.h name whose value the number must be).
const LITERALS: &[(&str, &str, &str)] = &[
    (
        "/* memory temperature */",
        "case ",
        "NVML_FI_DEV_MEMORY_TEMP",
    ),
    (
        "/* sw power cap ns */",
        "case ",
        "NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_POWER_CAP",
    ),
    (
        "/* sync boost */",
        "case ",
        "NVML_FI_DEV_CLOCKS_EVENT_REASON_SYNC_BOOST",
    ),
    (
        "/* sw thermal",
        "case ",
        "NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_THERM_SLOWDOWN",
    ),
    (
        "/* hw thermal */",
        "case ",
        "NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_THERM_SLOWDOWN",
    ),
    (
        "/* hw power brake */",
        "case ",
        "NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN",
    ),
    (
        "recovery_action(d->index)",
        "case ",
        "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION",
    ),
    (
        "/* memory temperature */",
        "valueType = ",
        "NVML_VALUE_TYPE_UNSIGNED_INT",
    ),
    (
        "        f->valueType = 3;",
        "valueType = ",
        "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG",
    ),
    (
        "/* shutdown */",
        "case ",
        "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN",
    ),
    (
        "/* slowdown */",
        "case ",
        "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN",
    ),
    (
        "/* memory max */",
        "case ",
        "NVML_TEMPERATURE_THRESHOLD_MEM_MAX",
    ),
    (
        "/* gpu max */",
        "case ",
        "NVML_TEMPERATURE_THRESHOLD_GPU_MAX",
    ),
    (
        "data->eventData = 79",
        "eventType = ",
        "nvmlEventTypeXidCriticalError",
    ),
    (
        "data->eventType = 0x8000",
        "eventType = ",
        "nvmlEventTypeGpuRecoveryAction",
    ),
    ("/* NVML_ERROR_TIMEOUT */", "return ", "NVML_ERROR_TIMEOUT"),
    (
        "return index == 0 ? 1 : 0;",
        "? ",
        "NVML_GPU_RECOVERY_ACTION_GPU_RESET",
    ),
];

fn header_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NVML_HEADER_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("k8s-gpu-mcp/upstream/nvidia-nvml-dev-13.5.37")
}

/// A C program that includes `include` and prints `LAYOUT type member offset size`, `SIZE type n` and
/// `CONST name value` for `consts`; built and run, its lines parsed.
fn layouts(dir: &Path, include: &Path, consts: &[&str]) -> Result<BTreeMap<String, i64>, String> {
    let mut c = format!(
        // The file first: the fake defines _GNU_SOURCE before its own includes.
        "#include \"{}\"\n#include <stddef.h>\n#include <stdio.h>\nint main(void) {{\n",
        include.display()
    );
    for (ty, members) in LAYOUTS {
        c += &format!("printf(\"SIZE {ty} %zu\\n\", sizeof({ty}));\n");
        for m in *members {
            c += &format!(
                "printf(\"LAYOUT {ty}.{m} %zu %zu\\n\", offsetof({ty}, {m}), sizeof((({ty} *)0)->{m}));\n"
            );
        }
    }
    for k in consts {
        c += &format!("printf(\"CONST {k} %lld\\n\", (long long)({k}));\n");
    }
    c += "return 0;\n}\n";
    let src = dir.join("main.c");
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("main");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .output()
        .map_err(|e| format!("{cc}: {e}"))?;
    if !out.status.success() {
        panic!(
            "{cc} could not build the layout program for {}:\n{}",
            include.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run = Command::new(&exe).output().expect("run the layout program");
    let mut m = BTreeMap::new();
    for l in String::from_utf8(run.stdout).unwrap().lines() {
        let p: Vec<&str> = l.split_whitespace().collect();
        match p[0] {
            "SIZE" | "CONST" => {
                m.insert(format!("{} {}", p[0], p[1]), p[2].parse().unwrap());
            }
            "LAYOUT" => {
                m.insert(format!("OFFSET {}", p[1]), p[2].parse().unwrap());
                m.insert(format!("WIDTH {}", p[1]), p[3].parse().unwrap());
            }
            _ => unreachable!("{l}"),
        }
    }
    Ok(m)
}

#[test]
fn fake_nvml_matches_nvidias_nvml_h() {
    let header = header_dir().join("nvml.h");
    if !header.exists() {
        gate::skip(&format!(
            "no {} (run tests/truth/fetch-nvml-header.sh): the fake NVML was not checked against NVIDIA's header",
            header.display()
        ));
        return;
    }
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-nvml/fake_nvml.c");
    let tmp =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nvml-abi-{}", std::process::id()));
    let (hdir, fdir) = (tmp.join("header"), tmp.join("fake"));
    std::fs::create_dir_all(&hdir).unwrap();
    std::fs::create_dir_all(&fdir).unwrap();

    let names: Vec<&str> = STATUSES
        .iter()
        .copied()
        .chain(LITERALS.iter().map(|(_, _, n)| *n))
        .collect();
    let upstream = match layouts(&hdir, &header, &names) {
        Ok(m) => m,
        Err(e) => {
            gate::skip(&format!("no C compiler: {e}"));
            return;
        }
    };
    let ours = layouts(&fdir, &fake, STATUSES).unwrap();

    let mut failures = Vec::new();
    let mut compared = 0;
    for (k, v) in &ours {
        match upstream.get(k) {
            Some(u) if u == v => compared += 1,
            Some(u) => failures.push(format!("{k}: the fake has {v}, nvml.h {u}")),
            None => failures.push(format!("{k}: not in nvml.h's output")),
        }
    }
    // The numbers the fake answers with, read from its source.
    let src = std::fs::read_to_string(&fake).unwrap();
    for (mark, before, name) in LITERALS {
        let line = src
            .lines()
            .find(|l| l.contains(mark))
            .unwrap_or_else(|| panic!("no line of fake_nvml.c holds {mark:?}"));
        let at = line
            .find(before)
            .unwrap_or_else(|| panic!("{line:?} has no {before:?}"))
            + before.len();
        let digits: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let n = match digits.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16),
            None => digits.parse(),
        }
        .unwrap_or_else(|_| panic!("{line:?}: no number after {before:?}"));
        let want = upstream[&format!("CONST {name}")];
        if n == want {
            compared += 1;
        } else {
            failures.push(format!("{line:?}: {n}, but nvml.h's {name} is {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let members: usize = LAYOUTS.iter().map(|(_, m)| m.len()).sum();
    assert_eq!(
        compared,
        LAYOUTS.len() + 2 * members + STATUSES.len() + LITERALS.len()
    );
    eprintln!("fake NVML and nvml.h agree on {compared} values");
}
