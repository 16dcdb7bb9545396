//! What is read of the exporters' series: each metric name either exporter publishes, the signal it
//! carries, and which GPU labels name a GPU.
//!
//! Names and units are the exporters' own:
//! - NVIDIA dcgm-exporter, `etc/default-counters.csv` and `etc/dcp-metrics-included.csv`
//!   (github.com/NVIDIA/dcgm-exporter): utilization, power, temperature, SM clock, the last Xid, PCIe replays
//!   and remapped rows are in the default set; the clocks-event (throttle) reasons, the power limit and the
//!   volatile ECC totals are DCGM fields a cluster adds to its counters CSV (`DCGM_FI_DEV_CLOCKS_EVENT_REASONS`
//!   since DCGM 3.3, `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` before). Series carry `gpu` (the index), `UUID`,
//!   `modelName` and `Hostname`.
//! - AMD device-metrics-exporter, `docs/configuration/metricslist.md` (github.com/ROCm/device-metrics-exporter):
//!   the field names in lower case (`gpu_gfx_activity`, `gpu_power_usage`, ...), with `gpu_id`,
//!   `serial_number`, `card_model` and `hostname`; the violation residencies are MI3xx only.
//! - Intel's Gaudi metric exporter (docs.habana.ai, Orchestration/Prometheus_Metric_Exporter; its Go source's
//!   `Collect` and `getMetricLabels`): `habanalabs_*` gauges from HLML, power in milliwatts
//!   (`habanalabs_power_mW`, `habanalabs_power_default_limit_mW`), the on-chip temperature, PCIe replays
//!   and the HBM rows pending replacement; series carry `Serial` (HLML's serial, the device plugin's id),
//!   `UUID` and `id`, and no node label of their own (the scrape's relabelling adds one). It publishes no
//!   throttle reasons, ECC counts or error events.

use serde::{Deserialize, Serialize};

/// Whose exporter a series comes from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Exporter {
    /// NVIDIA's dcgm-exporter.
    Dcgm,
    /// AMD's device-metrics-exporter.
    Amd,
    /// Intel's Gaudi metric exporter.
    Gaudi,
}

impl Exporter {
    pub fn name(self) -> &'static str {
        match self {
            Exporter::Dcgm => "dcgm-exporter",
            Exporter::Amd => "AMD device-metrics-exporter",
            Exporter::Gaudi => "Intel Gaudi metric exporter",
        }
    }
}

/// What a series says about its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Percent busy (dcgm's GPU_UTIL, AMD's GFX activity).
    Utilization,
    /// Watts drawn.
    Power,
    /// The power limit in force, watts.
    PowerLimit,
    /// GPU (NVIDIA) or junction/edge (AMD) temperature, °C.
    Temperature,
    /// SM clock, MHz.
    SmClock,
    /// NVML's clocks-event reasons bitmask.
    ClocksEventReasons,
    /// The code of the last Xid the GPU reported (dcgm: "Value of the last XID error encountered").
    LastXid,
    /// A counter that only grows (resets at a driver reload), with how bad an increase is.
    Counter(CounterKind),
    /// A failed row remap (dcgm's gauge, 1 when remapping failed).
    RowRemapFailure,
    /// An AMD violation residency in percent of the last interval.
    Violation(AmdViolation),
    /// HBM rows with ECC errors waiting for the device's next reset to be replaced (Gaudi; a gauge),
    /// double-bit (uncorrectable) or single-bit.
    PendingRows { double_bit: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterKind {
    EccCorrectable,
    EccUncorrectable,
    RemappedRowsCorrectable,
    RemappedRowsUncorrectable,
    PcieReplays,
}

impl CounterKind {
    pub fn describe(self) -> &'static str {
        match self {
            CounterKind::EccCorrectable => "corrected ECC errors",
            CounterKind::EccUncorrectable => "uncorrectable ECC errors",
            CounterKind::RemappedRowsCorrectable => "rows remapped for correctable errors",
            CounterKind::RemappedRowsUncorrectable => "rows remapped for uncorrectable errors",
            CounterKind::PcieReplays => "PCIe replays",
        }
    }
}

