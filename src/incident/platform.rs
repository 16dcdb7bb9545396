//! What the platform already says about a node's GPUs, read from the Node object at no probe cost: the
//! conditions that managed platforms' health agents set (EKS's node monitoring agent, AKS's Node Problem
//! Detector, NVIDIA NVSentinel, upstream node-problem-detector and AMD's `amdgpuhealth` plugin for it),
//! NVSentinel's quarantine annotation, the AMD GPU Operator's remediation taint ([`classify_node_taint`]),
//! and GPU Feature Discovery's labels. [`classify`] turns a condition into a [`PlatformMark`] by the table
//! [`CONDITIONS`]; [`join`] makes a mark and the probe's incident about the same fault one incident.
//!
//! Node objects are written by agents holding node credentials, and on a shared cluster a tenant's node
//! can write its own: every text taken from them is untrusted. Names are bounded to
//! [`MAX_NAME`] characters and messages to [`MAX_MESSAGE`], with control and bidirectional formatting
//! characters removed ([`clean`]).
//!
//! GKE: Google documents no GPU health node condition (its node auto-repair reads the kubelet's `Ready`;
//! the taint `nvidia.com/gpu=present:NoSchedule` only keeps non-GPU pods off GPU nodes,
//! cloud.google.com/kubernetes-engine/docs/how-to/gpus); GKE's node-problem-detector conditions are the
//! upstream rows below.

use serde::{Deserialize, Serialize};

use crate::finding::{Action, ActionKind, Finding, Incident, IncidentRule, Incidents, Severity};

/// Longest condition type, reason or label value kept (Kubernetes' own names are at most 63 characters in
/// a segment; a longer one is cut, never trusted whole).
pub const MAX_NAME: usize = 80;
/// Longest message kept: enough for an agent's sentence, bounded whatever a hostile node writes.
pub const MAX_MESSAGE: usize = 200;

/// One node condition as the API server has it (plain data: the launcher fills it from the Node object).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCondition<'a> {
    pub kind: &'a str,
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    /// `lastTransitionTime`.
    pub since: Option<&'a str>,
}

/// Who set the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformSource {
    EksNodeMonitoringAgent,
    AksNodeProblemDetector,
    #[serde(rename = "nvsentinel")]
    NvSentinel,
    NodeProblemDetector,
    /// A taint on a device of a ResourceSlice (KEP-5055, `resource.k8s.io` `spec.devices[].taints[]`), set
    /// by the DRA driver that publishes the slice (NVIDIA's `gpu.nvidia.com` driver from v0.4.0).
    DraDriverTaint,
    /// The kubelet's view of a pod's device health (KEP-4680,
    /// `status.containerStatuses[].allocatedResourcesStatus[]`), fed by the device plugin or DRA driver.
    KubeletDeviceHealth,
    /// node-problem-detector running AMD's `amdgpuhealth` custom plugin, which queries the AMD Device
    /// Metrics Exporter (uncorrectable ECC counts per block, fatal CPER records) against thresholds.
    AmdGpuHealth,
    /// The AMD GPU Operator's auto node remediation, which taints the node it is remediating.
    AmdGpuOperator,
    /// Habana's device plugin, which withdraws a Gaudi from `habana.ai/gaudi` allocatable when HLML raises
    /// a critical-error event for it: seen as allocatable below capacity.
    GaudiDevicePlugin,
    /// NVIDIA's device plugin, which withdraws a GPU from `nvidia.com/*` allocatable on NVML's Xid
    /// critical-error event: seen as allocatable below capacity.
    NvidiaDevicePlugin,
    /// AMD's device plugin, which withdraws a GPU from `amd.com/*` allocatable while AMD's Device Metrics
    /// Exporter (or its own KFD check) calls it unhealthy: seen as allocatable below capacity.
    AmdDevicePlugin,
}

