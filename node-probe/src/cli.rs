//! Command line: flags shared by every command, the commands, and the run that ties them together.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gpu_diag::contract::{
    ErrorKind, ProbeDocument, ProbeError, Report, ScenarioList, ScenarioSummary, VersionReport,
};
use gpu_diag::facts::Sections;
use gpu_diag::{AnalysisOptions, Command};

use crate::source::{self, SourceSpec};

#[derive(Debug, Parser)]
#[command(
    name = "node-probe",
    version,
    about = "One-shot GPU node diagnostics: prints one JSON document."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Host filesystem root (default: /host when it exists, else /).
    #[arg(long, global = true, value_name = "DIR", env = "NODE_PROBE_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
    /// Path of libnvidia-ml.so.1, overriding the search.
    #[arg(long, global = true, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Use a built-in simulated node instead of NVML (`node-probe scenarios` lists them).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "fixture")]
    pub simulate: Option<String>,
    /// Load a simulated node from a scenario file (same format as the built-in ones).
    #[arg(long, global = true, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Name of the node being probed, as Kubernetes knows it (reported back; selects the scenario when
    /// NODE_PROBE_SCENARIO_MAP is set).
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Expected GPU count: fewer answering GPUs is a "GPU missing" finding.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub expect_gpus: Option<u32>,
    /// Give up on NVML after this many seconds (plus `--watch`): a hung GPU or driver can block NVML
    /// calls indefinitely, and the kernel log and host facts are still worth reporting then.
    #[arg(long, global = true, value_name = "SECS", default_value_t = DEFAULT_NVML_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub nvml_timeout: u64,
    /// Milliseconds between the two reads of the RDMA NICs' error counters (what rises now versus
    /// lifetime totals); 0 reads them once. Only spent when the node has RDMA devices.
    #[arg(long, global = true, value_name = "MS", default_value_t = DEFAULT_NIC_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(0..=crate::nic::MAX_INTERVAL_MS))]
    pub nic_interval_ms: u64,
}

/// Healthy NVML answers a full collection in well under a second; a GSP RPC timeout (Xid 119) takes 6 s
/// per call, so 30 s separates "slow" from "hung" without eating the launcher's 120 s probe deadline.
pub const DEFAULT_NVML_TIMEOUT_SECS: u64 = 30;

/// Long enough to catch a flapping link or a fast error rate, short beside NVML collection and the
/// launcher's probe deadline.
pub const DEFAULT_NIC_INTERVAL_MS: u64 = 1000;

#[derive(Debug, Subcommand, Clone)]
pub enum Cmd {
    /// GPUs, identities, PCI ids, firmware, memory, MIG/persistence/compute modes, driver versions.
    Inventory,
    /// Temperatures vs thresholds, power, utilization, clocks and decoded throttle reasons.
    Telemetry,
    /// GPU x GPU matrix, P2P, NVLink state/remotes/counters, NUMA affinity, fabric state.
    Topology,
    /// ECC counters, retired pages, remapped rows and what they require.
    Ecc,
    /// Processes on each GPU with their host names and GPU memory.
    Processes,
    /// Per-GPU and node verdict made of explained findings.
    Health,
    /// Everything above plus the kernel log, in one run.
    Describe,
    /// XID/SXid events from the kernel log, decoded against NVIDIA's catalog and correlated.
    Xid(XidArgs),
    /// Raw facts as collected, uninterpreted: the node in the scenario format (save `.facts` of the
    /// output as a file to replay it with --fixture).
    Facts(FactsArgs),
    /// Which pod holds which GPU (kubelet PodResources API) and whose processes use it (cgroups): exact
    /// when the kubelet answers, cgroup-only otherwise.
    Allocation,
    /// `describe` and `allocation` in one run: what the launcher's workload diagnosis needs of a node.
    Workload,
    /// Operator: end one GPU process (SIGTERM, grace period, SIGKILL) after a preflight.
    Kill(crate::operator::KillArgs),
    /// Operator: reset one GPU with the host's nvidia-smi after a preflight, then verify it.
    Reset(crate::operator::ResetArgs),
    /// List the built-in simulated scenarios.
    Scenarios,
    /// Probe version and contract version.
    Version,
}

