//! Picks the GPU source (NVML or a simulated scenario) and gathers the facts a command needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gpu_diag::contract::{ErrorKind, ProbeError, ProbeMeta};
use gpu_diag::facts::{FieldError, FieldErrorKind, NodeFacts, Reading, Sections};

use crate::options::{GlobalArgs, KernelLogArgs};
use crate::vendor::{Ask, NodeWide, Vendor};

/// Environment variable naming a JSON file `{"node-name": "scenario-or-fixture-path", ...}`: lets a
/// test cluster's fake kubelets (kwok exec runs node-probe locally) answer per node.
pub const SCENARIO_MAP_ENV: &str = "NODE_PROBE_SCENARIO_MAP";

pub enum SourceSpec {
    Nvml {
        host_root: PathBuf,
        /// `--driver-root`: a host path searched before the table.
        driver_root: Option<PathBuf>,
        nvml_lib: Option<PathBuf>,
        /// How long NVML collection may take before the probe reports it hung and goes on without it.
        nvml_timeout: Duration,
        /// Between the two reads of the NIC counters.
        nic_interval: Duration,
    },
    Simulated {
        facts: Box<NodeFacts>,
        /// Read only where `--host-root` was given: a fake host root around the simulated GPUs.
        host_root: PathBuf,
    },
}

pub fn default_host_root() -> PathBuf {
    if Path::new("/host").is_dir() {
        PathBuf::from("/host")
    } else {
        PathBuf::from("/")
    }
}

impl SourceSpec {
    pub fn from_args(g: &GlobalArgs) -> Result<Self, ProbeError> {
        let host_root = g.host_root.clone().unwrap_or_else(default_host_root);
        if let Some(name) = &g.simulate {
            return load_builtin(name, host_root);
        }
        if let Some(path) = &g.fixture {
            return load_fixture(path, host_root);
        }
        if let Some(map) = std::env::var_os(SCENARIO_MAP_ENV) {
            return from_map(Path::new(&map), g.node_name.as_deref(), host_root);
        }
        Ok(SourceSpec::Nvml {
            host_root,
            driver_root: g.driver_root.clone(),
            nvml_lib: g.nvml_lib.clone(),
            nvml_timeout: Duration::from_secs(g.nvml_timeout),
            nic_interval: Duration::from_millis(g.nic_interval_ms),
        })
    }
}

fn load_builtin(name: &str, host_root: PathBuf) -> Result<SourceSpec, ProbeError> {
    if let Some(script) = gpu_diag::scenarios::find_script(name) {
        let mut facts = script.facts().map_err(|e| {
            ProbeError::new(
                ErrorKind::Internal,
                format!("built-in script `{name}` is invalid: {e}"),
            )
        })?;
        facts.source = format!("simulated:{name}");
        return Ok(SourceSpec::Simulated {
            facts: Box::new(facts),
            host_root,
        });
    }
    let sc = gpu_diag::scenarios::find(name).ok_or_else(|| {
        let names: Vec<&str> = gpu_diag::scenarios::BUILTIN
            .iter()
            .map(|s| s.name)
            .chain(gpu_diag::scenarios::WATCH_SCRIPTS.iter().map(|s| s.name))
            .collect();
        ProbeError::new(
            ErrorKind::InvalidScenario,
            format!("unknown scenario `{name}`"),
        )
        .hint(format!("known scenarios: {}", names.join(", ")))
    })?;
    let mut facts = gpu_diag::scenarios::parse(&sc.json()).map_err(|e| {
        ProbeError::new(
            ErrorKind::Internal,
            format!("built-in scenario `{name}` is invalid: {e}"),
        )
    })?;
    facts.source = format!("simulated:{name}");
    Ok(SourceSpec::Simulated {
        facts: Box::new(facts),
        host_root,
    })
}