impl PlatformSource {
    pub fn name(self) -> &'static str {
        match self {
            PlatformSource::EksNodeMonitoringAgent => "EKS node monitoring agent",
            PlatformSource::AksNodeProblemDetector => "AKS node problem detector",
            PlatformSource::NvSentinel => "NVSentinel",
            PlatformSource::NodeProblemDetector => "node-problem-detector",
            PlatformSource::DraDriverTaint => "NVIDIA DRA driver (ResourceSlice taint)",
            PlatformSource::KubeletDeviceHealth => {
                "kubelet device health (allocatedResourcesStatus)"
            }
            PlatformSource::AmdGpuHealth => "node-problem-detector (AMD amdgpuhealth)",
            PlatformSource::AmdGpuOperator => "AMD GPU Operator (remediation taint)",
            PlatformSource::GaudiDevicePlugin => "Habana device plugin (habana.ai/gaudi)",
            PlatformSource::NvidiaDevicePlugin => "NVIDIA device plugin",
            PlatformSource::AmdDevicePlugin => "AMD device plugin",
        }
    }

    /// The public page that names its conditions.
    pub fn doc(self) -> &'static str {
        match self {
            PlatformSource::EksNodeMonitoringAgent => {
                "docs.aws.amazon.com/eks/latest/userguide/node-health.html; github.com/aws/eks-node-monitoring-agent"
            }
            PlatformSource::AksNodeProblemDetector => {
                "learn.microsoft.com/azure/aks/gpu-health-monitoring; learn.microsoft.com/azure/aks/node-problem-detector"
            }
            PlatformSource::NvSentinel => "github.com/NVIDIA/NVSentinel",
            PlatformSource::NodeProblemDetector => "github.com/kubernetes/node-problem-detector",
            PlatformSource::DraDriverTaint => {
                "KEP-5055 (kubernetes/enhancements keps/sig-scheduling/5055-dra-device-taints-and-tolerations); github.com/NVIDIA/k8s-dra-driver-gpu"
            }
            PlatformSource::KubeletDeviceHealth => {
                "KEP-4680 (kubernetes/enhancements keps/sig-node/4680-add-resource-health-to-pod-status)"
            }
            PlatformSource::AmdGpuHealth => {
                "github.com/ROCm/device-metrics-exporter (docs: node-problem-detector integration)"
            }
            PlatformSource::AmdGpuOperator => {
                "github.com/ROCm/gpu-operator (docs: auto node remediation)"
            }
            PlatformSource::GaudiDevicePlugin => {
                "github.com/HabanaAI/habanalabs-k8s-device-plugin 1.16.0 (habanalabs.go watchXIDs, server.go)"
            }
            PlatformSource::NvidiaDevicePlugin => {
                "github.com/NVIDIA/k8s-device-plugin v0.20.0 (internal/rm/health.go checkHealth, internal/plugin/server.go ListAndWatch)"
            }
            PlatformSource::AmdDevicePlugin => {
                "github.com/ROCm/k8s-device-plugin (internal/pkg/plugin/plugin.go ListAndWatch, simpleHealthCheck; internal/pkg/exporter/health.go)"
            }
        }
    }
}

/// The fault a mark names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PlatformFault {
    /// An Xid; `code` when the agent names it.
    Xid {
        code: Option<u32>,
    },
    /// An uncorrectable (double-bit) ECC error or the memory faults that follow it.
    UncorrectableMemory,
    #[serde(rename = "nvlink")]
    NvLink,
    /// Fewer GPUs than the node should have.
    GpuMissing,
    IbLinkFlapping,
    Pcie,
    /// Thermal or clock throttling.
    Throttling,
    /// A GPU fault the agent does not name further.
    GpuUnhealthy,
    /// Not about the GPUs (kernel, storage, network, runtime).
    Node,
    /// NVSentinel quarantined (cordoned) the node for a fault it found.
    Quarantined,
    /// The DRA driver cannot watch this device's health (`gpu.nvidia.com/unmonitored`): informational.
    Unmonitored,
}

impl PlatformFault {
    pub fn title(self) -> String {
        match self {
            PlatformFault::Xid { code: Some(c) } => format!("Xid {c}"),
            PlatformFault::Xid { code: None } => "Xid errors".into(),
            // The reason beside it says which memory in the platform's words (`NvidiaDoubleBitError`,
            // `NeuronHBMUncorrectableError`).
            PlatformFault::UncorrectableMemory => "uncorrectable memory error".into(),
            PlatformFault::NvLink => "NVLink fault".into(),
            PlatformFault::GpuMissing => "GPU missing".into(),
            PlatformFault::IbLinkFlapping => "InfiniBand link flapping".into(),
            PlatformFault::Pcie => "PCIe errors".into(),
            PlatformFault::Throttling => "GPU throttling".into(),
            PlatformFault::GpuUnhealthy => "GPU unhealthy".into(),
            PlatformFault::Node => "node problem".into(),
            PlatformFault::Quarantined => "node quarantined".into(),
            PlatformFault::Unmonitored => "device health not monitored".into(),
        }
    }

    fn code(self) -> String {
        match self {
            PlatformFault::Xid { code: Some(c) } => format!("platform.xid.{c}"),
            PlatformFault::Xid { code: None } => "platform.xid".into(),
            PlatformFault::UncorrectableMemory => "platform.memory".into(),
            PlatformFault::NvLink => "platform.nvlink".into(),
            PlatformFault::GpuMissing => "platform.gpu_missing".into(),
            PlatformFault::IbLinkFlapping => "platform.ib_link".into(),
            PlatformFault::Pcie => "platform.pcie".into(),
            PlatformFault::Throttling => "platform.throttling".into(),
            PlatformFault::GpuUnhealthy => "platform.gpu".into(),
            PlatformFault::Node => "platform.node".into(),
            PlatformFault::Quarantined => "platform.quarantined".into(),
            PlatformFault::Unmonitored => "platform.unmonitored".into(),
        }
    }

