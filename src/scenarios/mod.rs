//! Built-in simulated nodes. Each scenario is a [`NodeFacts`] JSON file in this folder, embedded at
//! build time: raw facts only (what NVML, sysfs, /proc and the kernel log would return), never verdicts.
//!
//! The files are written by `tests/support/generate_scenarios.py` (it keeps eight-GPU nodes consistent: PCI ids,
//! NVLink remotes, topology pairs and the PCI addresses in kernel-log lines). Edit the generator, rerun it,
//! and review the snapshot diff under `snapshots/probe/`.

use crate::facts::NodeFacts;

/// A built-in scenario: its name, one-line description and the embedded JSON, gzip'ed by `build.rs` (node-probe
/// carries every scenario and copy delivery streams it on each call: 0.07 MB instead of 0.9).
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    gz: &'static [u8],
}

impl Scenario {
    /// The scenario file's JSON.
    pub fn json(&self) -> String {
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(self.gz), &mut json)
            .unwrap_or_else(|e| {
                panic!("built-in scenario {} was embedded damaged: {e}", self.name)
            });
        json
    }
}

/// The default scenario for commands run with no GPU and no flags in the README.
pub const DEFAULT: &str = "dgx-h100-healthy";

macro_rules! scenario {
    ($name:literal, $description:literal) => {
        Scenario {
            name: $name,
            description: $description,
            gz: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".json.gz")),
        }
    };
}

