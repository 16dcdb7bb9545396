//! `reset`: reset one GPU with the host's `nvidia-smi -r -i <index>`. Preflight from nvidia-smi's manual (`-r`)
//! and NVIDIA's GPU reset documentation: nothing may use the GPU (NVML processes, and every
//! holder of its `/dev/nvidia<minor>`: device plugin, DCGM, exporters, GFD, persistenced), the GPU must be
//! on the bus (a lost GPU needs a reboot), Ampere NVSwitch systems need Fabric Manager (Hopper+ do not),
//! pre-Ampere NVLink GPUs reset only together with their peers. MIG, persistence and pending repairs
//! change what the reset does and are reported. After the reset, [`verify`] judges the re-read GPU.

/// Its `node-probe` subcommand.
pub const COMMAND: &str = "reset";

use serde::{Deserialize, Serialize};

use super::{ActionResult, Check, PlanStep, Preflight, gpu_name, process_label};
use crate::analysis::error_name;
use crate::facts::{DeviceHolderFacts, FieldErrorKind, GpuFacts, NodeFacts, Reading};

/// How the request names the GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    Index(u32),
    Uuid(String),
}

impl GpuSelector {
    /// A number is an index; anything else is a UUID (`GPU-...`, compared case-insensitively).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        match t.parse::<u32>() {
            Ok(i) => Some(GpuSelector::Index(i)),
            Err(_) if t.len() >= 4 && t[..4].eq_ignore_ascii_case("GPU-") => {
                Some(GpuSelector::Uuid(t.to_string()))
            }
            Err(_) => None,
        }
    }

    pub fn find<'a>(&self, facts: &'a NodeFacts) -> Option<&'a GpuFacts> {
        facts.gpus.iter().find(|g| match self {
            GpuSelector::Index(i) => g.index == *i,
            GpuSelector::Uuid(u) => g.uuid.ok().is_some_and(|x| x.eq_ignore_ascii_case(u)),
        })
    }
}

impl std::fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuSelector::Index(i) => write!(f, "{i}"),
            GpuSelector::Uuid(u) => f.write_str(u),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub gpu: GpuSelector,
    /// The probe's own pid, left out of the device holders it judges (it closes NVML before the reset).
    pub self_pid: Option<u32>,
    /// The reset tool the probe found (`chroot /host nvidia-smi`), or why there is none. `None` in
    /// simulated mode, where nothing runs.
    pub tool: Option<Result<String, String>>,
}

/// The identity of the GPU a reset targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetTarget {
    pub index: u32,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The `reset` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetReport {
    /// The GPU as requested (index or UUID).
    pub gpu: String,
    #[serde(default)]
    pub target: Option<ResetTarget>,
    pub dry_run: bool,
    /// True when the facts come from a simulated scenario: nothing is ever run.
    pub simulated: bool,
    pub result: ActionResult,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub plan: Vec<PlanStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ResetOutcome>,
}

