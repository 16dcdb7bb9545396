//! The probe contract: the one JSON document `node-probe` prints and the launcher reads.
//!
//! Every invocation prints exactly one [`ProbeDocument`] on stdout. A failure of the whole run is
//! `{"schema_version":N,"error":{"kind":..,"message":..,"hint":..}}` with a non-zero exit status
//! ([`ErrorKind::exit_code`]); a failure of one GPU or one field is reported inline as a
//! [`crate::facts::Reading`] error and never fails the document.

use serde::{Deserialize, Serialize};

use crate::analysis::{
    describe::DescribeReport, ecc::EccReport, health::HealthReport, inventory::InventoryReport,
    processes::ProcessesReport, telemetry::TelemetryReport, topology::TopologyReport,
};
use crate::finding::{Finding, Judged, Verdict};
use crate::kernel_log::report::XidReport;

/// Bumped on any incompatible change of the documents below. The launcher refuses documents whose
/// major schema it does not know, and says which side to upgrade.
pub const SCHEMA_VERSION: u32 = 1;

/// The probe's own version (the crate version of the shared library, which both binaries embed).
pub const PROBE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whole-run failure classes, each with its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad flags or arguments (exit 2).
    Usage,
    /// No usable NVML library or driver (exit 3).
    NvmlUnavailable,
    /// Not allowed to read what the command needs (exit 4).
    PermissionDenied,
    /// Unknown scenario name or unreadable/invalid fixture (exit 2: it is bad input).
    InvalidScenario,
    /// Input the probe was told to read could not be read (log file, socket) (exit 1).
    Io,
    /// Anything else (exit 1).
    Internal,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::InvalidScenario => 2,
            ErrorKind::NvmlUnavailable => 3,
            ErrorKind::PermissionDenied => 4,
            ErrorKind::Io | ErrorKind::Internal => 1,
        }
    }
}

#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, thiserror::Error,
)]
#[error("{kind:?}: {message}")]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
    /// What to do about it, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Who produced a document, from which source, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeMeta {
    pub probe_version: String,
    /// `nvml` or `simulated:<scenario>`.
    pub source: String,
    /// Node name given by the launcher (`--node-name`), else the host name.
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Unix seconds when the facts were collected.
    #[serde(default)]
    pub collected_at_unix: Option<f64>,
}

/// The body of a successful document: exactly one report, keyed by the command that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    Inventory(InventoryReport),
    Telemetry(TelemetryReport),
    Topology(TopologyReport),
    Ecc(EccReport),
    Processes(ProcessesReport),
    Health(HealthReport),
    Describe(Box<DescribeReport>),
    Xid(Box<XidReport>),
    Scenarios(ScenarioList),
    Version(VersionReport),
    /// The raw facts as collected (`node-probe facts`): a node captured in the scenario format.
    Facts(Box<crate::facts::NodeFacts>),
    /// GPU ↔ pod ↔ process attribution (`node-probe allocation`).
    Allocation(crate::attribution::AllocationReport),
    /// `node-probe workload`: `describe` and `allocation` of one node, for a workload diagnosis.
    Workload(Box<crate::workload::WorkloadNodeReport>),
    /// `node-probe kill`: preflight, plan and (when run) outcome of ending one GPU process.
    Kill(Box<crate::operator::kill::KillReport>),
    /// `node-probe reset`: preflight, plan and (when run) outcome and verification of a GPU reset.
    Reset(Box<crate::operator::reset::ResetReport>),
    /// `node-probe evidence`: the evidence archive (nvidia-bug-report.sh and the probe's own view).
    Evidence(Box<crate::evidence::EvidenceReport>),
    /// `node-probe dcgm-diag`: a DCGM diagnostic on the idle GPUs of a request.
    DcgmDiag(Box<crate::dcgm::DcgmDiagReport>),
    /// `node-probe rvs-diag`: a ROCm Validation Suite run on the idle AMD GPUs of a request.
    RvsDiag(Box<crate::rvs::RvsDiagReport>),
    /// `node-probe watch`: the node's GPUs over a window, read as episodes.
    Watch(Box<crate::watch::WatchReport>),
}

impl Judged for Report {
    fn verdict(&self) -> Option<Verdict> {
        self.judged().and_then(Judged::verdict)
    }
    fn findings(&self) -> Vec<&Finding> {
        self.judged().map(Judged::findings).unwrap_or_default()
    }
    fn incidents(&self) -> Option<&crate::finding::Incidents> {
        self.judged().and_then(Judged::incidents)
    }
}

