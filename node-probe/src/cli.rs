//! Command line: flags shared by every command, the commands, and the run that ties them together.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use gpu_diag::command::{ArgumentGroup, Command, KernelLogInput};
use gpu_diag::contract::{
    ErrorKind, ProbeDocument, ProbeError, Report, ScenarioList, ScenarioSummary, VersionReport,
};
use gpu_diag::facts::Sections;
use gpu_diag::options::AnalysisOptions;

use crate::options::{CommandArgs, GlobalArgs, KernelLogArgs};
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
    /// NVIDIA DCGM's diagnostic (dcgmi diag) on the idle GPUs named, with a deadline; held GPUs are left
    /// out, and the GPUs' NVML state and Xids are read before and after.
    DcgmDiag(crate::dcgm::DcgmDiagArgs),
    /// AMD's ROCm Validation Suite (rvs) on the idle, unpartitioned AMD GPUs named, with a deadline; held
    /// GPUs are left out, and results are mapped back from KFD gpu_id to the GPU's index.
    RvsDiag(crate::rvs::RvsDiagArgs),
    /// The GPUs sampled every interval for a window (utilization, clocks and throttling, power, temperatures,
    /// error counters, kernel events as they arrive), read as episodes and the pattern across the GPUs.
    Watch(crate::watch::WatchArgs),
    /// List the built-in simulated scenarios.
    Scenarios,
    /// Probe version and contract version.
    Version,
}

/// A read-only command of gpu-diag's table with the values of its argument group.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub command: Command,
    pub args: CommandArgs,
}