super::action_report!(ResetReport);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetOutcome {
    /// Every command run, in order.
    pub commands: Vec<CommandRun>,
    /// The checks on the GPU as re-read after the reset.
    pub verification: Vec<Check>,
    /// True when the reset command succeeded and no verification check blocks.
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandRun {
    pub argv: Vec<String>,
    /// None when it could not start or was killed by a signal.
    pub exit_code: Option<i32>,
    /// Output, trimmed and capped.
    pub stdout: String,
    pub stderr: String,
}

/// Device nodes that are the driver's shared control nodes, not one GPU's.
fn is_gpu_node(dev: &str) -> Option<u32> {
    dev.strip_prefix("/dev/nvidia")?.parse().ok()
}

/// What a holder of NVIDIA device nodes usually is, and how to stop it.
pub fn holder_hint(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let table: &[(&str, &str)] = &[
        (
            "nv-hostengine",
            "DCGM host engine: stop the DCGM service or daemonset",
        ),
        (
            "dcgm-exporter",
            "dcgm-exporter: scale its daemonset off this node",
        ),
        ("dcgmi", "DCGM client"),
        (
            "nvidia-device-p",
            "device plugin: stop the nvidia-device-plugin daemonset pod on this node",
        ),
        (
            "gpu-feature-dis",
            "GPU Feature Discovery: stop its pod on this node",
        ),
        (
            "nvidia-persiste",
            "nvidia-persistenced: stop the service for the reset",
        ),
        ("nvidia-smi", "another nvidia-smi (monitoring)"),
        ("nv-fabricmanage", "Fabric Manager"),
    ];
    table
        .iter()
        .find(|(k, _)| n.starts_with(k))
        .map(|(_, v)| *v)
}

fn holder_label(h: &DeviceHolderFacts) -> String {
    let name = h.name.ok().map(String::as_str).unwrap_or("?");
    let hint = holder_hint(name)
        .map(|x| format!(" [{x}]"))
        .unwrap_or_default();
    format!("pid {} {name} ({}){hint}", h.pid, h.devices.join(", "))
}

/// Judge a reset request against the facts.
pub fn preflight(facts: &NodeFacts, req: &ResetRequest) -> Preflight {
    let Some(g) = req.gpu.find(facts) else {
        let known: Vec<String> = facts
            .gpus
            .iter()
            .map(|g| match g.uuid.ok() {
                Some(u) => format!("{} ({u})", g.index),
                None => g.index.to_string(),
            })
            .collect();
        return Preflight::from_checks(vec![Check::block(
            "gpu_found",
            format!(
                "no GPU {} on this node; GPUs: {}",
                req.gpu,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )]);
    };
    let mut checks = vec![Check::pass("gpu_found", gpu_name(g))];
    checks.push(check_on_bus(g));
    if g.handle_error.is_some() {
        // Without a handle nothing else about the GPU is known: further checks would only be noise.
        return Preflight::from_checks(checks);
    }
    checks.push(check_recovery_action(g));
    checks.push(check_processes(facts, g));
    checks.extend(check_device_holders(facts, g, req.self_pid));
    checks.push(check_nvswitch_fabric_manager(facts, g));
    checks.push(check_mig(g));
    checks.push(check_persistence(g));
    checks.push(check_pending_repairs(g));
    if let Some(tool) = &req.tool {
        checks.push(match tool {
            Ok(t) => Check::pass("reset_tool", format!("will run `{t}`")),
            Err(why) => Check::block("reset_tool", why.clone()),
        });
    }
    Preflight::from_checks(checks)
}

/// The whole report before execution.
pub fn plan(facts: &NodeFacts, req: &ResetRequest, dry_run: bool, simulated: bool) -> ResetReport {
    let pf = preflight(facts, req);
    let g = req.gpu.find(facts);
    let result = pf.result(dry_run, simulated);
    ResetReport {
        gpu: req.gpu.to_string(),
        target: g.map(|g| ResetTarget {
            index: g.index,
            uuid: g.uuid.ok().cloned(),
            pci_bus_id: g.pci_bus_id.ok().cloned(),
            name: g.name.ok().cloned(),
        }),
        dry_run,
        simulated,
        result,
        allowed: pf.allowed,
        reasons: pf.reasons,
        checks: pf.checks,
        plan: g.map(steps).unwrap_or_default(),
        outcome: None,
    }
}

/// Persistence mode is turned off around the reset when it is on (NVIDIA's documented sequence).
pub fn persistence_was_on(g: &GpuFacts) -> bool {
    g.persistence_mode.get() == Some(true)
}

pub fn steps(g: &GpuFacts) -> Vec<PlanStep> {
    let i = g.index;
    let mut out = Vec::new();
    if persistence_was_on(g) {
        out.push(PlanStep::new(
            "persistence_off",
            format!("nvidia-smi -i {i} -pm 0"),
        ));
    }
    out.push(PlanStep::new(
        "reset",
        format!("nvidia-smi -r -i {i} (function-level reset of this GPU only)"),
    ));
    out.push(PlanStep::new(
        "verify",
        "re-read the GPU from NVML: it answers, recovery action none, no pending MIG change or remap",
    ));
    if persistence_was_on(g) {
        out.push(PlanStep::new(
            "persistence_on",
            format!("nvidia-smi -i {i} -pm 1"),
        ));
    }
    out
}

fn lost(g: &GpuFacts) -> Option<String> {
    if let Some(e) = &g.handle_error {
        return Some(error_name(e.error).to_string());
    }
    let fields: &[(&str, Option<FieldErrorKind>)] = &[
        ("uuid", g.uuid.err().map(|e| e.error)),
        ("memory", g.memory.err().map(|e| e.error)),
        ("processes", g.processes.err().map(|e| e.error)),
        ("pci_bus_id", g.pci_bus_id.err().map(|e| e.error)),
    ];
    fields
        .iter()
        .find(|(_, e)| *e == Some(FieldErrorKind::GpuIsLost))
        .map(|(f, _)| format!("{f}: gpu_is_lost"))
}

pub fn check_on_bus(g: &GpuFacts) -> Check {
    const NAME: &str = "gpu_on_bus";
    match (lost(g), &g.handle_error) {
        (Some(why), _) if why.contains("gpu_is_lost") => Check::block(
            NAME,
            format!(
                "{} is lost to the driver ({why}): it fell off the bus (Xid 79 class); an in-band reset \
                 cannot recover it. Drain the node and reboot or power-cycle it",
                gpu_name(g)
            ),
        ),
        (_, Some(e)) => Check::block(
            NAME,
            format!(
                "NVML has no handle for GPU {} ({}): its state cannot be verified",
                g.index,
                error_name(e.error)
            ),
        ),
        _ => Check::pass(NAME, "the GPU answers NVML"),
    }
}

/// NVML field 230: what the driver itself says the GPU needs.
pub fn check_recovery_action(g: &GpuFacts) -> Check {
    const NAME: &str = "recovery_action";
    match &g.recovery_action {
        Reading::Ok(0) => Check::pass(NAME, "none: the driver does not ask for a reset"),
        Reading::Ok(1) => Check::pass(NAME, "the driver asks for a GPU reset"),
        Reading::Ok(2) => Check::block(
            NAME,
            "the driver asks for a node reboot (recovery action 2): a GPU reset will not recover it",
        ),
        Reading::Ok(3) => Check::warn(
            NAME,
            "the driver asks to drain peer-to-peer traffic (recovery action 3); a reset is not what it asks for",
        ),
        Reading::Ok(4) => Check::pass(NAME, "the driver asks to drain and reset the GPU"),
        Reading::Ok(n) => Check::warn(NAME, format!("unknown recovery action {n}")),
        Reading::Err(e) => Check::pass(
            NAME,
            format!(
                "not reported ({}): older driver or GPU",
                error_name(e.error)
            ),
        ),
    }
}

pub fn check_processes(facts: &NodeFacts, g: &GpuFacts) -> Check {
    const NAME: &str = "no_gpu_processes";
    match &g.processes {
        Reading::Ok(ps) if ps.is_empty() => {
            Check::pass(NAME, "NVML lists no compute or graphics process on the GPU")
        }
        Reading::Ok(ps) => Check::block(
            NAME,
            format!(
                "{} process(es) use the GPU: {}. Stop them first (kill_gpu_process, or drain the pods)",
                ps.len(),
                ps.iter()
                    .map(|p| format!("{} {}", process_label(facts, p.pid), p.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Reading::Err(e) => Check::block(
            NAME,
            format!(
                "NVML could not list the GPU's processes ({}): cannot verify it is idle",
                error_name(e.error)
            ),
        ),
    }
}

/// Holders of the GPU's own device node block; holders of only the shared control nodes warn.
pub fn check_device_holders(facts: &NodeFacts, g: &GpuFacts, self_pid: Option<u32>) -> Vec<Check> {
    const NAME: &str = "device_node_holders";
    const OTHER: &str = "control_node_holders";
    let holders = match &facts.device_holders {
        None => {
            return vec![Check::block(
                NAME,
                "the holders of /dev/nvidia* were not collected: cannot verify the GPU is free",
            )];
        }
        Some(Reading::Err(e)) => {
            return vec![Check::block(
                NAME,
                format!(
                    "cannot scan /proc for holders of /dev/nvidia* ({}{})",
                    error_name(e.error),
                    e.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )];
        }
        Some(Reading::Ok(h)) => h,
    };
    let minor = g.minor_number.as_ref().and_then(|m| m.get());
    let others: Vec<&DeviceHolderFacts> = holders
        .holders
        .iter()
        .filter(|h| Some(h.pid) != self_pid)
        .collect();
    let (on_gpu, control): (Vec<&DeviceHolderFacts>, Vec<&DeviceHolderFacts>) =
        others.iter().partition(|h| {
            h.devices.iter().any(|d| match (is_gpu_node(d), minor) {
                (Some(m), Some(want)) => m == want,
                // Unknown minor: any GPU node may be this GPU's.
                (Some(_), None) => true,
                (None, _) => false,
            })
        });
    let mut out = Vec::new();
    let node = match minor {
        Some(m) => format!("/dev/nvidia{m}"),
        None => "the GPU's device node (minor number unknown, so every /dev/nvidiaN counts)".into(),
    };
    if on_gpu.is_empty() {
        out.push(Check::pass(NAME, format!("no process holds {node}")));
    } else {
        out.push(Check::block(
            NAME,
            format!(
                "{} process(es) hold {node}: {}. nvidia-smi refuses to reset a GPU in use",
                on_gpu.len(),
                on_gpu
                    .iter()
                    .map(|h| holder_label(h))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if !control.is_empty() {
        out.push(Check::warn(
            OTHER,
            format!(
                "{} process(es) hold only the driver's shared nodes (not this GPU's): {}. They may \
                 open the GPU again during the reset",
                control.len(),
                control
                    .iter()
                    .map(|h| holder_label(h))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if holders.unreadable_pids > 0 {
        out.push(Check::warn(
            "holder_scan_complete",
            format!(
                "the fd tables of {} process(es) could not be read: holders among them are not seen",
                holders.unreadable_pids
            ),
        ));
    }
    out
}

fn service_running(facts: &NodeFacts, name: &str) -> Reading<bool> {
    facts
        .services
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.running.clone())
        .unwrap_or_default()
}

fn arch_generation(arch: &str) -> Option<u32> {
    // Ordered by generation: reset rules changed at Ampere and again at Hopper.
    let a = arch.to_ascii_lowercase();
    let table = [
        ("kepler", 3),
        ("maxwell", 5),
        ("pascal", 6),
        ("volta", 7),
        ("turing", 7),
        ("ampere", 8),
        ("ada", 8),
        ("hopper", 9),
        ("blackwell", 10),
    ];
    table
        .iter()
        .find(|(k, _)| a.starts_with(k))
        .map(|(_, g)| *g)
}

pub fn check_nvswitch_fabric_manager(facts: &NodeFacts, g: &GpuFacts) -> Check {
    const NAME: &str = "nvswitch_fabric_manager";
    let active: Vec<_> = g
        .nvlinks
        .iter()
        .filter(|l| l.active.get() == Some(true))
        .collect();
    let switch = active
        .iter()
        .any(|l| l.remote_device_type.ok().map(String::as_str) == Some("switch"));
    let arch = g.architecture.ok().cloned();
    let generation = arch.as_deref().and_then(arch_generation);
    let arch_name = arch.clone().unwrap_or_else(|| "unknown".into());
    let fm = service_running(facts, "nvidia-fabricmanager");
    if active.is_empty() {
        return Check::pass(NAME, "no active NVLink: the GPU resets on its own");
    }
    match (switch, generation) {
        (true, Some(9..)) => Check::pass(
            NAME,
            format!("{arch_name} NVSwitch system: reset does not depend on Fabric Manager"),
        ),
        (true, Some(8)) => match fm {
            Reading::Ok(true) => Check::pass(
                NAME,
                "Ampere NVSwitch system and nvidia-fabricmanager runs: it facilitates the reset",
            ),
            Reading::Ok(false) => Check::block(
                NAME,
                "Ampere NVSwitch system without a running nvidia-fabricmanager: Fabric Manager is \
                 required to reset one GPU; start it (or reset every NVLink peer together)",
            ),
            Reading::Err(e) => Check::block(
                NAME,
                format!(
                    "Ampere NVSwitch system and whether nvidia-fabricmanager runs is unknown ({}): it is \
                     required to reset one GPU",
                    error_name(e.error)
                ),
            ),
        },
        (_, Some(..=7)) => Check::block(
            NAME,
            format!(
                "{arch_name} GPU with {} active NVLink(s): pre-Ampere NVLink GPUs reset only together with \
                 all their peers, and this tool resets one GPU",
                active.len()
            ),
        ),
        (false, Some(8..)) => Check::pass(
            NAME,
            format!("{arch_name} GPU with direct NVLink (no NVSwitch): resets individually"),
        ),
        (_, None) => Check::warn(
            NAME,
            format!(
                "architecture {arch_name} unknown with {} active NVLink(s){}: whether it resets alone is \
                 unknown; nvidia-smi names missing peers if not",
                active.len(),
                if switch { " to an NVSwitch" } else { "" }
            ),
        ),
    }
}

pub fn check_mig(g: &GpuFacts) -> Check {
    const NAME: &str = "mig";
    match &g.mig_mode {
        Reading::Ok(m) if m.current != m.pending => Check::warn(
            NAME,
            format!(
                "MIG mode change pending ({} -> {}): the reset applies it",
                on_off(m.current),
                on_off(m.pending)
            ),
        ),
        Reading::Ok(m) if m.current => Check::warn(
            NAME,
            format!(
                "MIG enabled with {} instance(s): the reset destroys GPU and compute instances; the MIG \
                 manager (or an operator) must recreate them",
                g.mig_devices.len()
            ),
        ),
        Reading::Ok(_) => Check::pass(NAME, "MIG disabled"),
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported => {
            Check::pass(NAME, "MIG not supported on this GPU")
        }
        Reading::Err(e) => Check::warn(NAME, format!("MIG mode unknown ({})", error_name(e.error))),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

pub fn check_persistence(g: &GpuFacts) -> Check {
    const NAME: &str = "persistence_mode";
    match &g.persistence_mode {
        Reading::Ok(true) => Check::warn(
            NAME,
            "persistence mode is enabled: it is turned off before the reset and on again after",
        ),
        Reading::Ok(false) => Check::pass(NAME, "persistence mode disabled"),
        Reading::Err(e) => Check::warn(
            NAME,
            format!("persistence mode unknown ({})", error_name(e.error)),
        ),
    }
}

/// Pending row remaps and page retirements are applied by a reset; a remap failure is not fixed by it.
pub fn check_pending_repairs(g: &GpuFacts) -> Check {
    const NAME: &str = "pending_repairs";
    let mut notes = Vec::new();
    let mut warn = false;
    if let Some(r) = g.ecc.remapped_rows.ok() {
        if r.pending {
            notes.push("row remapping pending: the reset applies it".to_string());
        }
        if r.failure {
            warn = true;
            notes.push(
                "row remapping FAILED: a reset does not fix it; the GPU needs field diagnostics / RMA"
                    .to_string(),
            );
        }
    }
    if g.ecc.retired_pages.ok().is_some_and(|p| p.pending) {
        notes.push("page retirement pending: the reset applies it".to_string());
    }
    match (notes.is_empty(), warn) {
        (true, _) => Check::pass(NAME, "no pending row remap or page retirement"),
        (false, true) => Check::warn(NAME, notes.join("; ")),
        (false, false) => Check::pass(NAME, notes.join("; ")),
    }
}

/// Judge the GPU as re-read after the reset (matched by UUID, else by index).
pub fn verify(before: &GpuFacts, after: &NodeFacts) -> Vec<Check> {
    let found = match before.uuid.ok() {
        Some(u) => after
            .gpus
            .iter()
            .find(|g| g.uuid.ok().is_some_and(|x| x == u)),
        None => after.gpus.iter().find(|g| g.index == before.index),
    };
    let Some(g) = found else {
        return vec![Check::block(
            "gpu_back",
            format!(
                "{} is not enumerated after the reset: drain the node and power-cycle it",
                gpu_name(before)
            ),
        )];
    };
    let mut out = vec![match check_on_bus(g) {
        c if c.status == super::CheckStatus::Pass => {
            Check::pass("gpu_back", format!("{} answers NVML again", gpu_name(g)))
        }
        c => Check::block("gpu_back", c.evidence),
    }];
    out.push(match &g.recovery_action {
        Reading::Ok(0) => Check::pass("recovery_action_none", "recovery action none"),
        Reading::Ok(n) => Check::block(
            "recovery_action_none",
            format!("the driver still asks for recovery action {n} after the reset"),
        ),
        Reading::Err(e) => Check::warn(
            "recovery_action_none",
            format!("recovery action not reported ({})", error_name(e.error)),
        ),
    });
    if let Reading::Ok(m) = &g.mig_mode
        && m.current != m.pending
    {
        out.push(Check::warn(
            "mig_applied",
            "a MIG mode change is still pending after the reset",
        ));
    }
    if g.ecc.remapped_rows.ok().is_some_and(|r| r.pending) {
        out.push(Check::warn(
            "remap_applied",
            "row remapping still pending after the reset",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{
        DeviceHoldersFacts, FieldError, GpuProcessFacts, MigModeFacts, NvLinkFacts,
        RemappedRowsFacts, ServiceFacts,
    };
    use crate::operator::CheckStatus;

    fn gpu(index: u32, arch: &str) -> GpuFacts {
        GpuFacts {
            index,
            uuid: Reading::Ok(format!("GPU-{index:04}")),
            architecture: Reading::Ok(arch.into()),
            processes: Reading::Ok(vec![]),
            persistence_mode: Reading::Ok(false),
            mig_mode: Reading::Ok(MigModeFacts::default()),
            recovery_action: Reading::Ok(1),
            minor_number: Some(Reading::Ok(index)),
            ..Default::default()
        }
    }

    fn holder(pid: u32, name: &str, devs: &[&str]) -> DeviceHolderFacts {
        DeviceHolderFacts {
            pid,
            name: Reading::Ok(name.into()),
            devices: devs.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn node(gpus: Vec<GpuFacts>, holders: Vec<DeviceHolderFacts>) -> NodeFacts {
        NodeFacts {
            gpus,
            device_holders: Some(Reading::Ok(DeviceHoldersFacts {
                holders,
                ..Default::default()
            })),
            services: vec![ServiceFacts {
                name: "nvidia-fabricmanager".into(),
                running: Reading::Ok(false),
            }],
            ..Default::default()
        }
    }

    fn req(gpu: GpuSelector) -> ResetRequest {
        ResetRequest {
            gpu,
            self_pid: Some(4000),
            tool: None,
        }
    }

    fn switch_links(n: u32) -> Vec<NvLinkFacts> {
        (0..n)
            .map(|link| NvLinkFacts {
                link,
                active: Reading::Ok(true),
                remote_device_type: Reading::Ok("switch".into()),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn selector_parsing() {
        assert_eq!(GpuSelector::parse("3"), Some(GpuSelector::Index(3)));
        assert_eq!(
            GpuSelector::parse("gpu-ab12"),
            Some(GpuSelector::Uuid("gpu-ab12".into()))
        );
        assert_eq!(GpuSelector::parse(""), None);
        assert_eq!(GpuSelector::parse("-1"), None);
        assert_eq!(GpuSelector::parse("nvidia3"), None);
        let f = node(vec![gpu(0, "Hopper"), gpu(1, "Hopper")], vec![]);
        assert_eq!(
            GpuSelector::Uuid("gpu-0001".into()).find(&f).unwrap().index,
            1
        );
    }

    #[test]
    fn an_idle_gpu_is_allowed() {
        let f = node(
            vec![gpu(0, "Hopper"), gpu(1, "Hopper")],
            // The probe itself and a holder of another GPU's node only.
            vec![
                holder(4000, "node-probe", &["/dev/nvidia1", "/dev/nvidiactl"]),
                holder(12, "python3", &["/dev/nvidia0", "/dev/nvidiactl"]),
            ],
        );
        let pf = preflight(&f, &req(GpuSelector::Index(1)));
        assert!(pf.allowed, "{:#?}", pf);
        let r = plan(&f, &req(GpuSelector::Index(1)), false, true);
        assert_eq!(r.result, ActionResult::Simulated);
        assert_eq!(r.target.unwrap().uuid.as_deref(), Some("GPU-0001"));
        assert_eq!(
            r.plan.iter().map(|s| s.action.as_str()).collect::<Vec<_>>(),
            ["reset", "verify"]
        );
    }

    #[test]
    fn unknown_gpu_is_refused_with_the_known_ones() {
        let f = node(vec![gpu(0, "Hopper")], vec![]);
        let pf = preflight(&f, &req(GpuSelector::Index(7)));
        assert!(!pf.allowed);
        assert!(pf.reasons[0].contains("no GPU 7"), "{:?}", pf.reasons);
        assert!(pf.reasons[0].contains("0 (GPU-0000)"));
        assert!(
            plan(&f, &req(GpuSelector::Index(7)), true, false)
                .plan
                .is_empty()
        );
    }

    #[test]
    fn lost_gpu_needs_a_reboot() {
        let mut g = gpu(0, "Hopper");
        g.memory = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        let c = check_on_bus(&g);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("reboot"));
        let mut g = gpu(0, "Hopper");
        g.handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        assert!(check_on_bus(&g).evidence.contains("fell off the bus"));
        g.handle_error = Some(FieldError::new(FieldErrorKind::Unknown));
        assert!(check_on_bus(&g).evidence.contains("no handle"));
        let mut g = gpu(0, "Hopper");
        g.recovery_action = Reading::Ok(2);
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Block);
        g.recovery_action = Reading::Ok(3);
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Warn);
        g.recovery_action = Reading::not_supported();
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Pass);
    }

    #[test]
    fn processes_block_and_unreadable_lists_block() {
        let mut g = gpu(0, "Hopper");
        g.processes = Reading::Ok(vec![GpuProcessFacts {
            pid: 4242,
            kind: "compute".into(),
            ..Default::default()
        }]);
        let f = node(vec![g.clone()], vec![]);
        let c = check_processes(&f, &g);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("pid 4242 compute"));
        g.processes = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
        assert!(check_processes(&f, &g).evidence.contains("no_permission"));
    }

    #[test]
    fn device_node_holders_are_named_with_hints() {
        let g = gpu(3, "Hopper");
        let f = node(
            vec![g.clone()],
            vec![
                holder(2101, "nv-hostengine", &["/dev/nvidia3", "/dev/nvidiactl"]),
                holder(2200, "nvidia-device-plugin", &["/dev/nvidia3"]),
                holder(
                    2300,
                    "dcgm-exporter",
                    &["/dev/nvidiactl", "/dev/nvidia-uvm"],
                ),
                holder(2400, "python3", &["/dev/nvidia2"]),
            ],
        );
        let cs = check_device_holders(&f, &g, Some(4000));
        assert_eq!(cs[0].status, CheckStatus::Block);
        assert!(
            cs[0]
                .evidence
                .starts_with("2 process(es) hold /dev/nvidia3")
        );
        assert!(cs[0].evidence.contains("pid 2101 nv-hostengine"));
        assert!(cs[0].evidence.contains("DCGM host engine"));
        assert!(cs[0].evidence.contains("device plugin"));
        assert!(!cs[0].evidence.contains("python3"));
        assert_eq!(cs[1].check, "control_node_holders");
        assert_eq!(cs[1].status, CheckStatus::Warn);
        assert!(cs[1].evidence.contains("dcgm-exporter"));
        // Minor unknown: every GPU node counts.
        let mut g2 = g.clone();
        g2.minor_number = None;
        let cs = check_device_holders(&f, &g2, None);
        assert!(
            cs[0].evidence.starts_with("3 process(es)"),
            "{}",
            cs[0].evidence
        );
    }

    #[test]
    fn holder_scan_missing_or_failed_blocks_and_unreadable_warns() {
        let g = gpu(0, "Hopper");
        let mut f = node(vec![g.clone()], vec![]);
        f.device_holders = None;
        assert_eq!(
            check_device_holders(&f, &g, None)[0].status,
            CheckStatus::Block
        );
        f.device_holders = Some(Reading::Err(FieldError::with_message(
            FieldErrorKind::NoPermission,
            "proc",
        )));
        let c = &check_device_holders(&f, &g, None)[0];
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("no_permission: proc"));
        f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
            holders: vec![],
            unreadable_pids: 3,
            excluded_self_pid: None,
        }));
        let cs = check_device_holders(&f, &g, None);
        assert_eq!(cs[0].status, CheckStatus::Pass);
        assert_eq!(cs[1].check, "holder_scan_complete");
        assert_eq!(cs[1].status, CheckStatus::Warn);
    }

    #[test]
    fn fabric_manager_rules_by_generation() {
        let mut a100 = gpu(0, "Ampere");
        a100.nvlinks = switch_links(12);
        let mut f = node(vec![a100.clone()], vec![]);
        let c = check_nvswitch_fabric_manager(&f, &a100);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("Fabric Manager is required"));
        f.services[0].running = Reading::Ok(true);
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &a100).status,
            CheckStatus::Pass
        );
        f.services.clear();
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &a100).status,
            CheckStatus::Block
        );

        let mut h100 = gpu(0, "Hopper");
        h100.nvlinks = switch_links(18);
        let f = node(vec![h100.clone()], vec![]);
        let c = check_nvswitch_fabric_manager(&f, &h100);
        assert_eq!(c.status, CheckStatus::Pass);
        assert!(c.evidence.contains("does not depend on Fabric Manager"));

        let mut v100 = gpu(0, "Volta");
        v100.nvlinks = switch_links(2);
        v100.nvlinks[0].remote_device_type = Reading::Ok("gpu".into());
        v100.nvlinks[1].remote_device_type = Reading::Ok("gpu".into());
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &v100).status,
            CheckStatus::Block
        );

        let mut direct = gpu(0, "Ampere");
        direct.nvlinks = v100.nvlinks.clone();
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &direct).status,
            CheckStatus::Pass
        );

        let mut unknown = gpu(0, "Mystery");
        unknown.nvlinks = switch_links(1);
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &unknown).status,
            CheckStatus::Warn
        );

        let pcie = gpu(0, "Ampere");
        assert!(
            check_nvswitch_fabric_manager(&f, &pcie)
                .evidence
                .contains("no active NVLink")
        );
    }

    #[test]
    fn mig_persistence_and_repairs_warn() {
        let mut g = gpu(0, "Ampere");
        g.mig_mode = Reading::Ok(MigModeFacts {
            current: false,
            pending: true,
        });
        let c = check_mig(&g);
        assert_eq!(c.status, CheckStatus::Warn);
        assert!(c.evidence.contains("disabled -> enabled"));
        g.mig_mode = Reading::Ok(MigModeFacts {
            current: true,
            pending: true,
        });
        assert!(check_mig(&g).evidence.contains("destroys"));
        g.mig_mode = Reading::not_supported();
        assert_eq!(check_mig(&g).status, CheckStatus::Pass);

        g.persistence_mode = Reading::Ok(true);
        assert_eq!(check_persistence(&g).status, CheckStatus::Warn);
        let acts: Vec<String> = steps(&g).into_iter().map(|s| s.action).collect();
        assert_eq!(
            acts,
            ["persistence_off", "reset", "verify", "persistence_on"]
        );

        g.ecc.remapped_rows = Reading::Ok(RemappedRowsFacts {
            pending: true,
            ..Default::default()
        });
        let c = check_pending_repairs(&g);
        assert_eq!(c.status, CheckStatus::Pass);
        assert!(c.evidence.contains("applies it"));
        g.ecc.remapped_rows = Reading::Ok(RemappedRowsFacts {
            failure: true,
            ..Default::default()
        });
        assert_eq!(check_pending_repairs(&g).status, CheckStatus::Warn);
    }

    #[test]
    fn tool_missing_blocks() {
        let f = node(vec![gpu(0, "Hopper")], vec![]);
        let mut r = req(GpuSelector::Index(0));
        r.tool = Some(Err("no nvidia-smi under /host".into()));
        let pf = preflight(&f, &r);
        assert!(!pf.allowed);
        assert_eq!(pf.reasons, ["reset_tool: no nvidia-smi under /host"]);
    }

    #[test]
    fn verification_after_reset() {
        let before = gpu(2, "Hopper");
        let mut after = node(vec![gpu(2, "Hopper")], vec![]);
        after.gpus[0].recovery_action = Reading::Ok(0);
        let v = verify(&before, &after);
        assert!(v.iter().all(|c| c.status == CheckStatus::Pass), "{v:?}");
        after.gpus[0].recovery_action = Reading::Ok(1);
        assert_eq!(verify(&before, &after)[1].status, CheckStatus::Block);
        after.gpus[0].handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        assert_eq!(verify(&before, &after)[0].status, CheckStatus::Block);
        after.gpus.clear();
        let v = verify(&before, &after);
        assert_eq!(v[0].check, "gpu_back");
        assert!(v[0].evidence.contains("power-cycle"));
    }
}