impl Report {
    /// The multi-node NVLink domain the node's GPUs registered in, for the reports that judge health.
    pub fn nvlink_domain(&self) -> Option<&str> {
        match self {
            Report::Health(h) => h.nvlink_domain.as_deref(),
            Report::Describe(d) => d.health.nvlink_domain.as_deref(),
            Report::Workload(w) => w.describe.health.nvlink_domain.as_deref(),
            _ => None,
        }
    }

    /// The report as a judgement; `None` for those that judge nothing (lists, versions, raw facts, the
    /// operator commands and the evidence archive, which report outcomes).
    fn judged(&self) -> Option<&dyn Judged> {
        Some(match self {
            Report::Inventory(r) => r,
            Report::Telemetry(r) => r,
            Report::Topology(r) => r,
            Report::Ecc(r) => r,
            Report::Processes(r) => r,
            Report::Health(r) => r,
            Report::Describe(r) => &**r,
            Report::Xid(r) => &**r,
            Report::Allocation(r) => r,
            Report::Workload(r) => &**r,
            Report::DcgmDiag(r) => &**r,
            Report::Watch(r) => &**r,
            Report::Scenarios(_)
            | Report::Version(_)
            | Report::Facts(_)
            | Report::Kill(_)
            | Report::Reset(_)
            | Report::Evidence(_)
            | Report::RvsDiag(_) => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioList {
    pub scenarios: Vec<ScenarioSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioSummary {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionReport {
    pub probe_version: String,
    pub schema_version: u32,
}

/// What `node-probe` prints: either a report with its metadata, or a whole-run error.
// One document per run: the size difference between the variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ProbeDocument {
    Failure {
        schema_version: u32,
        error: ProbeError,
    },
    Success {
        schema_version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probe: Option<ProbeMeta>,
        #[serde(flatten)]
        report: Report,
    },
}

impl ProbeDocument {
    pub fn success(probe: Option<ProbeMeta>, report: Report) -> Self {
        ProbeDocument::Success {
            schema_version: SCHEMA_VERSION,
            probe,
            report,
        }
    }
    pub fn failure(error: ProbeError) -> Self {
        ProbeDocument::Failure {
            schema_version: SCHEMA_VERSION,
            error,
        }
    }
    pub fn schema_version(&self) -> u32 {
        match self {
            ProbeDocument::Failure { schema_version, .. }
            | ProbeDocument::Success { schema_version, .. } => *schema_version,
        }
    }
}

/// Why a probe's stdout could not be used: what the launcher reports when the output is garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("probe printed no output")]
    Empty,
    #[error("probe output is not one JSON document: {0}")]
    NotJson(String),
    #[error(
        "probe speaks contract schema {found}, this build speaks {expected}: use matching launcher and probe versions"
    )]
    SchemaMismatch { found: u32, expected: u32 },
    #[error("probe output does not match the contract: {0}")]
    Shape(String),
}

/// Parse a streamed probe's stdout (`watch --stream`): one JSON value per line, each before the last a
/// window's line ([`crate::watch::live`]), bounded in length and number, and the last the document. A probe
/// that failed before its first line prints the document alone.
pub fn parse_streamed(
    stdout: &[u8],
) -> Result<(Vec<crate::watch::live::Live>, ProbeDocument), ContractError> {
    if let Ok(doc) = parse_document(stdout) {
        return Ok((Vec::new(), doc));
    }
    let mut lines: Vec<&[u8]> = stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let Some(last) = lines.pop() else {
        return Err(ContractError::Empty);
    };
    if lines.len() > crate::watch::live::MAX_LINES {
        return Err(ContractError::Shape(format!(
            "{} streamed lines before the document; at most {} are read",
            lines.len(),
            crate::watch::live::MAX_LINES
        )));
    }
    let live = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            crate::watch::live::parse_line(l)
                .map_err(|e| ContractError::Shape(format!("line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((live, parse_document(last)?))
}

/// Parse a probe's stdout strictly: exactly one JSON document of a schema this build understands.
pub fn parse_document(stdout: &[u8]) -> Result<ProbeDocument, ContractError> {
    let text = std::str::from_utf8(stdout).map_err(|e| ContractError::NotJson(e.to_string()))?;
    if text.trim().is_empty() {
        return Err(ContractError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| ContractError::NotJson(e.to_string()))?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| ContractError::Shape("missing schema_version".into()))?
        as u32;
    if found != SCHEMA_VERSION {
        return Err(ContractError::SchemaMismatch {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| ContractError::Shape(e.to_string()))
}