    /// The incidents of the probe (`incident::rules` codes) that are this fault.
    fn incident_codes(self) -> &'static [&'static str] {
        match self {
            PlatformFault::UncorrectableMemory => &["gpu.memory", "neuron.ecc_uncorrectable"],
            PlatformFault::NvLink => &["nvlink.fault"],
            PlatformFault::GpuMissing => &["gpu.off_bus", "gpu.missing"],
            PlatformFault::IbLinkFlapping => &["nic.link_fault"],
            PlatformFault::Pcie => &["pcie.link_fault"],
            PlatformFault::Throttling => &["gpu.thermal", "node.power_brake"],
            _ => &[],
        }
    }

    fn action(self) -> Action {
        let (kind, detail) = match self {
            PlatformFault::Xid { .. } | PlatformFault::GpuUnhealthy => (
                ActionKind::Investigate,
                "probe the node (get_gpu_health) for the GPU and the fault behind the platform's mark",
            ),
            PlatformFault::UncorrectableMemory => (
                ActionKind::DrainAndResetGpu,
                "drain the node and reset the GPU; probe it (get_gpu_health) for which GPU",
            ),
            PlatformFault::NvLink => (
                ActionKind::Investigate,
                "inspect the NVLinks (inspect_topology) for the failing link",
            ),
            PlatformFault::GpuMissing => (
                ActionKind::RebootNode,
                "drain and reboot the node; if the GPU stays missing, replace it",
            ),
            PlatformFault::IbLinkFlapping => (
                ActionKind::CheckMechanicals,
                "check the InfiniBand cable and transceiver of the flapping port",
            ),
            PlatformFault::Pcie => (
                ActionKind::Investigate,
                "inspect the PCIe link (inspect_topology)",
            ),
            PlatformFault::Throttling => (
                ActionKind::CheckCooling,
                "check cooling and power (get_gpu_telemetry)",
            ),
            PlatformFault::Node => (
                ActionKind::Investigate,
                "see the condition's message on the node",
            ),
            PlatformFault::Quarantined => (
                ActionKind::Investigate,
                "see the NVSentinel health event that quarantined the node",
            ),
            PlatformFault::Unmonitored => (
                ActionKind::None,
                "none: the driver cannot watch this device's health, so the probe's word is the only one",
            ),
        };
        Action {
            kind,
            detail: detail.into(),
        }
    }
}

/// What the platform says about the node: one recognised condition (or annotation) in its unhealthy state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlatformMark {
    pub source: PlatformSource,
    pub fault: PlatformFault,
    pub severity: Severity,
    /// `type=status`, e.g. `AcceleratedHardwareReady=False` (or the annotation's key).
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The agent's message, at most 200 characters, control characters removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `lastTransitionTime` (a taint's `timeAdded`): since when the platform says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The DRA device it is about, `<driver>/<pool>/<device>` (a kubelet resource's id); absent for a node
    /// condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The GPU's UUID where the source names it (the slice device's `uuid` attribute): the mark is about
    /// that GPU and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
}

impl PlatformMark {
    /// One line: `EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since T`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.source.name(), self.detail())
    }

    /// `AcceleratedHardwareReady=False (NvidiaXID79Error) since T`.
    fn detail(&self) -> String {
        let mut s = self.condition.clone();
        if let Some(d) = &self.device {
            s.push_str(&format!(" on {d}"));
        }
        if let Some(u) = &self.gpu_uuid {
            s.push_str(&format!(" ({u})"));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(" ({r})"));
        }
        if let Some(t) = &self.since {
            s.push_str(&format!(" since {t}"));
        }
        s
    }

    pub fn code(&self) -> String {
        self.fault.code()
    }

    /// Is `inc` (a probe incident) the fault this mark names?
    pub fn is_about(&self, inc: &Incident) -> bool {
        // A mark naming one GPU is never about another GPU's incident, nor about a port's or the node's.
        if let Some(u) = &self.gpu_uuid {
            let theirs = inc
                .gpu_uuid
                .as_deref()
                .or_else(|| inc.signals.iter().find_map(|s| s.gpu_uuid.as_deref()));
            match theirs {
                Some(t) if !t.eq_ignore_ascii_case(u) => return false,
                None if inc.gpu.is_none() => return false,
                // A device the source calls sick without naming the fault is the fault the probe
                // found on that GPU.
                Some(_) if self.fault == PlatformFault::GpuUnhealthy => return true,
                _ => {}
            }
        }
        if let PlatformFault::Xid { code } = self.fault {
            let xid = |c: &str| match code {
                Some(n) => c == format!("xid.{n}"),
                None => c.starts_with("xid."),
            };
            return xid(&inc.code) || inc.signals.iter().any(|s| xid(&s.code));
        }
        let codes = self.fault.incident_codes();
        codes.contains(&inc.code.as_str())
            || inc.signals.iter().any(|s| codes.contains(&s.code.as_str()))
    }

    /// As a finding: a signal of the probe's incident, or the one signal of its own.
    pub fn finding(&self) -> Finding {
        let mut evidence = vec![self.line()];
        if let Some(m) = &self.message {
            evidence.push(format!("message = {m}"));
        }
        Finding {
            code: self.code(),
            severity: self.severity,
            gpu: None,
            gpu_uuid: self.gpu_uuid.clone(),
            summary: format!("{} reports {}", self.source.name(), self.fault.title()),
            evidence,
            action: self.fault.action(),
            about: vec![],
            first_seen: self.since.clone(),
        }
    }

    /// The incident of a mark no probe finding is about.
    pub fn incident(&self) -> Incident {
        let f = self.finding();
        Incident {
            code: self.code(),
            severity: self.severity,
            gpu: None,
            gpu_uuid: self.gpu_uuid.clone(),
            component: match (&self.device, &self.gpu_uuid) {
                (Some(d), Some(u)) => format!("device {d} ({u})"),
                (Some(d), None) => format!("device {d}"),
                _ => "node".into(),
            },
            title: self.fault.title(),
            summary: format!(
                "{} reports {}: {}",
                self.source.name(),
                self.fault.title(),
                self.detail()
            ),
            action: f.action.clone(),
            first_seen: self.since.clone(),
            rule: Some(IncidentRule {
                reason: match self.source {
                    PlatformSource::DraDriverTaint => "the DRA driver tainted this device in its ResourceSlice; the probe has not shown the fault",
                    PlatformSource::KubeletDeviceHealth => "the kubelet reports this pod's device unhealthy; the probe has not shown the fault",
                    PlatformSource::AmdGpuOperator => "the AMD GPU Operator tainted this node to remediate it; the probe has not shown the fault",
                    PlatformSource::GaudiDevicePlugin => "Habana's device plugin withdrew devices from allocatable; the probe has not shown the fault",
                    PlatformSource::NvidiaDevicePlugin => "NVIDIA's device plugin withdrew GPUs from allocatable; the probe has not shown the fault",
                    PlatformSource::AmdDevicePlugin => "AMD's device plugin withdrew GPUs from allocatable; the probe has not shown the fault",
                    _ => "the platform's health agent set this node condition; the probe has not shown the fault",
                }
                .into(),
                source: self.source.doc().into(),
            }),
            signals: vec![f],
        }
    }
}

