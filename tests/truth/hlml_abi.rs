//! Truth test for node-probe's libhlml reader (`node-probe/src/gaudi/hlml_child.rs`) and the tests'
//! stand-in (`tests/fake-hlml/fake_hlml.c`): Intel's own binding, PyPI `habana-pyhlml`, loads the stand-in
//! (`tests/truth/hlml_abi.py read`, pyhlml's default path pointed at it) and reads every value node-probe
//! reads; node-probe's child reads the same library; the two must agree value by value. A stand-in whose
//! structs or signatures drifted from pyhlml's, or a reader that drifted from either, fails here.
//!
//! The stand-in lays `hlml_pci_info_t` out as pyhlml 1.21+ does (84 bytes); the releases of
//! `tests/truth/fetch-hlml-wheels.sh` with that layout are read live (an older pyhlml hands the library a
//! smaller struct than it writes: 76 bytes in 1.17, where the stand-in's write overruns it). The layouts
//! of all of them are checked by `abi_matches_pypi_pyhlml` in hlml_child.rs.
//! Without the wheels, python3 or a C compiler the test skips (a failure under CI=true).

#[path = "../support/fake_hlml.rs"]
mod fake_hlml;
#[path = "../support/gate.rs"]
mod gate;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn wheel_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HLML_WHEELS") {
        return d.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("k8s-gpu-mcp/upstream/hlml-wheels")
}

fn python(args: &[&std::ffi::OsStr]) -> Option<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/truth/hlml_abi.py");
    let out = match Command::new("python3").arg(script).args(args).output() {
        Ok(o) => o,
        Err(e) => {
            gate::skip(&format!("no python3 ({e}); it runs pyhlml"));
            return None;
        }
    };
    assert!(
        out.status.success(),
        "hlml_abi.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn pyhlml_and_node_probe_read_the_same_values_from_the_stand_in() {
    let dir = wheel_dir();
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("habana_pyhlml-") && n.ends_with(".whl"))
                })
                .collect()
        })
        .unwrap_or_default();
    wheels.sort();
    if wheels.is_empty() {
        gate::skip(&format!(
            "no habana-pyhlml wheel in {}: run tests/truth/fetch-hlml-wheels.sh",
            dir.display()
        ));
        return;
    }
    // Only the releases whose hlml_pci_info_t is the stand-in's.
    let mut args: Vec<&std::ffi::OsStr> = vec!["abi".as_ref()];
    args.extend(wheels.iter().map(|w| w.as_os_str()));
    let Some(abi) = python(&args) else { return };
    let live: Vec<&PathBuf> = wheels
        .iter()
        .filter(|w| {
            let v = w
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap();
            abi[v]["pci_info"]["size"] == 84
        })
        .collect();
    assert!(
        !live.is_empty(),
        "no wheel with the stand-in's layout: {abi}"
    );

    let root = tempfile::tempdir().unwrap();
    // Bus ids as a library may spell them (pyhlml 1.21+ has room for an 8-digit domain), serials at the
    // length pyhlml's buffer allows (31 and NUL), distinct values in every field.
    let devices: [(&str, &str, u32, [u64; 4], bool); 3] = [
        (
            "0000:B3:00.0",
            "AN00000000000000000000000000013",
            3,
            [11, 1, 111, 2],
            true,
        ),
        ("00000000:19:00.0", "AN12", 7, [0, 0, 5, 0], false),
        ("0000:9a:00.0", "A", 0, [1 << 40, 3, 1 << 41, 4], false),
    ];
    let mut conf = "hlml_version 1.24.2-fw-59.1.1\ndriver_version 1.24.2-abc1234\n".to_string();
    for (b, s, m, e, p) in devices {
        conf += &fake_hlml::device(b, s, m, e, p);
    }
    // Gaudi 2's 24 ports on the first device, three external, one of those down; none on the third.
    conf += "nic 0000:B3:00.0 ffffff 700000 200000\nnic 00000000:19:00.0 3 1 0\n";
    // Thermal on the first device, power and thermal on the second, none on the third.
    conf += "throttle 0000:B3:00.0 2\nthrottle 00000000:19:00.0 3\n";
    let Some(lib) = fake_hlml::install(root.path(), &conf) else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_node-probe"))
        .arg("__hlml-child")
        .arg(&lib)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mine: Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut args: Vec<&std::ffi::OsStr> = vec!["read".as_ref(), lib.as_os_str()];
    args.extend(live.iter().map(|w| w.as_os_str()));
    let Some(theirs) = python(&args) else { return };
    for (release, t) in theirs.as_object().unwrap() {
        assert!(t.get("error").is_none(), "{release}: {t}");
        assert_eq!(mine["version"], t["version"], "{release}");
        assert_eq!(mine["driver_version"], t["driver_version"], "{release}");
        let (m, p) = (
            mine["devices"].as_array().unwrap(),
            t["devices"].as_array().unwrap(),
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m.len(), p.len(), "{release}");
        // pyhlml gets back what the stand-in was told: its structs and calls are pyhlml's.
        assert_eq!(t["version"], "1.24.2-fw-59.1.1", "{release}");
        assert_eq!(t["driver_version"], "1.24.2-abc1234", "{release}");
        for (p, (bus, serial, module, ecc, pending)) in p.iter().zip(devices) {
            assert_eq!(p["bus_id"], bus, "{release}");
            assert_eq!(p["serial"], serial, "{release}");
            assert_eq!(p["module_id"], module, "{release}");
            assert_eq!(
                p["ecc"],
                serde_json::json!({"corrected_volatile": ecc[0], "uncorrected_volatile": ecc[1],
                    "corrected_aggregate": ecc[2], "uncorrected_aggregate": ecc[3]}),
                "{release}"
            );
            assert_eq!(p["replaced_rows_pending"], pending, "{release}");
        }
        let ports = p[0]["nic_ports"].as_array().unwrap();
        assert_eq!(ports.len(), 24, "{release}");
        assert_eq!(
            ports[21],
            serde_json::json!({"port": 21, "external": true, "up": false}),
            "{release}"
        );
        assert_eq!(ports[20]["up"], true, "{release}");
        assert_eq!(ports[0]["external"], false, "{release}");
        assert_eq!(p[2]["nic_ports"], serde_json::json!([]), "{release}");
        let throttles: Vec<&Value> = p.iter().map(|d| &d["clocks_throttle_reasons"]).collect();
        assert_eq!(throttles, [2, 3, 0], "{release}");
        for (m, p) in m.iter().zip(p) {
            // node-probe names the address as sysfs does; pyhlml gives the library's text.
            let norm = gpu_diag::pci::normalize_bus_id(p["bus_id"].as_str().unwrap());
            assert_eq!(m["bus_id"].as_str(), norm.as_deref(), "{release}");
            for k in [
                "index",
                "serial",
                "module_id",
                "ecc",
                "replaced_rows_pending",
                "clocks_throttle_reasons",
            ] {
                assert_eq!(m[k], p[k], "{release}: {k} of {m}");
            }
        }
    }
}
