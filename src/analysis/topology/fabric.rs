//! The NVSwitch fabric: a GPU's registration state and health mask decoded (NVML's fabric info), and the
//! findings on them and on nvidia-fabricmanager.

use serde::{Deserialize, Serialize};

use crate::analysis::{finding, gpu_label};
use crate::facts::{FabricFacts, GpuFacts, NodeFacts};
use crate::finding::{ActionKind, Finding, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fabric {
    /// `not_supported`, `not_started`, `in_progress`, `completed`.
    pub state: String,
    /// Registration result once completed: `success`, or the NVML error number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clique_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uuid: Option<String>,
    /// Decoded health mask fields, e.g. `degraded_bandwidth=false`.
    pub health: Vec<String>,
}

/// The multi-node NVLink domain a node's GPUs registered in: NVML's cluster UUID and clique, written
/// `<cluster uuid>.<clique id>` as GPU Feature Discovery's `nvidia.com/gpu.clique` label writes it. `None`
/// where no GPU completed registration successfully with a cluster UUID other than nil: the rule of
/// NVIDIA/go-nvlib's `IsFabricAttached` (pkg/nvlib/device/device.go), on which GFD's clique label rests.
pub fn nvlink_domain(facts: &NodeFacts) -> Option<String> {
    facts.gpus.iter().find_map(|g| {
        let f = g.fabric.ok()?;
        let uuid = f.cluster_uuid.as_deref()?;
        let nil = uuid.chars().all(|c| c == '0' || c == '-');
        (f.state == 3 && f.status == Some(0) && !nil && !uuid.is_empty())
            .then(|| format!("{uuid}.{}", f.clique_id.unwrap_or(0)))
    })
}

fn fabric_state(state: u32) -> String {
    match state {
        0 => "not_supported".into(),
        1 => "not_started".into(),
        2 => "in_progress".into(),
        3 => "completed".into(),
        n => format!("state_{n}"),
    }
}

/// One tri-state field of the fabric health mask: its name and value where the GPU supports it.
struct HealthFlag {
    name: &'static str,
    value: Option<bool>,
}

/// The 2-bit tri-state fields of the fabric health mask (NVML_GPU_FABRIC_HEALTH_MASK_*): 0 not
/// supported, 1 true, 2 false.
fn fabric_flags(mask: u32) -> Vec<HealthFlag> {
    [
        ("degraded_bandwidth", 0),
        ("route_recovery_in_progress", 2),
        ("route_unhealthy", 4),
        ("access_timeout_recovery", 6),
    ]
    .into_iter()
    .map(|(name, shift)| HealthFlag {
        name,
        value: match (mask >> shift) & 0x3 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
    })
    .collect()
}

/// Incorrect-configuration field (4 bits at 8): 0 not supported, 1 none, 2.. a named misconfiguration.
fn fabric_config(mask: u32) -> Option<&'static str> {
    match (mask >> 8) & 0xf {
        0 => None,
        1 => Some("none"),
        2 => Some("incorrect_sysguid"),
        3 => Some("incorrect_chassis_serial"),
        4 => Some("no_partition"),
        5 => Some("insufficient_nvlinks"),
        _ => Some("unknown"),
    }
}

pub(super) fn decode_fabric(f: &FabricFacts) -> Fabric {
    let mut health = Vec::new();
    if let Some(mask) = f.health_mask {
        for flag in fabric_flags(mask) {
            if let Some(v) = flag.value {
                health.push(format!("{}={v}", flag.name));
            }
        }
        if let Some(c) = fabric_config(mask) {
            health.push(format!("incorrect_configuration={c}"));
        }
    }
    Fabric {
        state: fabric_state(f.state),
        status: (f.state == 3).then(|| match f.status {
            Some(0) => "success".to_string(),
            Some(n) => format!("nvml_error_{n}"),
            None => "unknown".to_string(),
        }),
        clique_id: f.clique_id,
        cluster_uuid: f.cluster_uuid.clone(),
        health,
    }
}