/// How a row names the fault.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Fixed(PlatformFault),
    /// EKS's `AcceleratedHardwareReady` reasons (`NvidiaXID79Error`, `NvidiaDoubleBitError`, ...).
    EksReason,
    /// An Xid whose code the message may carry (`ErrorCode:79`, `XID 79`).
    XidInMessage,
}

/// One recognised condition type.
struct Row {
    kind: &'static str,
    /// The status that means a fault (`False` for the Ready-like ones, `True` for the problem-named ones).
    fault_status: &'static str,
    source: PlatformSource,
    fault: Fault,
    severity: Severity,
}

const fn row(
    kind: &'static str,
    fault_status: &'static str,
    source: PlatformSource,
    fault: Fault,
    severity: Severity,
) -> Row {
    Row {
        kind,
        fault_status,
        source,
        fault,
        severity,
    }
}

use Fault::{EksReason, Fixed, XidInMessage};
use PlatformFault as F;
use PlatformSource::{
    AksNodeProblemDetector as Aks, AmdGpuHealth as AmdNpd, EksNodeMonitoringAgent as Eks,
    NodeProblemDetector as Npd, NvSentinel as Nvs,
};
use Severity::{Critical, Warning};

/// The conditions recognised, by type.
const CONDITIONS: &[Row] = &[
    // EKS node monitoring agent: one condition per category, True when healthy; a GPU fault sets
    // AcceleratedHardwareReady=False with the reason naming it (NvidiaXID<n>Error for the well-known Xids,
    // NvidiaDoubleBitError, NvidiaNVLinkError, NvidiaDeviceCountMismatch, ...; the warnings are Events,
    // not conditions). docs.aws.amazon.com/eks/latest/userguide/node-health.html,
    // github.com/aws/eks-node-monitoring-agent (reasons).
    row(
        "AcceleratedHardwareReady",
        "False",
        Eks,
        EksReason,
        Critical,
    ),
    row("KernelReady", "False", Eks, Fixed(F::Node), Warning),
    row("NetworkingReady", "False", Eks, Fixed(F::Node), Warning),
    row("StorageReady", "False", Eks, Fixed(F::Node), Warning),
    row(
        "ContainerRuntimeReady",
        "False",
        Eks,
        Fixed(F::Node),
        Warning,
    ),
    // AKS Node Problem Detector's GPU checks, True when the problem is present
    // (learn.microsoft.com/azure/aks/gpu-health-monitoring).
    row("GPUMissing", "True", Aks, Fixed(F::GpuMissing), Critical),
    row(
        "NVLinkStatusInactive",
        "True",
        Aks,
        Fixed(F::NvLink),
        Critical,
    ),
    row("XIDErrors", "True", Aks, XidInMessage, Warning),
    row(
        "IBLinkFlapping",
        "True",
        Aks,
        Fixed(F::IbLinkFlapping),
        Warning,
    ),
    row(
        "GPUClockThrottling",
        "True",
        Aks,
        Fixed(F::Throttling),
        Warning,
    ),
    row(
        "UnhealthyNvidiaDevicePlugin",
        "True",
        Aks,
        Fixed(F::GpuUnhealthy),
        Warning,
    ),
    // NVSentinel: a condition per health check, named after the check, True when unhealthy (reason
    // `<check>IsNotHealthy`, the error code in the message): the syslog monitor's checks and the DCGM
    // health watches of its GPU health monitor (github.com/NVIDIA/NVSentinel).
    row("SysLogsXIDError", "True", Nvs, XidInMessage, Critical),
    row("SysLogsSXIDError", "True", Nvs, Fixed(F::NvLink), Critical),
    row(
        "SysLogsGPUFallenOff",
        "True",
        Nvs,
        Fixed(F::Xid { code: Some(79) }),
        Critical,
    ),
    row("GpuXidError", "True", Nvs, XidInMessage, Critical),
    row("GpuNvlinkWatch", "True", Nvs, Fixed(F::NvLink), Critical),
    row(
        "GpuMemWatch",
        "True",
        Nvs,
        Fixed(F::UncorrectableMemory),
        Critical,
    ),
    row("GpuPcieWatch", "True", Nvs, Fixed(F::Pcie), Warning),
    row(
        "GpuThermalWatch",
        "True",
        Nvs,
        Fixed(F::Throttling),
        Warning,
    ),
    row("GpuPowerWatch", "True", Nvs, Fixed(F::Throttling), Warning),
    row(
        "GpuInforomWatch",
        "True",
        Nvs,
        Fixed(F::GpuUnhealthy),
        Warning,
    ),
    row(
        "GpuDriverWatch",
        "True",
        Nvs,
        Fixed(F::GpuUnhealthy),
        Critical,
    ),
    // Upstream node-problem-detector's default monitors (config/kernel-monitor.json,
    // config/docker-monitor.json, config/systemd-monitor-counter.json).
    row("KernelDeadlock", "True", Npd, Fixed(F::Node), Warning),
    row("ReadonlyFilesystem", "True", Npd, Fixed(F::Node), Warning),
    row(
        "FrequentKubeletRestart",
        "True",
        Npd,
        Fixed(F::Node),
        Warning,
    ),
    row(
        "FrequentContainerdRestart",
        "True",
        Npd,
        Fixed(F::Node),
        Warning,
    ),
    row(
        "FrequentDockerRestart",
        "True",
        Npd,
        Fixed(F::Node),
        Warning,
    ),
    row(
        "CorruptDockerOverlay2",
        "True",
        Npd,
        Fixed(F::Node),
        Warning,
    ),
    // AMD's node-problem-detector plugin: `amdgpuhealth query ...` exits 1 when a GPU metric (an
    // uncorrectable ECC count, a fatal CPER record) passes its threshold, and NPD sets the rule's condition
    // True with the tool's output as message. AMD's documented rules use the condition `AMDGPUProblem`
    // (reason `AMDGPUIsDown`), which the GPU Operator's auto remediation acts on
    // (ROCm/device-metrics-exporter docs/integrations/npd; ROCm/gpu-operator docs/autoremediation).
    row(
        "AMDGPUProblem",
        "True",
        AmdNpd,
        Fixed(F::GpuUnhealthy),
        Critical,
    ),
];