// By hand rather than derived: the subcommands come from gpu-diag's table, which knows no clap.
impl FromArgMatches for Analysis {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = m
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let command = Command::named(name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))?;
        Ok(Analysis {
            command,
            args: command_args(command.arguments(), sub)?,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Subcommand for Analysis {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        Command::ALL.iter().fold(cmd, |cmd, c| {
            cmd.subcommand(subcommand(c.name(), c.about(), c.arguments()))
        })
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        Command::named(name).is_some()
    }
}

/// One row of the table as a subcommand: its name, its help and the flags of its argument group.
fn subcommand(name: &'static str, about: &'static str, group: ArgumentGroup) -> clap::Command {
    let sub = clap::Command::new(name);
    let sub = match group {
        ArgumentGroup::None => sub,
        ArgumentGroup::KernelLog => KernelLogArgs::augment_args(sub),
    };
    // After the group's flags: a group must not set the subcommand's help.
    sub.about(about)
}

/// The values of `group`'s flags in a subcommand's matches; the groups it does not take keep their
/// defaults.
fn command_args(group: ArgumentGroup, m: &ArgMatches) -> Result<CommandArgs, clap::Error> {
    let mut args = CommandArgs::default();
    match group {
        ArgumentGroup::None => {}
        ArgumentGroup::KernelLog => args.kernel_log = KernelLogArgs::from_arg_matches(m)?,
    }
    Ok(args)
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
    /// `argv`, a subcommand and its arguments, parsed as node-probe's and run with `global`'s shared
    /// flags (what the evidence archive holds of the probe's own reports).
    fn of(global: &GlobalArgs, argv: &[&str]) -> Result<Invocation, ProbeError> {
        let cli = Cli::try_parse_from(std::iter::once("node-probe").chain(argv.iter().copied()))
            .map_err(|e| {
                ProbeError::new(
                    ErrorKind::Internal,
                    format!("`node-probe {}`: {e}", argv.join(" ")),
                )
            })?;
        Ok(Invocation {
            global: global.clone(),
            command: cli.command,
        })
    }

    pub fn run(self) -> Result<ProbeDocument, ProbeError> {
        let analysis = match &self.command {
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
            Cmd::DcgmDiag(a) => return crate::dcgm::run(&self.global, a),
            Cmd::RvsDiag(a) => return crate::rvs::run(&self.global, a),
            Cmd::Watch(a) => return crate::watch::run(&self.global, a),
            Cmd::Evidence(a) => {
                let global = &self.global;
                return crate::evidence::run(global, a, &|argv| {
                    Invocation::of(global, argv)
                        .and_then(Invocation::run)
                        .unwrap_or_else(ProbeDocument::failure)
                });
            }
            Cmd::Facts(a) => {
                let spec = SourceSpec::from_args(&self.global)?;
                let log = KernelLogArgs {
                    log_file: a.log_file.clone(),
                    watch: a.watch,
                    since: None,
                    history: false,
                    stream_log: false,
                };
                let facts = source::collect(&spec, Sections::GPUS_AND_HOST, &log)?;
                return Ok(ProbeDocument::success(
                    Some(source::meta(&facts, &self.global)),
                    Report::Facts(Box::new(facts)),
                ));
            }
            Cmd::Analysis(a) => a,
        };
        let spec = SourceSpec::from_args(&self.global)?;
        let command = analysis.command;
        let mut log = analysis.args.kernel_log.clone();
        // A command that streams the kernel log streams a real one (file or kmsg); a scenario's log is
        // already in its facts.
        let stream = match (command.kernel_log(), &spec, &log.log_file) {
            (KernelLogInput::Facts, ..) => None,
            (KernelLogInput::Streamed, _, Some(path)) => {
                Some(crate::kmsg::LogInput::File(path.clone()))
            }
            (KernelLogInput::Streamed, SourceSpec::Nvml { host_root, .. }, None) => {
                Some(crate::kmsg::LogInput::Kmsg(host_root.clone()))
            }
            (KernelLogInput::Streamed, SourceSpec::Simulated { .. }, None) => None,
        };
        log.stream_log = stream.is_some();
        let sections = command.sections();
        let mut facts = source::collect(&spec, sections, &log)?;
        if sections.kubelet {
            crate::podresources::fill(&mut facts, &spec, self.global.host_root.is_some());
        }
        self.global.add_api_facts(&mut facts);
        let opts = AnalysisOptions {
            expect_gpus: self.global.expect_gpus,
            since_unix: source::since_unix(&log, &facts)?,
        };
        // History when asked, or when the window starts before this boot did.
        let history = log.history
            || match (opts.since_unix, facts.host.boot_time_unix.get()) {
                (Some(s), Some(b)) => s < b,
                _ => false,
            };
        let report = match &stream {
            Some(input) => crate::kmsg::analyze_streamed(input, &facts, &opts, history)?,
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
            // The time scripts `watch` plays (any other command reads their node at its start).
            .chain(
                gpu_diag::scenarios::WATCH_SCRIPTS
                    .iter()
                    .map(|s| ScenarioSummary {
                        name: s.name.to_string(),
                        description: s.description(),
                    }),
            )
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

    /// The launcher's watch request is this subcommand with its values; values outside their ranges are refused.
    #[test]
    fn the_launchers_watch_parses_with_its_values() {
        match run(Request::Watch {
            seconds: 30,
            interval_ms: 250,
            start_at_ms: Some(1_795_600_000_000),
            gpus: vec![0, 3],
        }
        .argv())
        {
            Cmd::Watch(w) => {
                assert_eq!(
                    (w.seconds, w.interval_ms, w.start_at_ms),
                    (30, 250, 1_795_600_000_000)
                );
                assert_eq!(w.gpus, "0,3");
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            ["watch", "--seconds", "0"],
            ["watch", "--seconds", "601"],
            ["watch", "--interval-ms", "50"],
        ] {
            assert!(parse_argv(&bad).is_err(), "{bad:?}");
        }
    }

    fn parse_argv(argv: &[&str]) -> Result<Cmd, ProbeError> {
        let args = std::iter::once("node-probe").chain(argv.iter().copied());
        match parse(args.map(OsString::from))? {
            Parsed::Run(inv) => Ok(inv.command),
            Parsed::Help(_) => panic!("{argv:?} asked for help"),
        }
    }

    /// The flags of the kernel-log argument group, as a command that takes them is given them.
    const KERNEL_LOG_FLAGS: [&str; 7] = [
        "--since",
        "2h",
        "--history",
        "--log-file",
        "/tmp/kern.log",
        "--watch",
        "5",
    ];

    /// Each command of the table parses with the flags of its argument group and with no others: an
    /// argument of `xid` given to `health` is refused.
    #[test]
    fn every_command_takes_its_arguments_and_only_those() {
        for &c in Command::ALL {
            let mut argv = vec![c.name()];
            argv.extend(KERNEL_LOG_FLAGS);
            let parsed = parse_argv(&argv);
            match c.arguments() {
                ArgumentGroup::KernelLog => match parsed {
                    Ok(Cmd::Analysis(a)) => {
                        assert_eq!(a.command, c);
                        let log = &a.args.kernel_log;
                        assert_eq!(log.since.as_deref(), Some("2h"), "{}", c.name());
                        assert!(log.history);
                        assert_eq!(log.watch, Some(5));
                        assert_eq!(log.log_file, Some(PathBuf::from("/tmp/kern.log")));
                    }
                    other => panic!("`{}`: {other:?}", c.name()),
                },
                ArgumentGroup::None => {
                    let e = parsed.expect_err(c.name());
                    assert_eq!(e.kind, ErrorKind::Usage, "{}", c.name());
                    assert!(e.message.contains("--since"), "{}: {}", c.name(), e.message);
                    match parse_argv(&[c.name()]) {
                        Ok(Cmd::Analysis(a)) => assert_eq!(a.args.kernel_log.since, None),
                        other => panic!("`{}`: {other:?}", c.name()),
                    }
                }
            }
        }
    }

    /// A row added to the table is a subcommand with its help and its group's flags: the CLI is built
    /// from the rows, with nothing per command (here a fixture row beside the real ones).
    #[test]
    fn a_new_row_is_a_subcommand_with_its_arguments() {
        use clap::CommandFactory;

        let cli = Cli::command().subcommand(subcommand(
            "recheck",
            "A fixture command",
            ArgumentGroup::KernelLog,
        ));
        let mut argv = vec!["node-probe", "recheck"];
        argv.extend(KERNEL_LOG_FLAGS);
        let m = cli.clone().try_get_matches_from(argv).unwrap();
        let (name, sub) = m.subcommand().unwrap();
        assert_eq!(name, "recheck");
        let args = command_args(ArgumentGroup::KernelLog, sub).unwrap();
        assert_eq!(args.kernel_log.since.as_deref(), Some("2h"));
        assert!(args.kernel_log.history);
        let help = cli
            .clone()
            .try_get_matches_from(["node-probe", "--help"])
            .unwrap_err()
            .render()
            .to_string();
        assert!(
            help.contains("recheck") && help.contains("A fixture command"),
            "{help}"
        );
        let plain =
            Cli::command().subcommand(subcommand("quiet", "A fixture", ArgumentGroup::None));
        assert!(
            plain
                .try_get_matches_from(["node-probe", "quiet", "--since", "2h"])
                .is_err()
        );
    }

    /// The evidence archive's own reports are command lines this CLI runs.
    #[test]
    fn the_evidence_views_are_command_lines() {
        let global = GlobalArgs::default();
        let inv = Invocation::of(&global, &["xid", "--history"]).unwrap();
        match inv.command {
            Cmd::Analysis(a) => {
                assert_eq!(a.command, Command::Xid);
                assert!(a.args.kernel_log.history);
            }
            other => panic!("{other:?}"),
        }
    }

    /// What the launcher asks is what node-probe reads: each request's argv parses back to its values.
    #[test]
    fn every_request_parses_back() {
        let since: Since = "7d".parse().unwrap();
        match run(Request::Xid { since: Some(since) }.argv()) {
            Cmd::Analysis(a) => {
                assert_eq!(a.command, Command::Xid);
                assert_eq!(a.args.kernel_log.since.as_deref(), Some("7d"));
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
            api_claims: Some("none".into()),
            override_unknown: true,
            seen: Some(gpu_diag::operator::reset::Seen {
                pin: None,
                unknown: vec!["GPU 0: kubelet PodResources (device plugins): unreachable".into()],
                process: Some(gpu_diag::operator::kill::ProcessPin {
                    start_ticks: 123_456,
                    pod: Some("0b7e2c1a-5f3d-4e2b-9c1d-2a3b4c5d6e7f".into()),
                }),
            }),
        };
        // A preflight is never overridden.
        match run(kill.clone().preflight().argv()) {
            Cmd::Kill(k) => assert_eq!(
                (
                    k.pid,
                    k.grace_seconds,
                    k.dry_run,
                    k.override_unknown_holders
                ),
                (1234, 7, true, false)
            ),
            other => panic!("{other:?}"),
        }
        match run(kill.argv()) {
            Cmd::Kill(k) => {
                assert!(!k.dry_run && k.override_unknown_holders);
                // The act carries the process the person saw and the unknowns' digests, intact.
                let (pin, seen) =
                    gpu_diag::operator::kill::parse_approved(k.approved.as_deref().unwrap())
                        .unwrap();
                assert_eq!(pin.start_ticks, 123_456);
                assert_eq!(
                    pin.pod.as_deref(),
                    Some("0b7e2c1a-5f3d-4e2b-9c1d-2a3b4c5d6e7f")
                );
                assert_eq!(
                    seen,
                    [gpu_diag::operator::reset::unknown_digest(
                        "GPU 0: kubelet PodResources (device plugins): unreachable"
                    )]
                );
            }
            other => panic!("{other:?}"),
        }
        // Exactly this shape, the override last, for the admission policy.
        assert_eq!(
            kill.argv(),
            [
                "kill",
                "--pid",
                "1234",
                "--grace-seconds",
                "7",
                "--api-claims",
                "none",
                "--approved",
                &format!(
                    "start=123456;pod=0b7e2c1a-5f3d-4e2b-9c1d-2a3b4c5d6e7f;seen={}",
                    gpu_diag::operator::reset::unknown_digest(
                        "GPU 0: kubelet PodResources (device plugins): unreachable"
                    )
                ),
                gpu_diag::command::OVERRIDE_FLAG,
            ]
        );
        assert!(
            parse(
                [
                    "node-probe",
                    "kill",
                    "--pid",
                    "5",
                    "--dry-run",
                    gpu_diag::command::OVERRIDE_FLAG
                ]
                .map(OsString::from)
            )
            .is_err(),
            "a dry run with an override"
        );
        let reset = Request::Reset {
            gpu: "GPU-1".into(),
            dry_run: true,
            api_claims: None,
            override_unknown: false,
            seen: None,
        };
        match run(reset.argv()) {
            Cmd::Reset(r) => assert_eq!((r.gpu.as_str(), r.dry_run), ("GPU-1", true)),
            other => panic!("{other:?}"),
        }
        // The API server's claims travel as a global flag the command's run reads.
        let with_claims = Request::Reset {
            gpu: "0".into(),
            dry_run: false,
            api_claims: Some("ml/c=gpu.nvidia.com/gpu-1>p:u1".into()),
            override_unknown: true,
            seen: Some(gpu_diag::operator::reset::Seen {
                pin: Some(gpu_diag::operator::reset::ResetPin {
                    pci_bus_id: Some("0000:ca:00.0".into()),
                    uuid: Some("f6fb5cf3e833e0de".into()),
                    partition: None,
                }),
                unknown: vec!["GPU 0: a; b=c".into(), "GPU 1: x".into()],
                process: None,
            }),
        };
        let args = std::iter::once("node-probe".to_string()).chain(with_claims.argv());
        let Ok(Parsed::Run(inv)) = parse(args.map(OsString::from)) else {
            panic!("{:?}", with_claims.argv())
        };
        assert!(matches!(inv.command, Cmd::Reset(ref r) if r.override_unknown_holders));
        let Cmd::Reset(r) = &inv.command else {
            unreachable!()
        };
        // The pin and what the person saw travel to the act intact, the unknowns as digests, the
        // override still last (the admission policy's shape).
        let (pin, seen) =
            gpu_diag::operator::reset::parse_approved(r.approved.as_deref().unwrap()).unwrap();
        assert_eq!(pin.pci_bus_id.as_deref(), Some("0000:ca:00.0"));
        assert_eq!(pin.uuid.as_deref(), Some("f6fb5cf3e833e0de"));
        assert_eq!(
            seen,
            [
                gpu_diag::operator::reset::unknown_digest("GPU 0: a; b=c"),
                gpu_diag::operator::reset::unknown_digest("GPU 1: x")
            ]
        );
        let argv = with_claims.argv();
        assert_eq!(argv.last().unwrap(), gpu_diag::command::OVERRIDE_FLAG);
        assert_eq!(argv[argv.len() - 3], "--approved");
        assert_eq!(inv.global.api_claims.unwrap().0[0].pods[0].name, "p");
        let alloc = Request::Allocation {
            api_claims: Some("none".into()),
        };
        let args = std::iter::once("node-probe".to_string()).chain(alloc.argv());
        let Ok(Parsed::Run(inv)) = parse(args.map(OsString::from)) else {
            panic!("{:?}", alloc.argv())
        };
        assert!(matches!(inv.command, Cmd::Analysis(ref a) if a.command == Command::Allocation));
        assert_eq!(inv.global.api_claims.unwrap().0, vec![]);
        assert!(
            parse(["node-probe", "allocation", "--api-claims", "ML/x"].map(OsString::from))
                .is_err()
        );
        match run(Request::Evidence { time_limit_secs: 5 }.argv()) {
            Cmd::Evidence(e) => assert_eq!(e.time_limit, 5),
            other => panic!("{other:?}"),
        }
        use gpu_diag::dcgm::request::{DiagRun, GpuSel};
        match run(Request::DcgmDiag {
            run: DiagRun::Level(2),
            gpus: vec![GpuSel::Index(0), GpuSel::Index(3)],
            timeout_secs: Some(90),
            api_claims: None,
            engine: Some(
                gpu_diag::dcgm::request::Engine::parse("10.244.1.7:5555,heartbeat").unwrap(),
            ),
        }
        .argv())
        {
            Cmd::DcgmDiag(d) => {
                assert_eq!(d.engine.as_deref(), Some("10.244.1.7:5555,heartbeat"));
                assert_eq!((d.level.as_deref(), d.gpus.as_str()), (Some("2"), "0,3"));
                assert_eq!((d.dcgmi, d.stop_grace_secs), (None, 30));
                assert_eq!(d.timeout_secs, Some(90));
            }
            other => panic!("{other:?}"),
        }
        match run(Request::DcgmDiag {
            run: DiagRun::Tests(vec!["pcie", "memory"]),
            gpus: vec![GpuSel::Uuid(
                "GPU-5cf8a2b4-9e1d-4c1a-8d0e-1f2a3b4c5d6e".into(),
            )],
            timeout_secs: None,
            api_claims: None,
            engine: None,
        }
        .argv())
        {
            Cmd::DcgmDiag(d) => assert_eq!(d.tests.as_deref(), Some("pcie,memory")),
            other => panic!("{other:?}"),
        }
        // A level and tests at once, or neither, is refused.
        assert!(parse(["node-probe", "dcgm-diag", "--gpus", "0"].map(OsString::from)).is_err());
        assert!(
            parse(
                [
                    "node-probe",
                    "dcgm-diag",
                    "--level",
                    "1",
                    "--tests",
                    "pcie",
                    "--gpus",
                    "0"
                ]
                .map(OsString::from)
            )
            .is_err()
        );
    }
}
