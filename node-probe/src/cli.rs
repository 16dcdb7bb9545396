//! Command line: flags shared by every command, the commands, and the run that ties them together.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use gpu_diag::command::Command;
use gpu_diag::contract::{
    ErrorKind, ProbeDocument, ProbeError, Report, ScenarioList, ScenarioSummary, VersionReport,
};
use gpu_diag::facts::Sections;
use gpu_diag::options::AnalysisOptions;

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
    /// The read-only commands, one subcommand each, from `gpu_diag::command::Command`.
    #[command(flatten)]
    Analysis(Analysis),
    /// Raw facts as collected, uninterpreted: the node in the scenario format (save `.facts` of the
    /// output as a file to replay it with --fixture).
    Facts(FactsArgs),
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

/// A read-only command with its arguments (only `xid` has any of its own).
#[derive(Debug, Clone)]
pub struct Analysis {
    pub command: Command,
    pub xid: XidArgs,
}

impl From<Command> for Analysis {
    fn from(command: Command) -> Self {
        Analysis {
            command,
            xid: XidArgs::default(),
        }
    }
}

// By hand rather than derived: the subcommands come from gpu-diag's list, which knows no clap.
impl FromArgMatches for Analysis {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = m
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let command = Command::named(name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))?;
        let xid = match command {
            Command::Xid => XidArgs::from_arg_matches(sub)?,
            _ => XidArgs::default(),
        };
        Ok(Analysis { command, xid })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Subcommand for Analysis {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        Command::ALL.iter().fold(cmd, |cmd, c| {
            let sub = clap::Command::new(c.name()).about(c.about());
            cmd.subcommand(match c {
                Command::Xid => XidArgs::augment_args(sub),
                _ => sub,
            })
        })
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        Command::named(name).is_some()
    }
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
    /// Boxed: the parsed options are far larger than a help text.
    Run(Box<Invocation>),
    Help(String),
}

pub struct Invocation {
    pub global: GlobalArgs,
    pub command: Cmd,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, ProbeError> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Parsed::Run(Box::new(Invocation {
            global: cli.global,
            command: cli.command,
        }))),
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
                    let command = Cmd::Analysis(match v {
                        crate::evidence::View::Describe => Command::Describe.into(),
                        crate::evidence::View::XidHistory => Analysis {
                            command: Command::Xid,
                            xid: XidArgs {
                                history: true,
                                ..XidArgs::default()
                            },
                        },
                    });
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
            Cmd::Analysis(a) => a,
        };
        let spec = SourceSpec::from_args(&self.global)?;
        let (command, mut xid_args) = (command.command, command.xid.clone());
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
            None => command.analyze(&facts, &opts),
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

#[cfg(test)]
mod tests {
    use super::*;

    use gpu_diag::command::{Request, Since};

    fn run(argv: Vec<String>) -> Cmd {
        let args = std::iter::once("node-probe".to_string()).chain(argv.clone());
        match parse(args.map(OsString::from)) {
            Ok(Parsed::Run(inv)) => inv.command,
            _ => panic!("{argv:?} is not a node-probe command line"),
        }
    }

    /// Every command of gpu-diag's list is the subcommand that runs it here.
    #[test]
    fn every_command_is_its_subcommand() {
        for &c in Command::ALL {
            match run(Request::from(c).argv()) {
                Cmd::Analysis(a) => assert_eq!(a.command, c, "{}", c.name()),
                other => panic!("`{}` parsed as {other:?}", c.name()),
            }
        }
    }

    /// What the launcher asks is what node-probe reads: each request's argv parses back to its values.
    #[test]
    fn every_request_parses_back() {
        let since: Since = "7d".parse().unwrap();
        match run(Request::Xid { since: Some(since) }.argv()) {
            Cmd::Analysis(a) => {
                assert_eq!(a.command, Command::Xid);
                assert_eq!(a.xid.since.as_deref(), Some("7d"));
            }
            other => panic!("{other:?}"),
        }
        let args = std::iter::once("node-probe".to_string()).chain(
            Request::Health {
                expect_gpus: Some(8),
            }
            .argv(),
        );
        let Ok(Parsed::Run(inv)) = parse(args.map(OsString::from)) else {
            panic!("health --expect-gpus");
        };
        assert_eq!(inv.global.expect_gpus, Some(8));
        assert!(matches!(inv.command, Cmd::Analysis(a) if a.command == Command::Health));
        let kill = Request::Kill {
            pid: 1234,
            grace_seconds: 7,
            dry_run: false,
        };
        match run(kill.clone().preflight().argv()) {
            Cmd::Kill(k) => assert_eq!((k.pid, k.grace_seconds, k.dry_run), (1234, 7, true)),
            other => panic!("{other:?}"),
        }
        match run(kill.argv()) {
            Cmd::Kill(k) => assert!(!k.dry_run),
            other => panic!("{other:?}"),
        }
        let reset = Request::Reset {
            gpu: "GPU-1".into(),
            dry_run: true,
        };
        match run(reset.argv()) {
            Cmd::Reset(r) => assert_eq!((r.gpu.as_str(), r.dry_run), ("GPU-1", true)),
            other => panic!("{other:?}"),
        }
        match run(Request::Evidence { time_limit_secs: 5 }.argv()) {
            Cmd::Evidence(e) => assert_eq!(e.time_limit, 5),
            other => panic!("{other:?}"),
        }
    }
}