/// The AMD GPU Operator's remediation taint: set on a node while its auto remediation workflow drains
/// and repairs it (ROCm/gpu-operator docs, `amd-gpu-unhealthy:NoSchedule`).
pub const AMD_UNHEALTHY_TAINT: &str = "amd-gpu-unhealthy";

/// The mark a node taint makes, for the taints a GPU health agent sets; `None` for any other taint (a
/// taint alone is scheduling policy, shown as such in the node's taints).
pub fn classify_node_taint(
    key: &str,
    value: Option<&str>,
    effect: &str,
    time_added: Option<&str>,
) -> Option<PlatformMark> {
    if key != AMD_UNHEALTHY_TAINT {
        return None;
    }
    let effect = clean(effect, MAX_NAME);
    let condition = match value.map(|v| clean(v, MAX_NAME)).filter(|v| !v.is_empty()) {
        Some(v) => format!("taint {key}={v}:{effect}"),
        None => format!("taint {key}:{effect}"),
    };
    Some(PlatformMark {
        source: PlatformSource::AmdGpuOperator,
        fault: F::GpuUnhealthy,
        severity: Critical,
        condition,
        reason: None,
        message: None,
        since: time_added
            .map(|t| clean(t, MAX_NAME))
            .filter(|t| !t.is_empty()),
        device: None,
        gpu_uuid: None,
    })
}

