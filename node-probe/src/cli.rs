//! Command line: flags shared by every command, the commands, and the run that ties them together.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gpu_diag::contract::{
    ErrorKind, ProbeDocument, ProbeError, Report, ScenarioList, ScenarioSummary, VersionReport,
};
use gpu_diag::facts::Sections;
use gpu_diag::{AnalysisOptions, Command};

use crate::options::{GlobalArgs, XidArgs};
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
    /// One evidence archive: the node's own nvidia-bug-report.sh (safe mode, time-limited) plus describe,
    /// the XID history and the kernel ring buffer (tar.gz, base64 in the JSON document).
    Evidence(crate::evidence::EvidenceArgs),
    /// List the built-in simulated scenarios.
    Scenarios,
    /// Probe version and contract version.
    Version,
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
            Cmd::Evidence(a) => {
                let global = &self.global;
                return crate::evidence::run(global, a, &|v| {
                    let command = match v {
                        crate::evidence::View::Describe => Cmd::Describe,
                        crate::evidence::View::XidHistory => Cmd::Xid(XidArgs {
                            history: true,
                            ..XidArgs::default()
                        }),
                    };
                    Invocation {
                        global: global.clone(),
                        command,
                    }
                    .run()
                    .unwrap_or_else(ProbeDocument::failure)
                });
            }
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
            other => match analysis_command(other) {
                Some(c) => c,
                None => {
                    return Err(ProbeError::new(
                        ErrorKind::Internal,
                        "a subcommand without an analysis reached the analysis".to_string(),
                    ));
                }
            },
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

/// The analysis command a subcommand runs (`None` for scenarios, version, facts and the operator ones).
fn analysis_command(c: &Cmd) -> Option<Command> {
    Some(match c {
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
        Cmd::Scenarios
        | Cmd::Version
        | Cmd::Facts(_)
        | Cmd::Kill(_)
        | Cmd::Reset(_)
        | Cmd::Evidence(_) => {
            return None;
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The launcher builds argv from `gpu_diag::Command::arg()` and the operator `COMMAND`s: each must be
    /// the subcommand that runs that command here.
    #[test]
    fn the_shared_command_names_are_these_subcommands() {
        for c in Command::ALL {
            let Ok(Parsed::Run(inv)) = parse(["node-probe", c.arg()].map(OsString::from)) else {
                panic!("`{}` is not a node-probe subcommand", c.arg());
            };
            assert_eq!(analysis_command(&inv.command), Some(c), "{}", c.arg());
        }
        for (name, args) in [
            (gpu_diag::operator::kill::COMMAND, vec!["--pid", "1234"]),
            (gpu_diag::operator::reset::COMMAND, vec!["--gpu", "0"]),
            (gpu_diag::evidence::COMMAND, vec!["--time-limit", "5"]),
        ] {
            let argv = ["node-probe", name]
                .into_iter()
                .chain(args)
                .map(OsString::from);
            assert!(matches!(parse(argv), Ok(Parsed::Run(_))), "{name}");
        }
    }
}