pub(super) fn fabric_findings(g: &GpuFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(f) = g.fabric.ok() else {
        return out;
    };
    let who = gpu_label(g);
    let state_ev = format!(
        "fabric.state = {}, status = {}",
        fabric_state(f.state),
        f.status.map_or("none".into(), |s| s.to_string())
    );
    match f.state {
        0 => {}
        3 if f.status.is_some_and(|s| s != 0) => out.push(finding(
            "fabric.registration_failed",
            Severity::Critical,
            Some(g),
            format!("{who} failed to register with the NVLink fabric: it has no NVLink P2P to its peers."),
            vec![state_ev],
            ActionKind::RestartFabricManager,
            "check nvidia-fabricmanager's log and that its version matches the driver; restart it, then reset the GPU".into(),
        )),
        3 => {}
        _ => out.push(finding(
            "fabric.not_registered",
            Severity::Critical,
            Some(g),
            format!(
                "{who} has not finished NVLink fabric registration (state {}): CUDA reports the system not ready and NVLink P2P is unavailable.",
                fabric_state(f.state)
            ),
            vec![state_ev],
            ActionKind::RestartFabricManager,
            "start or restart nvidia-fabricmanager (its version must match the driver) and wait for registration".into(),
        )),
    }
    if let Some(mask) = f.health_mask {
        for HealthFlag { name, value } in fabric_flags(mask) {
            if value != Some(true) {
                continue;
            }
            let severity = if name == "route_unhealthy" {
                Severity::Critical
            } else {
                Severity::Warning
            };
            // Degraded bandwidth is what a lost switch (an NVL72 switch tray) leaves on every GPU it served: the
            // fabric is at fault, and a GPU reset does not bring the switch back.
            let (kind, detail) = if name == "degraded_bandwidth" {
                (
                    ActionKind::Investigate,
                    "check the NVLink fabric: this GPU's links (inspect_topology), nvidia-fabricmanager, and on a \
                     multi-node NVLink rack its switch trays (the same on other trays of the domain is the switch's \
                     fault); reset the GPU only when its own links are faulty",
                )
            } else {
                (
                    ActionKind::ResetGpuWhenDrained,
                    "check its NVLinks (topology) and nvidia-fabricmanager; reset the GPU when drained if it persists",
                )
            };
            out.push(finding(
                &format!("fabric.{name}"),
                severity,
                Some(g),
                format!(
                    "{who} fabric health reports {} (health mask {mask:#x}).",
                    name.replace('_', " ")
                ),
                vec![
                    format!("fabric.health_mask = {mask:#x}"),
                    format!("{name} = true"),
                ],
                kind,
                detail.into(),
            ));
        }
        if let Some(c) = fabric_config(mask)
            && c != "none"
        {
            out.push(finding(
                "fabric.incorrect_configuration",
                Severity::Critical,
                Some(g),
                format!("{who} fabric reports an incorrect configuration: {c}."),
                vec![format!("fabric.health_mask = {mask:#x}")],
                ActionKind::ContactSupport,
                "check the NVLink partition/system configuration with the platform vendor".into(),
            ));
        }
    }
    out
}

/// NVSwitch systems need nvidia-fabricmanager running (A100 and H100 HGX).
pub(super) fn fabric_manager_findings(facts: &NodeFacts) -> Vec<Finding> {
    let switched = facts.gpus.iter().any(|g| {
        g.nvlinks
            .iter()
            .any(|l| l.remote_device_type.ok().map(String::as_str) == Some("switch"))
    });
    let fm = facts
        .services
        .iter()
        .find(|s| s.name == "nvidia-fabricmanager");
    match (switched, fm.and_then(|s| s.running.get())) {
        (true, Some(false)) => vec![finding(
            "fabric.manager_not_running",
            Severity::Critical,
            None,
            "nvidia-fabricmanager is not running on an NVSwitch system: GPUs cannot (re)join the NVLink fabric, and on A100 GPUs cannot be reset individually.".into(),
            vec!["service nvidia-fabricmanager running = false".into(), "nvlink remote_device_type = switch".into()],
            ActionKind::RestartFabricManager,
            "systemctl start nvidia-fabricmanager (the version must match the driver), then check each GPU's fabric state".into(),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::topology::test_facts::gpu;
    use crate::facts::Reading;

    #[test]
    fn fabric_states_and_health() {
        let mut g = gpu(0, "0000:18:00.0", vec![]);
        let healthy = 2 | (2 << 2) | (2 << 4) | (2 << 6) | (1 << 8);
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(0),
            health_mask: Some(healthy),
            ..Default::default()
        });
        assert!(fabric_findings(&g).is_empty());
        let d = decode_fabric(g.fabric.ok().unwrap());
        assert_eq!(d.status.as_deref(), Some("success"));
        assert!(d.health.contains(&"degraded_bandwidth=false".to_string()));
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(0),
            health_mask: Some(healthy & !0x3 | 1),
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.degraded_bandwidth");
        g.fabric = Reading::Ok(FabricFacts {
            state: 2,
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.not_registered");
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(999),
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.registration_failed");
        g.fabric = Reading::not_supported();
        assert!(fabric_findings(&g).is_empty());
    }
}