fn load_fixture(path: &Path, host_root: PathBuf) -> Result<SourceSpec, ProbeError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ProbeError::new(
            ErrorKind::InvalidScenario,
            format!("cannot read fixture {}: {e}", path.display()),
        )
    })?;
    // A whole `node-probe facts` document is accepted too: capture a node once, replay it anywhere.
    let captured = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|mut v| v.get_mut("facts").map(serde_json::Value::take))
        .map(|f| f.to_string());
    let text = captured.unwrap_or(text);
    // A time script over a built-in node (`{"scenario": .., "timeline": ..}`).
    let script = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("scenario").is_some() && v.get("timeline").is_some());
    if script {
        let mut facts = gpu_diag::scenarios::parse_script(&text).map_err(|e| {
            ProbeError::new(
                ErrorKind::InvalidScenario,
                format!("fixture {} is not a valid time script: {e}", path.display()),
            )
            .hint("a time script is {\"scenario\": \"<built-in name>\", \"description\": \"..\", \"timeline\": {\"segments\": [..], \"kernel_log\": [..]}}")
        })?;
        facts.source = format!(
            "simulated:{}",
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        return Ok(SourceSpec::Simulated {
            facts: Box::new(facts),
            host_root,
        });
    }
    let mut facts = gpu_diag::scenarios::parse(&text).map_err(|e| {
        ProbeError::new(
            ErrorKind::InvalidScenario,
            format!("fixture {} is not a valid scenario: {e}", path.display()),
        )
        .hint("a fixture has the format of the built-in scenarios (see src/scenarios/*.json)")
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fixture".into());
    facts.source = format!("simulated:{name}");
    Ok(SourceSpec::Simulated {
        facts: Box::new(facts),
        host_root,
    })
}

fn from_map(map: &Path, node: Option<&str>, host_root: PathBuf) -> Result<SourceSpec, ProbeError> {
    let text = std::fs::read_to_string(map).map_err(|e| {
        ProbeError::new(
            ErrorKind::InvalidScenario,
            format!("cannot read {SCENARIO_MAP_ENV} file {}: {e}", map.display()),
        )
    })?;
    let entries: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| {
            ProbeError::new(
                ErrorKind::InvalidScenario,
                format!("{SCENARIO_MAP_ENV} file {} is invalid: {e}", map.display()),
            )
        })?;
    let node = node.ok_or_else(|| {
        ProbeError::new(
            ErrorKind::Usage,
            format!("{SCENARIO_MAP_ENV} is set but no --node-name was given"),
        )
    })?;
    let target = entries.get(node).ok_or_else(|| {
        ProbeError::new(
            ErrorKind::InvalidScenario,
            format!("node `{node}` has no scenario in {}", map.display()),
        )
    })?;
    if gpu_diag::scenarios::find(target).is_some()
        || gpu_diag::scenarios::find_script(target).is_some()
    {
        load_builtin(target, host_root)
    } else {
        load_fixture(Path::new(target), host_root)
    }
}

/// Gather the facts `sections` asks for from the chosen source.
pub fn collect(
    spec: &SourceSpec,
    sections: Sections,
    log: &KernelLogArgs,
) -> Result<NodeFacts, ProbeError> {
    match spec {
        SourceSpec::Simulated { facts, .. } => {
            let mut facts = (**facts).clone();
            if let (true, false, Some(path)) = (sections.kernel_log, log.stream_log, &log.log_file)
            {
                facts.kernel_log = crate::kmsg::read_log_file(path)?;
            }
            Ok(facts)
        }
        SourceSpec::Nvml {
            host_root,
            driver_root,
            nvml_lib,
            nvml_timeout,
            nic_interval,
        } => {
            let ask = Ask {
                host_root,
                driver_root: driver_root.as_deref(),
                nvml_lib: nvml_lib.as_deref(),
                sections,
                log,
                first_index: 0,
                limit: *nvml_timeout,
            };
            let mut facts = match read_vendors(&ask) {
                Ok(f) => f,
                // A command about the kernel log alone (`xid`) still answers without NVML, only the
                // PCI -> GPU index mapping is lost (identity lines in the log still give UUIDs).
                Err(e) if kernel_log_only(sections) => NodeFacts {
                    source: "kernel-log".into(),
                    device_count: Reading::Err(FieldError::with_message(
                        FieldErrorKind::Unknown,
                        e.message,
                    )),
                    ..NodeFacts::default()
                },
                Err(e) => return Err(e),
            };
            crate::host::fill(&mut facts, host_root, sections);
            if sections.nics {
                crate::nic::fill(&mut facts, host_root, *nic_interval);
            }
            if sections.topology {
                let search = crate::driver_roots::Search::new(host_root, driver_root.as_deref());
                facts.imex = crate::imex::read(host_root, &search);
            }
            if sections.kernel_log && !log.stream_log {
                facts.kernel_log = match &log.log_file {
                    Some(path) => crate::kmsg::read_log_file(path)?,
                    None => crate::kmsg::read_kmsg(host_root),
                };
            }
            Ok(facts)
        }
    }
}

/// Every GPU vendor the probe reads, in the order of the probe's GPU index (`GpuFacts::index`).
/// Whether `path` (a process's fd link) is a device node of any vendor the probe reads.
pub fn is_device_node(path: &str) -> bool {
    VENDORS.iter().any(|v| v.device_node(path))
}

pub static VENDORS: &[&dyn Vendor] = &[
    &crate::nvml::Nvidia,
    &crate::amd::Amd,
    &crate::gaudi::Gaudi,
    &crate::neuron::Neuron,
];

/// Each vendor's devices after those of the vendors before it, joined into one reading: NVML's where it
/// answers; else one named after the first vendor with devices (an AMD or Gaudi node). `Err`: no
/// vendor has devices here, and why NVML could not read the node.
fn read_vendors(ask: &Ask<'_>) -> Result<NodeFacts, ProbeError> {
    let mut shares = Vec::new();
    let mut why = None;
    let mut next = ask.first_index;
    for v in VENDORS {
        match v.read(&Ask {
            first_index: next,
            ..*ask
        }) {
            Ok(Some(share)) => {
                next += share.gpus.len() as u32;
                shares.push((v.name(), share));
            }
            Ok(None) => {}
            Err(e) => {
                why.get_or_insert(e);
            }
        }
    }
    let first = match shares.first() {
        Some((name, _)) => *name,
        // NVML always answers or says why; the message is for a list without it.
        None => {
            return Err(why.unwrap_or_else(|| {
                ProbeError::new(
                    ErrorKind::NvmlUnavailable,
                    "no GPU of any vendor on this node",
                )
            }));
        }
    };
    let base = shares.iter_mut().find_map(|(_, s)| match &mut s.node {
        NodeWide::Base(f) => Some(std::mem::take(&mut **f)),
        _ => None,
    });
    let mut facts = base.unwrap_or_else(|| {
        let mut f = NodeFacts {
            source: first.into(),
            device_count: Reading::Ok(0),
            ..NodeFacts::default()
        };
        // No NVIDIA driver (or one that does not start) beside another vendor's devices.
        if let Some(e) = &why {
            f.driver.driver_version = Reading::Err(FieldError::with_message(
                FieldErrorKind::NotFound,
                format!("no NVIDIA driver: {}", e.message),
            ));
        }
        f
    });
    for (_, share) in shares {
        // The base counted its own devices; the count of enumerated GPUs covers the others too.
        if !matches!(share.node, NodeWide::Base(_))
            && let Reading::Ok(n) = &mut facts.device_count
        {
            *n += share.gpus.len() as u32;
        }
        facts.gpus.extend(share.gpus);
        if let Some(g) = share.process_scan.filter(|g| !g.is_empty()) {
            // Each vendor walked `/proc` under the same rules: what any walk missed is missed.
            let all = facts.process_scan_gaps.get_or_insert_with(Default::default);
            for (to, from) in [
                (&mut all.denied_pids, g.denied_pids),
                (&mut all.fd_tables_cut, g.fd_tables_cut),
            ] {
                to.extend(from);
                to.sort_unstable();
                to.dedup();
            }
            all.pids_not_scanned = all.pids_not_scanned.max(g.pids_not_scanned);
        }
        match share.node {
            NodeWide::Amd(driver) => facts.amd_driver = Some(*driver),
            NodeWide::Hlml(r) => facts.hlml = Some(*r),
            NodeWide::Base(_) | NodeWide::Nothing => {}
        }
    }
    Ok(facts)
}

fn kernel_log_only(s: Sections) -> bool {
    s.kernel_log && !s.telemetry && !s.topology && !s.ecc && !s.processes
}

/// `--since DURATION` as an absolute unix time, relative to the facts' clock.
pub fn since_unix(log: &KernelLogArgs, facts: &NodeFacts) -> Result<Option<f64>, ProbeError> {
    let Some(text) = &log.since else {
        return Ok(None);
    };
    let since: gpu_diag::command::Since = text.parse().map_err(|_| {
        ProbeError::new(ErrorKind::Usage, format!("invalid --since `{text}`"))
            .hint("use a number with a unit: 90s, 30m, 2h, 7d")
    })?;
    let now = facts.host.now_unix.get().unwrap_or(0.0);
    Ok(Some(now - since.seconds() as f64))
}

pub fn meta(facts: &NodeFacts, g: &GlobalArgs) -> ProbeMeta {
    let hostname = facts.host.hostname.ok().cloned();
    ProbeMeta {
        probe_version: gpu_diag::contract::PROBE_VERSION.to_string(),
        source: facts.source.clone(),
        node_name: g.node_name.clone().or_else(|| hostname.clone()),
        hostname,
        boot_id: facts.host.boot_id.ok().cloned(),
        collected_at_unix: facts.host.now_unix.get(),
    }
}