// A static, not a const: a const slice is copied into each codegen unit that uses it, which put every
// embedded scenario in the probe binary twice.
pub static BUILTIN: &[Scenario] = &[
    scenario!(
        "dgx-h100-healthy",
        "DGX H100 under a training load: 8 GPUs, NVSwitch fabric registered, 8 x 400 Gb/s InfiniBand rails (one per GPU, PIX), nothing wrong (two GPUs power-capped at full load)"
    ),
    scenario!(
        "dgx-h100-xid79",
        "DGX H100 where GPU 4 fell off the bus mid-job: Xid 79, fatal AER, every live NVML query returns GPU_IS_LOST"
    ),
    scenario!(
        "dgx-a100-row-remap-pending",
        "DGX A100 (driver 535) whose GPU 2 has a row remap pending after repeated correctable errors (Xid 63)"
    ),
    scenario!(
        "dgx-a100-row-remap-failure",
        "DGX A100 whose GPU 5 ran out of spare rows in a bank: Xid 48, 94 and 64, remapping failure flag set"
    ),
    scenario!(
        "h100-xid48-dbe",
        "2x H100 PCIe: GPU 1 hit an uncorrectable HBM error (Xid 48 with 63, 94 and 154 drain-and-reset)"
    ),
    scenario!(
        "h100-thermal-slowdown",
        "2x H100 PCIe: GPU 1 at 90 C in HW thermal slowdown, SM clock cut to 825 of 1755 MHz"
    ),
    scenario!(
        "h100-power-brake",
        "2x H100 PCIe at full load held at 345 MHz by the platform's HW power-brake signal, GPUs cool"
    ),
    scenario!(
        "dgx-h100-nvlink-errors",
        "DGX H100 whose GPU 3 has NVLink 7 down and replay/recovery/CRC errors on link 5 (Xid 74, SXid)"
    ),
    scenario!(
        "l40s-pcie-degraded",
        "4x L40S inference node: GPU 2 trained at PCIe x8 of x16 with a high replay rate and AER corrected errors"
    ),
    scenario!(
        "a100-mig",
        "2x A100 PCIe: GPU 0 in MIG mode with two 3g.40gb instances (MIG-attributed Xid 31), GPU 1 MIG change pending"
    ),
    scenario!(
        "h100-zombie-process",
        "2x H100 PCIe: GPU 0 idle but 32 GiB held by a zombie process and a PID gone from /proc"
    ),
    scenario!(
        "t4-single",
        "AWS g4dn with one Tesla T4, idle, persistence mode off, page retirement (pre-Ampere ECC model)"
    ),
    scenario!(
        "dgx-h100-ib-port-down",
        "DGX H100 under a training load whose InfiniBand port mlx5_3 (GPU 3's rail) is DOWN/Polling; GPUs healthy"
    ),
    scenario!(
        "dgx-h100-ib-flapping",
        "DGX H100 whose InfiniBand port mlx5_5 (GPU 5's rail) flaps: link_downed 37 and rising during the probe, symbol and receive errors"
    ),
    scenario!(
        "dgx-h100-ib-rate-degraded",
        "DGX H100 whose InfiniBand port mlx5_6 trained at HDR 200 Gb/s while the other seven run NDR 400 Gb/s"
    ),
    scenario!(
        "h100-roce-carrier-flaps",
        "2x H100 PCIe with two 400GbE RoCE ports on socket 0: ens1f0np0's carrier flaps during the probe with CRC errors; GPU 1 is SYS from both NICs"
    ),
    scenario!(
        "dgx-h100-straggler-brake",
        "DGX H100 under a training load whose GPU 5 is held at 1095 MHz by the HW power brake while its seven peers run at 1980 MHz; no XID"
    ),
    scenario!(
        "gb200-tray-dra",
        "GB200 NVL72 compute tray (arm64 Grace, 4 GPUs, NVLink domain registered) whose GPUs a training rank holds through NVIDIA's DRA driver (one ResourceClaim, no device plugin)"
    ),
    scenario!(
        "gb200-tray-fabric-degraded",
        "GB200 NVL72 compute tray of a rack that lost a switch tray: every GPU's NVLink fabric health reports degraded bandwidth"
    ),
    scenario!(
        "gb200-tray-imex-degraded",
        "GB200 NVL72 compute tray whose IMEX domain is DEGRADED (tray 09's daemon waits for its peers, its links down); the driver asks to recover the IMEX domain (Xid 154, recovery action 5)"
    ),
    scenario!(
        "dgx-h100-pcie-downtrained",
        "DGX H100 under a training load whose GPU 2's PCIe link trained down to Gen3 x8 (max Gen5 x16) while its peers run Gen5 x16; no XID"
    ),
    scenario!(
        "mi300x-healthy",
        "AMD MI300X node under a training load: 8 GPUs in SPX/NPS1, one XGMI hive, RAS counters clean, no bad pages"
    ),
    scenario!(
        "mi300x-umc-ue-poison",
        "AMD MI300X node whose GPU 3 hit an uncorrectable HBM (UMC) error a kernel then consumed (poison): page retired, mode-1 reset of the hive"
    ),
    scenario!(
        "mi300x-bad-pages-near",
        "AMD MI300X node whose GPU 2 has retired 118 of its 128 allowed bad pages (3 more pending)"
    ),
    scenario!(
        "mi300x-bad-pages-rma",
        "AMD MI300X node whose GPU 5 has retired 131 bad pages, past the 128-page threshold: an RMA by AMD's service guide"
    ),
    scenario!(
        "mi300x-xgmi-link-down",
        "AMD MI300X node whose GPU 4 has XGMI link 2 down, with XGMI CRC errors"
    ),
    scenario!(
        "mi300x-ring-timeout",
        "AMD MI300X node whose GPU 6's compute ring times out again and again, each time followed by a mode-1 reset (kernel log only)"
    ),
    scenario!(
        "mi300x-thermal-throttle",
        "AMD MI300X node whose GPU 6 is at its 100 C hotspot limit: socket and HBM thermal throttling now, clock 1420 of 2100 MHz"
    ),
    scenario!(
        "mi300x-cpx",
        "AMD MI300X node in CPX/NPS4: 8 GPUs of 8 compute partitions each (64 amdgpu_xcp devices), idle"
    ),
    scenario!(
        "mi325x-healthy",
        "AMD MI325X node under a training load: 8 GPUs, 256 GB each, one XGMI hive, nothing wrong"
    ),
    scenario!(
        "mi355x-healthy",
        "AMD MI355X node under a training load: 8 GPUs, 288 GB each, one XGMI hive, nothing wrong"
    ),
    scenario!(
        "mi250x-legacy-ras",
        "AMD MI250X node (8 GCDs) with the legacy RAS layout (<block>_err_count): a few correctable HBM errors on GCD 3"
    ),
    scenario!(
        "mixed-h100-mi210",
        "A node with one GPU of each vendor: an NVIDIA H100 PCIe (GPU 0) and an AMD MI210 (GPU 1), both idle and healthy"
    ),
    scenario!(
        "mixed-h100-gaudi2",
        "A node with an NVIDIA H100 PCIe (GPU 0, idle) and an Intel Gaudi 2 (GPU 1, accel0) a job holds, both healthy"
    ),
    scenario!(
        "gaudi2-healthy",
        "Intel Gaudi 2 node (HLS-Gaudi2) under a training load: 8 devices operational, one process holding each, nothing wrong"
    ),
    scenario!(
        "gaudi2-hbm-ecc",
        "Intel Gaudi 2 node whose device 2 read a double-bit HBM ECC error: the driver hard-reset it and it is operational again; the job on it died"
    ),
    scenario!(
        "gaudi2-in-reset",
        "Intel Gaudi 2 node whose device 5 lost its firmware heartbeat and is in reset now"
    ),
    scenario!(
        "gaudi2-malfunction",
        "Intel Gaudi 2 node whose device 6 failed its hard reset: the driver disabled it (Device is NOT usable)"
    ),
    scenario!(
        "gaudi2-roce-port-down",
        "Intel Gaudi 2 node whose device 4 lost scale-out RoCE port 2: every device operational, the port down"
    ),
    scenario!(
        "gaudi3-healthy",
        "Intel Gaudi 3 node (8 HL-325L OAMs) under a training load: every device operational, nothing wrong"
    ),
    scenario!(
        "gaudi3-thermal",
        "Intel Gaudi 3 node whose device 3 throttles its clocks for heat (96 C, libhlml THERMAL, the driver's overheating lines); device 6 at its power limit"
    ),
    scenario!(
        "gaudi3-nic-link-down",
        "Intel Gaudi 3 node without the RDMA view of its NICs: libhlml reads device 1's internal port 9 and device 5's external port 22 down"
    ),
    scenario!(
        "trn2-healthy",
        "AWS trn2.48xlarge EKS node under a training load: 16 Trainium2 devices of 8 NeuronCores each, every device ready, 4 ranks holding each, nothing wrong"
    ),
    scenario!(
        "trn2-hbm-ue",
        "AWS trn2.48xlarge whose device neuron6 counted an uncorrectable HBM error its repair failed on (the driver's stats/hardware counter; the driver prints no kernel line for it); the ranks on it died"
    ),
    scenario!(
        "trn2-device-failed",
        "AWS trn2.48xlarge whose device neuron9 the neuron driver gave up on: its reset failed (`reset request ... failed` in the kernel log), `reset` reads 2"
    ),
];