/// A device plugin's withdrawal of devices, seen as a resource's allocatable below its capacity: the kubelet
/// counts only the devices the plugin lists `Healthy` as allocatable. Each vendor's plugin withdraws for its
/// own reasons, named in its words:
/// - Habana's marks a Gaudi `Unhealthy` when it cannot register HLML's critical-error event for it, and
///   every Gaudi of the node when a critical-error event's device cannot be looked up (by serial) or has no
///   UUID. An event whose device it finds withdraws nothing: it compares its devices' ids, which are serial
///   numbers, with that device's UUID, and they never match. Nothing marks a device healthy again until the
///   plugin restarts (HabanaAI/habanalabs-k8s-device-plugin 1.16.0, `habanalabs.go:88-90` `ID: serial`,
///   `:122-128` registration, `:150-175` the event, `server.go:189-191`).
/// - NVIDIA's marks a GPU `Unhealthy` on NVML's Xid critical-error event, except the application Xids 13,
///   31, 43, 45, 68 and 109 and those in `DP_DISABLE_HEALTHCHECKS`, and every GPU when waiting for events
///   fails or an event names no GPU it can find; none recovers until the plugin restarts (NVIDIA/
///   k8s-device-plugin v0.20.0, `internal/rm/health.go:78-170` and `:233-240`, `internal/plugin/server.go:277`
///   "there is no way to recover from the Unhealthy state").
/// - AMD's sets each GPU's health at every heartbeat from AMD's Device Metrics Exporter's health service
///   where it runs, else from one node-wide check of KFD's topology (every GPU or none), so a GPU returns
///   when it reads healthy again (ROCm/k8s-device-plugin `internal/pkg/plugin/plugin.go:304-320`
///   `ListAndWatch` and `:161` `simpleHealthCheck`, `internal/pkg/exporter/health.go` `PopulatePerGPUDHealth`).
///
/// None allocatable is also what the kubelet shows for five minutes after a plugin itself stopped (it keeps
/// the capacity and withdraws every device: kubernetes `pkg/kubelet/cm/devicemanager`,
/// `endpointStopGracePeriod`), so then both causes are named. Critical: the withdrawn devices take no work.
/// `None` when every device is allocatable, the plugin advertises none, or `source` is no device plugin.
pub fn devices_withdrawn(
    source: PlatformSource,
    resource: &str,
    capacity: u64,
    allocatable: u64,
) -> Option<PlatformMark> {
    if capacity == 0 || allocatable >= capacity {
        return None;
    }
    let all = allocatable == 0;
    let gone = capacity - allocatable;
    let (condition, reason, message) = match source {
        PlatformSource::GaudiDevicePlugin => (
            format!("{gone} of {capacity} Gaudi devices withdrawn (allocatable {allocatable})"),
            if all {
                "an HLML critical-error event whose device HLML could not name, HLML event registration failed \
                 for every device, or the device plugin stopped"
            } else {
                "HLML event registration failed for the withdrawn devices"
            },
            "the plugin withdraws a device whose HLML critical-error event it could not register at its start, \
             and every device on a critical-error event whose device HLML cannot name; an event naming a device \
             withdraws none (the plugin compares its ids, serial numbers, with the device's UUID); nothing \
             returns a device until the plugin restarts; the kubelet withdraws every device of a plugin that \
             stopped",
        ),
        PlatformSource::NvidiaDevicePlugin => (
            format!("{gone} of {capacity} {resource} withdrawn (allocatable {allocatable})"),
            if all {
                "NVML Xid critical-error events on every GPU, an NVML event wait that failed, or the device \
                 plugin stopped"
            } else {
                "NVML Xid critical-error event"
            },
            "the plugin withdraws a GPU on NVML's Xid critical-error event (every Xid but 13, 31, 43, 45, 68 and \
             109 and those in DP_DISABLE_HEALTHCHECKS) and returns it only when the plugin restarts; the kubelet \
             withdraws every device of a plugin that stopped",
        ),
        PlatformSource::AmdDevicePlugin => (
            format!("{gone} of {capacity} {resource} withdrawn (allocatable {allocatable})"),
            if all {
                "AMD Device Metrics Exporter health or the plugin's KFD topology check failed for every GPU, \
                 or the device plugin stopped"
            } else {
                "AMD Device Metrics Exporter health"
            },
            "the plugin withdraws a GPU while AMD's Device Metrics Exporter calls it unhealthy (every GPU when \
             its KFD topology check fails where no exporter runs) and returns it when it reads healthy again; \
             the kubelet withdraws every device of a plugin that stopped",
        ),
        _ => return None,
    };
    // NVIDIA's plugin withdraws some GPUs only on Xid events, so its mark is about the probe's Xid incident;
    // every GPU withdrawn may be a stopped plugin, the others' marks name no fault the probe can match.
    let fault = match source {
        PlatformSource::NvidiaDevicePlugin if !all => F::Xid { code: None },
        _ => F::GpuUnhealthy,
    };
    Some(PlatformMark {
        source,
        fault,
        severity: Critical,
        condition,
        reason: Some(reason.into()),
        message: Some(message.into()),
        since: None,
        device: None,
        gpu_uuid: None,
    })
}

/// NVSentinel's fault-quarantine module records the health event that made it cordon a node in these
/// annotations (github.com/NVIDIA/NVSentinel, `QuarantineHealthEventIsCordonedAnnotationKey`).
pub const NVSENTINEL_CORDONED: &str = "quarantineHealthEventIsCordoned";

/// The mark a recognised condition in its fault state makes; `None` for an unrecognised condition or one
/// that is healthy (or `Unknown`: the caller reports that generically).
pub fn classify(c: &NodeCondition) -> Option<PlatformMark> {
    let row = CONDITIONS.iter().find(|r| r.kind == c.kind)?;
    if c.status != row.fault_status {
        return None;
    }
    let reason = c
        .reason
        .map(|r| clean(r, MAX_NAME))
        .filter(|r| !r.is_empty());
    let message = c
        .message
        .map(|m| clean(m, MAX_MESSAGE))
        .filter(|m| !m.is_empty());
    let fault = match row.fault {
        Fixed(f) => f,
        EksReason => eks_reason(reason.as_deref().unwrap_or("")),
        XidInMessage => F::Xid {
            code: message.as_deref().and_then(xid_in),
        },
    };
    Some(PlatformMark {
        source: row.source,
        fault,
        severity: row.severity,
        condition: format!("{}={}", row.kind, row.fault_status),
        reason,
        message,
        since: c.since.map(|t| clean(t, MAX_NAME)),
        device: None,
        gpu_uuid: None,
    })
}

/// The mark of NVSentinel's quarantine annotation (`value` `True` when it cordoned the node).
pub fn classify_annotation(key: &str, value: &str) -> Option<PlatformMark> {
    (key == NVSENTINEL_CORDONED && value.eq_ignore_ascii_case("true")).then(|| PlatformMark {
        source: PlatformSource::NvSentinel,
        fault: F::Quarantined,
        severity: Warning,
        condition: format!("{NVSENTINEL_CORDONED}=True"),
        reason: None,
        message: None,
        since: None,
        device: None,
        gpu_uuid: None,
    })
}