/// AMD's throttle causes, each a residency percentage (MI3xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AmdViolation {
    /// Package power tracking: held under the power limit (the expected state of a busy GPU).
    Ppt,
    SocketThermal,
    VrThermal,
    HbmThermal,
    ProcessorHot,
}

impl AmdViolation {
    pub fn name(self) -> &'static str {
        match self {
            AmdViolation::Ppt => "PackagePowerTracking",
            AmdViolation::SocketThermal => "SocketThermal",
            AmdViolation::VrThermal => "VoltageRailThermal",
            AmdViolation::HbmThermal => "HbmThermal",
            AmdViolation::ProcessorHot => "ProcessorHot",
        }
    }

    /// Heat and the PROCHOT signal cost performance; power tracking is how a busy GPU stays under its cap.
    pub fn harmful(self) -> bool {
        !matches!(self, AmdViolation::Ppt)
    }
}

/// One metric name of one exporter and what it carries.
pub struct Metric {
    pub name: &'static str,
    pub exporter: Exporter,
    pub signal: Signal,
    /// What a value is multiplied by to be in the signal's unit (Intel's milliwatts to watts).
    pub scale: f64,
}

const fn m(name: &'static str, exporter: Exporter, signal: Signal) -> Metric {
    Metric {
        name,
        exporter,
        signal,
        scale: 1.0,
    }
}

/// A metric in milliwatts.
const fn mw(name: &'static str, exporter: Exporter, signal: Signal) -> Metric {
    Metric {
        name,
        exporter,
        signal,
        scale: 0.001,
    }
}

use CounterKind::*;
use Exporter::{Amd, Dcgm, Gaudi};
use Signal::*;

/// Every metric read, in the order a same-signal fallback prefers (the newer DCGM name first; AMD's
/// junction temperature before its edge temperature, the MI2xx reading).
pub const METRICS: &[Metric] = &[
    m("DCGM_FI_DEV_GPU_UTIL", Dcgm, Utilization),
    m("DCGM_FI_DEV_POWER_USAGE", Dcgm, Power),
    m("DCGM_FI_DEV_POWER_MGMT_LIMIT", Dcgm, PowerLimit),
    m("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", Dcgm, PowerLimit),
    m("DCGM_FI_DEV_GPU_TEMP", Dcgm, Temperature),
    m("DCGM_FI_DEV_SM_CLOCK", Dcgm, SmClock),
    m("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", Dcgm, ClocksEventReasons),
    m(
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        Dcgm,
        ClocksEventReasons,
    ),
    m("DCGM_FI_DEV_XID_ERRORS", Dcgm, LastXid),
    m(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        Dcgm,
        Counter(EccCorrectable),
    ),
    m(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        Dcgm,
        Counter(EccUncorrectable),
    ),
    m(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        Dcgm,
        Counter(RemappedRowsCorrectable),
    ),
    m(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        Dcgm,
        Counter(RemappedRowsUncorrectable),
    ),
    m("DCGM_FI_DEV_ROW_REMAP_FAILURE", Dcgm, RowRemapFailure),
    m(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        Dcgm,
        Counter(PcieReplays),
    ),
    m("gpu_gfx_activity", Amd, Utilization),
    m("gpu_power_usage", Amd, Power),
    m("gpu_package_power", Amd, Power),
    m("gpu_junction_temperature", Amd, Temperature),
    m("gpu_edge_temperature", Amd, Temperature),
    m("gpu_ecc_correct_total", Amd, Counter(EccCorrectable)),
    m("gpu_ecc_uncorrect_total", Amd, Counter(EccUncorrectable)),
    m("pcie_replay_count", Amd, Counter(PcieReplays)),
    m(
        "gpu_violation_ppt_residency_percentage",
        Amd,
        Violation(AmdViolation::Ppt),
    ),
    m(
        "gpu_violation_socket_thermal_residency_percentage",
        Amd,
        Violation(AmdViolation::SocketThermal),
    ),
    m(
        "gpu_violation_vr_thermal_residency_percentage",
        Amd,
        Violation(AmdViolation::VrThermal),
    ),
    m(
        "gpu_violation_hbm_thermal_residency_percentage",
        Amd,
        Violation(AmdViolation::HbmThermal),
    ),
    m(
        "gpu_violation_processor_hot_residency_percentage",
        Amd,
        Violation(AmdViolation::ProcessorHot),
    ),
    m("habanalabs_utilization", Gaudi, Utilization),
    mw("habanalabs_power_mW", Gaudi, Power),
    mw("habanalabs_power_default_limit_mW", Gaudi, PowerLimit),
    m("habanalabs_temperature_onchip", Gaudi, Temperature),
    m("habanalabs_pcie_replay_count", Gaudi, Counter(PcieReplays)),
    m(
        "habanalabs_pending_rows_with_double_bit_ecc_errors",
        Gaudi,
        PendingRows { double_bit: true },
    ),
    m(
        "habanalabs_pending_rows_with_single_bit_ecc_errors",
        Gaudi,
        PendingRows { double_bit: false },
    ),
];