/// A time script for `watch`: a built-in scenario with a [`crate::facts::Timeline`] played over it. Written
/// by hand in `watch/` beside this file, each `{"scenario", "description", "timeline"}`; a fixture file in
/// the same form plays a script of one's own over any built-in node.
pub struct WatchScript {
    pub name: &'static str,
    json: &'static str,
}

macro_rules! watch_script {
    ($name:literal) => {
        WatchScript {
            name: $name,
            json: include_str!(concat!("watch/", $name, ".json")),
        }
    };
}

pub static WATCH_SCRIPTS: &[WatchScript] = &[
    watch_script!("dgx-h100-watch-hang"),
    watch_script!("dgx-h100-watch-straggler"),
    watch_script!("dgx-h100-watch-throttle-bursts"),
    watch_script!("dgx-h100-watch-nvlink-under-load"),
    watch_script!("dgx-h100-watch-xid79"),
    watch_script!("mi300x-watch-hbm-thermal"),
    watch_script!("gaudi2-watch-heartbeat-reset"),
];

/// The file form of a time script.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    scenario: String,
    #[serde(default)]
    description: String,
    timeline: crate::facts::Timeline,
}

impl WatchScript {
    pub fn description(&self) -> String {
        serde_json::from_str::<ScriptFile>(self.json)
            .map(|f| f.description)
            .unwrap_or_default()
    }