/// One taint of one device in a ResourceSlice, as the API server has it (plain data: the launcher fills
/// it from `spec.devices[].taints[]`, v1beta1 `spec.devices[].basic.taints[]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceTaint<'a> {
    /// `spec.driver`, `spec.pool.name` and `spec.devices[].name`.
    pub driver: &'a str,
    pub pool: &'a str,
    pub device: &'a str,
    pub key: &'a str,
    pub value: Option<&'a str>,
    /// `NoSchedule`, `NoExecute`, `None` (1.35+); anything else is read as `None` (KEP-5055: unknown
    /// effects are ignored by the scheduler).
    pub effect: &'a str,
    /// `timeAdded`.
    pub time_added: Option<&'a str>,
    /// The device's `uuid` attribute (`gpu.nvidia.com/uuid` or `uuid`), where the driver publishes it.
    pub gpu_uuid: Option<&'a str>,
}

/// NVIDIA's DRA driver's taint keys (github.com/NVIDIA/k8s-dra-driver-gpu, v0.4.0 device health):
/// `xid=<n>` with the Xid code (effect `None` for the Xids it ignores), the GPU lost, the device not
/// watched.
pub const TAINT_XID: &str = "gpu.nvidia.com/xid";
pub const TAINT_GPU_LOST: &str = "gpu.nvidia.com/gpu-lost";
pub const TAINT_UNMONITORED: &str = "gpu.nvidia.com/unmonitored";

/// The mark a device taint makes. A `NoSchedule`/`NoExecute` taint is the driver taking the device out of
/// service: critical. Effect `None` (or one this build does not know) keeps the device schedulable: the
/// mark is informational, as is `unmonitored`.
pub fn classify_taint(t: &DeviceTaint) -> PlatformMark {
    let key = clean(t.key, MAX_NAME);
    let value = t
        .value
        .map(|v| clean(v, MAX_NAME))
        .filter(|v| !v.is_empty());
    let effect = clean(t.effect, MAX_NAME);
    let enforced = matches!(effect.as_str(), "NoSchedule" | "NoExecute");
    let fault = match key.as_str() {
        TAINT_XID => F::Xid {
            code: value
                .as_deref()
                .filter(|v| v.len() <= 4)
                .and_then(|v| v.parse().ok()),
        },
        TAINT_GPU_LOST => F::GpuMissing,
        TAINT_UNMONITORED => F::Unmonitored,
        _ => F::GpuUnhealthy,
    };
    let severity = if enforced && fault != F::Unmonitored {
        Critical
    } else {
        Severity::Info
    };
    let shown_effect = if effect.is_empty() {
        "None".to_string()
    } else {
        effect.clone()
    };
    let condition = match &value {
        Some(v) => format!("{key}={v}:{shown_effect}"),
        None => format!("{key}:{shown_effect}"),
    };
    PlatformMark {
        source: PlatformSource::DraDriverTaint,
        fault,
        severity,
        condition,
        reason: (!enforced && !matches!(effect.as_str(), "None" | ""))
            .then(|| format!("effect {effect} unknown, read as None")),
        message: None,
        since: t
            .time_added
            .map(|s| clean(s, MAX_NAME))
            .filter(|s| !s.is_empty()),
        device: Some(format!(
            "{}/{}/{}",
            clean(t.driver, MAX_NAME),
            clean(t.pool, MAX_NAME),
            clean(t.device, MAX_NAME)
        )),
        gpu_uuid: t
            .gpu_uuid
            .map(|u| clean(u, MAX_NAME))
            .filter(|u| !u.is_empty()),
    }
}

/// One resource of a container's `allocatedResourcesStatus` (KEP-4680).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceHealth<'a> {
    /// The pod, `namespace/name`, and the entry's `name` (`claim:<claim>/<request>` or a resource name).
    pub pod: &'a str,
    pub name: &'a str,
    /// `resources[].resourceID`: `<driver>/<pool>/<device>` for DRA, the device plugin's id otherwise.
    pub resource_id: &'a str,
    /// `Healthy`, `Unhealthy` or `Unknown`.
    pub health: &'a str,
    pub message: Option<&'a str>,
    /// The UUID of the GPU the resource is, where the caller knows it (a DRA device's slice attribute).
    pub gpu_uuid: Option<&'a str>,
}

/// The mark of an `Unhealthy` resource (critical: the kubelet says the device a pod holds is sick);
/// `None` for `Healthy` and `Unknown` (no word, not a fault).
pub fn classify_resource_health(r: &ResourceHealth) -> Option<PlatformMark> {
    if r.health != "Unhealthy" {
        return None;
    }
    let id = clean(r.resource_id, MAX_NAME);
    Some(PlatformMark {
        source: PlatformSource::KubeletDeviceHealth,
        fault: F::GpuUnhealthy,
        severity: Critical,
        condition: format!(
            "{} {}=Unhealthy",
            clean(r.pod, MAX_NAME),
            clean(r.name, MAX_NAME)
        ),
        reason: None,
        message: r
            .message
            .map(|m| clean(m, MAX_MESSAGE))
            .filter(|m| !m.is_empty()),
        since: None,
        device: (!id.is_empty()).then_some(id),
        gpu_uuid: r
            .gpu_uuid
            .map(|u| clean(u, MAX_NAME))
            .filter(|u| !u.is_empty()),
    })
}