/// The metric of this name, if it is one that is read.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// The metrics that tell a node's GPUs are exported at all (the node is found by them).
pub const PRESENCE: &[&str] = &[
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_POWER_USAGE",
    "gpu_gfx_activity",
    "gpu_power_usage",
    "habanalabs_utilization",
    "habanalabs_power_mW",
];

/// The labels that name a GPU within a node, for each exporter, kept when the series are merged
/// (dcgm-exporter splits a GPU's series by the pod that holds it; these stay).
pub const GPU_LABELS: &[&str] = &[
    "gpu",
    "UUID",
    "modelName",
    "gpu_id",
    "serial_number",
    "card_model",
    "Serial",
    "id",
];

/// The labels a node's name may be in, in the order they are tried: dcgm-exporter's own `Hostname` (the
/// node where its DaemonSet sets NODE_NAME, else the exporter pod's name), the relabelled forms scrape
/// configurations add (`node`, `kubernetes_node`, `nodename`), `instance` when relabelled to the node
/// (`NODE` or `NODE:PORT`), and AMD's `hostname`.
pub const NODE_LABELS: &[&str] = &[
    "Hostname",
    "node",
    "kubernetes_node",
    "nodename",
    "instance",
    "hostname",
];

/// What to add to the exporter so a signal that no GPU had is read next time.
pub fn how_to_export(exporter: Exporter, what: Missing) -> &'static str {
    match (exporter, what) {
        (Exporter::Dcgm, Missing::ThrottleReasons) => {
            "throttle reasons not exported: add DCGM_FI_DEV_CLOCKS_EVENT_REASONS to dcgm-exporter's counters CSV"
        }
        (Exporter::Dcgm, Missing::Ecc) => {
            "ECC totals not exported: add DCGM_FI_DEV_ECC_SBE_VOL_TOTAL and DCGM_FI_DEV_ECC_DBE_VOL_TOTAL to \
             dcgm-exporter's counters CSV"
        }
        (Exporter::Dcgm, Missing::PowerLimit) => {
            "power limit not exported: add DCGM_FI_DEV_POWER_MGMT_LIMIT to dcgm-exporter's counters CSV"
        }
        (Exporter::Dcgm, Missing::Xid) => {
            "Xids not exported: DCGM_FI_DEV_XID_ERRORS is in dcgm-exporter's default counters; restore it"
        }
        (Exporter::Amd, Missing::ThrottleReasons) => {
            "throttle residencies not exported (AMD's exporter publishes them on MI3xx only)"
        }
        (Exporter::Amd, Missing::Ecc) => {
            "ECC totals not exported: enable GPU_ECC_CORRECT_TOTAL and GPU_ECC_UNCORRECT_TOTAL in the exporter's \
             config"
        }
        (Exporter::Amd, Missing::PowerLimit) => "",
        (Exporter::Amd, Missing::Xid) => "",
        (Exporter::Gaudi, Missing::ThrottleReasons) => {
            "throttle reasons not exported (Intel's Gaudi exporter publishes none)"
        }
        (Exporter::Gaudi, Missing::Ecc) => {
            "ECC counts not exported (Intel's Gaudi exporter publishes only the rows pending replacement)"
        }
        (Exporter::Gaudi, Missing::PowerLimit) => "",
        (Exporter::Gaudi, Missing::Xid) => "",
    }
}

/// A signal no GPU of the node had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    ThrottleReasons,
    Ecc,
    PowerLimit,
    Xid,
}