    /// The scenario's facts with the script's timeline.
    pub fn facts(&self) -> Result<NodeFacts, String> {
        parse_script(self.json)
    }
}

pub fn find_script(name: &str) -> Option<&'static WatchScript> {
    WATCH_SCRIPTS.iter().find(|s| s.name == name)
}

/// A time script's text (`{"scenario": NAME, "timeline": {...}}`) as the facts it plays over.
pub fn parse_script(json: &str) -> Result<NodeFacts, String> {
    let f: ScriptFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let base = find(&f.scenario).ok_or_else(|| {
        format!(
            "the script's scenario `{}` is not a built-in scenario",
            f.scenario
        )
    })?;
    let mut facts = parse(&base.json()).map_err(|e| e.to_string())?;
    facts.timeline = Some(f.timeline);
    Ok(facts)
}

pub fn find(name: &str) -> Option<&'static Scenario> {
    BUILTIN.iter().find(|s| s.name == name)
}

/// Parse a scenario or fixture file.
pub fn parse(json: &str) -> Result<NodeFacts, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_raw_facts() {
        for s in BUILTIN {
            let facts = parse(&s.json()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert!(!facts.gpus.is_empty(), "{}", s.name);
            assert!(facts.host.now_unix.is_ok(), "{}: fixed clock", s.name);
            assert!(
                facts.host.boot_time_unix.is_ok(),
                "{}: fixed boot time",
                s.name
            );
            assert!(facts.kernel_log.is_ok(), "{}: kernel log", s.name);
            // Scenarios carry no verdicts: nothing in them may look like a finding.
            for word in ["\"severity\"", "\"verdict\"", "\"findings\""] {
                assert!(!s.json().contains(word), "{} contains {word}", s.name);
            }
            for (i, g) in facts.gpus.iter().enumerate() {
                assert_eq!(g.index as usize, i, "{}: GPU indices in order", s.name);
            }
        }
    }

    #[test]
    fn names_are_unique_and_default_exists() {
        let mut names: Vec<_> = BUILTIN.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), BUILTIN.len());
        assert!(find(DEFAULT).is_some());
        assert!(find("nope").is_none());
    }

    /// The `scenario!` list, the JSON files beside it and the generator's `SCENARIOS` table
    /// (tests/support/generate_scenarios.py) name the same
    /// scenarios: a file or a generator entry without its line here fails.
    #[test]
    fn the_list_is_every_file_and_every_generated_scenario() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scenarios");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("scenario folder")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(String::from)
            })
            .collect();
        files.sort();
        // The generator is a development tool, outside the package: only a repository checkout has it.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let generator =
            match std::fs::read_to_string(root.join("tests/support/generate_scenarios.py")) {
                Ok(g) => g,
                Err(_) if !root.join("tests").exists() => return,
                Err(e) => panic!("tests/support/generate_scenarios.py: {e}"),
            };
        let table = generator
            .split("SCENARIOS = {")
            .nth(1)
            .and_then(|t| t.split('}').next())
            .expect("SCENARIOS table");
        let mut generated: Vec<String> = table
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix('"')?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect();
        generated.sort();
        let mut listed: Vec<String> = BUILTIN.iter().map(|s| s.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, files, "src/scenarios/*.json");
        assert_eq!(listed, generated, "generate_scenarios.py's SCENARIOS");
    }
}