fn eks_reason(reason: &str) -> PlatformFault {
    if let Some(n) = reason
        .strip_prefix("NvidiaXID")
        .and_then(|r| r.strip_suffix("Error"))
        .and_then(|n| n.parse().ok())
    {
        return F::Xid { code: Some(n) };
    }
    match reason {
        "NvidiaDoubleBitError" => F::UncorrectableMemory,
        "NvidiaNVLinkError" => F::NvLink,
        "NvidiaDeviceCountMismatch" => F::GpuMissing,
        "NvidiaPCIeError" => F::Pcie,
        "NvidiaThermalError" | "NvidiaPowerError" => F::Throttling,
        // The agent's Neuron monitor reads the driver's `NEURON_HW_ERR=` lines (monitors/neuron/monitor.go
        // :69-90, pkg/reasons/reasons.go:31-46): HBM and SRAM uncorrectable errors are the device's memory;
        // a NeuronCore or DMA error names no more than a sick device.
        "NeuronHBMUncorrectableError" | "NeuronSRAMUncorrectableError" => F::UncorrectableMemory,
        _ => F::GpuUnhealthy,
    }
}

/// The Xid code a message names: `ErrorCode:79` (NVSentinel), `Xid 79`, `XID-79`, `XID 79`.
fn xid_in(message: &str) -> Option<u32> {
    let lower = message.to_ascii_lowercase();
    for key in ["errorcode:", "xid-", "xid ", "xid:", "xid_"] {
        if let Some(i) = lower.find(key) {
            let digits: String = lower[i + key.len()..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .take(5)
                .collect();
            // Xid codes have at most four digits; a longer number is no Xid.
            if digits.len() <= 4
                && let Ok(n) = digits.parse()
            {
                return Some(n);
            }
        }
    }
    None
}

/// `text` as one bounded line: control and bidirectional formatting characters dropped, runs of
/// whitespace one space, at most `max` characters (cut with `…`).
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut space = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if ch.is_control()
            || matches!(ch, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        {
            continue;
        }
        if space {
            if n + 1 >= max {
                out.push('…');
                return out;
            }
            out.push(' ');
            n += 1;
            space = false;
        }
        if n + 1 >= max {
            out.push('…');
            return out;
        }
        out.push(ch);
        n += 1;
    }
    out
}

/// Join the platform's marks to the probe's incidents: a mark about the fault of an incident becomes one
/// of its signals (its summary says who else reports it and since when), never a second incident; a mark
/// no incident is about is an incident of its own. Incidents stay worst first.
pub fn join(incidents: &mut Incidents, marks: &[PlatformMark]) {
    let mut own = Vec::new();
    for m in marks {
        match incidents.incidents.iter_mut().find(|i| m.is_about(i)) {
            Some(inc) => {
                inc.summary = format!("{} Also reported by {}.", inc.summary.trim_end(), m.line());
                let f = m.finding();
                // One fault, one judgement: the platform's word counts as much as the probe's, so a
                // critical mark makes the incident critical and the strongest action of all wins.
                inc.severity = inc.severity.max(f.severity);
                if f.action.kind > inc.action.kind {
                    inc.action = f.action.clone();
                }
                inc.signals.push(f);
            }
            None => own.push(m.incident()),
        }
    }
    incidents.incidents.extend(own);
    incidents.incidents.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.action.kind.cmp(&a.action.kind))
    });
}

/// GPU Feature Discovery's facts about the node's GPUs, from its labels (hints that may be stale:
/// github.com/NVIDIA/k8s-device-plugin, docs/gpu-feature-discovery).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GfdFacts {
    /// `nvidia.com/gpu.product`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// `nvidia.com/gpu.count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
    /// `nvidia.com/gpu.memory` (MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<String>,
    /// `nvidia.com/cuda.driver-version.full`, else `nvidia.com/cuda.driver.major.minor.rev` (older GFD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `nvidia.com/gpu.clique`: the NVLink domain (cluster UUID.clique id) on multi-node NVLink systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clique: Option<String>,
    /// `nvidia.com/mig.strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_strategy: Option<String>,
}

impl GfdFacts {
    pub fn is_empty(&self) -> bool {
        *self == GfdFacts::default()
    }

    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> GfdFacts {
        let labels: std::collections::BTreeMap<&str, &str> = labels.into_iter().collect();
        let get = |k: &str| {
            labels
                .get(k)
                .map(|v| clean(v, MAX_NAME))
                .filter(|v| !v.is_empty())
        };
        let old_driver = match (
            get("nvidia.com/cuda.driver.major"),
            get("nvidia.com/cuda.driver.minor"),
            get("nvidia.com/cuda.driver.rev"),
        ) {
            (Some(a), Some(b), Some(c)) if !c.is_empty() => Some(format!("{a}.{b}.{c}")),
            (Some(a), Some(b), _) => Some(format!("{a}.{b}")),
            _ => None,
        };
        GfdFacts {
            product: get("nvidia.com/gpu.product"),
            count: get("nvidia.com/gpu.count"),
            memory_mib: get("nvidia.com/gpu.memory"),
            driver: get("nvidia.com/cuda.driver-version.full").or(old_driver),
            clique: get("nvidia.com/gpu.clique"),
            mig_strategy: get("nvidia.com/mig.strategy"),
        }
    }

    /// `driver 550.54.15, clique <id>` (what the node line does not already say), empty when unknown.
    pub fn brief(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.driver {
            parts.push(format!("driver {d}"));
        }
        if let Some(c) = &self.clique {
            parts.push(format!("clique {c}"));
        }
        if let Some(m) = self.mig_strategy.as_deref().filter(|m| *m != "none") {
            parts.push(format!("MIG {m}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