#[derive(Debug, Args, Clone, Default)]
pub struct XidArgs {
    /// Read this file (kmsg records, dmesg or syslog lines) instead of {host-root}/dev/kmsg.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Only events in this window before now (e.g. 30m, 2h, 1d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Also wait this many seconds for new XID events from NVML.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub watch: Option<u32>,
    /// Also read earlier boots from the host's journal and kernel text logs (implied when `--since`
    /// reaches before this boot).
    #[arg(long)]
    pub history: bool,
    /// Set by the `xid` command itself: the kernel log streams into the analysis after collection
    /// rather than being gathered into the facts (a log of any size in bounded memory).
    #[arg(skip)]
    pub stream_log: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct FactsArgs {
    /// Read this file (kmsg records, dmesg or syslog lines) instead of {host-root}/dev/kmsg.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Also wait this many seconds for XID events from NVML.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub watch: Option<u32>,
}

pub enum Parsed {
    Run(Invocation),
    Help(String),
}

pub struct Invocation {
    pub global: GlobalArgs,
    pub command: Cmd,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, ProbeError> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Parsed::Run(Invocation {
            global: cli.global,
            command: cli.command,
        })),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Ok(Parsed::Help(e.render().to_string()))
            }
            _ => {
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ");
                Err(ProbeError::new(ErrorKind::Usage, first.to_string())
                    .hint("run `node-probe --help` for the commands and flags"))
            }
        },
    }
}

impl Invocation {
    pub fn run(self) -> Result<ProbeDocument, ProbeError> {
        let command = match &self.command {
            Cmd::Scenarios => {
                return Ok(ProbeDocument::success(
                    None,
                    Report::Scenarios(scenario_list()),
                ));
            }
            Cmd::Version => {
                return Ok(ProbeDocument::success(
                    None,
                    Report::Version(VersionReport {
                        probe_version: gpu_diag::contract::PROBE_VERSION.to_string(),
                        schema_version: gpu_diag::contract::SCHEMA_VERSION,
                    }),
                ));
            }
            Cmd::Kill(a) => return crate::operator::run_kill(&self.global, a),
            Cmd::Reset(a) => return crate::operator::run_reset(&self.global, a),
            Cmd::Inventory => Command::Inventory,
            Cmd::Telemetry => Command::Telemetry,
            Cmd::Topology => Command::Topology,
            Cmd::Ecc => Command::Ecc,
            Cmd::Processes => Command::Processes,
            Cmd::Health => Command::Health,
            Cmd::Describe => Command::Describe,
            Cmd::Xid(_) => Command::Xid,
            Cmd::Allocation => Command::Allocation,
            Cmd::Workload => Command::Workload,
            Cmd::Facts(a) => {
                let spec = SourceSpec::from_args(&self.global)?;
                let xid = XidArgs {
                    log_file: a.log_file.clone(),
                    watch: a.watch,
                    since: None,
                    history: false,
                    stream_log: false,
                };
                let facts = source::collect(&spec, Sections::ALL, &xid)?;
                return Ok(ProbeDocument::success(
                    Some(source::meta(&facts, &self.global)),
                    Report::Facts(Box::new(facts)),
                ));
            }
        };
        let spec = SourceSpec::from_args(&self.global)?;
        let mut xid_args = match &self.command {
            Cmd::Xid(a) => a.clone(),
            _ => XidArgs::default(),
        };
        // `xid` streams a real log (file or kmsg); a scenario's log is already in its facts.
        let stream = match (&spec, &xid_args.log_file) {
            _ if command != Command::Xid => None,
            (_, Some(path)) => Some(crate::kmsg::LogInput::File(path.clone())),
            (SourceSpec::Nvml { host_root, .. }, None) => {
                Some(crate::kmsg::LogInput::Kmsg(host_root.clone()))
            }
            _ => None,
        };
        xid_args.stream_log = stream.is_some();
        let mut facts = source::collect(&spec, command.sections(), &xid_args)?;
        if matches!(command, Command::Allocation | Command::Workload) {
            crate::podresources::fill(&mut facts, &spec, self.global.host_root.is_some());
        }
        let opts = AnalysisOptions {
            expect_gpus: self.global.expect_gpus,
            since_unix: source::since_unix(&xid_args, &facts)?,
        };
        // History when asked, or when the window starts before this boot did.
        let history = xid_args.history
            || match (opts.since_unix, facts.host.boot_time_unix.get()) {
                (Some(s), Some(b)) => s < b,
                _ => false,
            };
        let report = match &stream {
            Some(input) => Report::Xid(Box::new(crate::kmsg::analyze_xid(
                input, &facts, &opts, history,
            )?)),
            None => gpu_diag::analyze(command, &facts, &opts),
        };
        Ok(ProbeDocument::success(
            Some(source::meta(&facts, &self.global)),
            report,
        ))
    }
}

fn scenario_list() -> ScenarioList {
    ScenarioList {
        scenarios: gpu_diag::scenarios::BUILTIN
            .iter()
            .map(|s| ScenarioSummary {
                name: s.name.to_string(),
                description: s.description.to_string(),
            })
            .collect(),
    }
}
