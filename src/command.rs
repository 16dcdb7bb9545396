//! The probe's commands, each written once as one row of the `commands!` table: its subcommand, help
//! line, the arguments it takes of its own, the facts it collects, how it reads the kernel log and the
//! analysis that makes its report (`Command`); and what the launcher asks for with its arguments
//! (`Request`, which writes node-probe's command line). node-probe builds its subcommands, their
//! arguments, its collection and its dispatch from [`Command::ALL`] and these rows, so a row added here
//! is a working subcommand there.

use std::fmt;
use std::str::FromStr;

use crate::contract::Report;
use crate::facts::{NodeFacts, Sections};
use crate::options::AnalysisOptions;
use crate::{analysis, attribution, dcgm, evidence, kernel_log, operator, workload};

/// The arguments a command takes of its own, beside the flags every command shares (the source,
/// `--node-name`, `--expect-gpus`): node-probe gives each group its flags (`node-probe/src/options.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentGroup {
    /// Only the shared flags.
    None,
    /// Which kernel log to read and the window: `--log-file`, `--since`, `--watch`, `--history`.
    KernelLog,
}

/// How a command's analysis reads the kernel log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLogInput {
    /// From the facts: the newest records, gathered when its sections ask for `kernel_log`.
    Facts,
    /// The whole log, which node-probe streams line by line into the XID analysis
    /// (`kernel_log::report::XidAnalyzer`), so a log of any size takes bounded memory. A simulated node's log
    /// is already in its facts: the row's analysis reads it there.
    Streamed,
}

/// `Sections` with these flags set and the others not.
macro_rules! sections {
    ($($section:ident),+) => {
        Sections {
            $($section: true,)+
            ..Sections::default()
        }
    };
}

/// The table: one row per command. A row's doc line is its help in node-probe and its string its
/// subcommand; `arguments` (default: none) and `kernel_log` (default: from the facts) are optional;
/// `analysis` names the report variant and the pure function that makes it.
macro_rules! commands {
    (@or $default:expr) => { $default };
    (@or $default:expr, $given:expr) => { $given };
    ($(
        #[doc = $about:literal]
        $variant:ident = $name:literal {
            $(arguments: $arguments:ident,)?
            $(kernel_log: $kernel_log:ident,)?
            sections: $sections:expr,
            analysis: $report:ident($analyze:path),
        }
    )+) => {
        /// The read-only commands that turn node facts into a report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Command {
            $( #[doc = $about] $variant, )+
        }

        impl Command {
            /// Every command, in the order node-probe's help lists them.
            pub const ALL: &[Command] = &[$(Command::$variant),+];

            /// Its `node-probe` subcommand.
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name,)+
                }
            }

            /// The command whose subcommand is `name`.
            pub fn named(name: &str) -> Option<Command> {
                Command::ALL.iter().copied().find(|c| c.name() == name)
            }

            /// Its one-line help (without the final period, as clap shows help lines).
            pub fn about(self) -> &'static str {
                let about = match self {
                    $(Command::$variant => $about,)+
                };
                about.trim_ascii().trim_end_matches('.')
            }

            /// The arguments it takes of its own.
            pub fn arguments(self) -> ArgumentGroup {
                match self {
                    $(Command::$variant => {
                        commands!(@or ArgumentGroup::None $(, ArgumentGroup::$arguments)?)
                    })+
                }
            }

            /// How its analysis reads the kernel log.
            pub fn kernel_log(self) -> KernelLogInput {
                match self {
                    $(Command::$variant => {
                        commands!(@or KernelLogInput::Facts $(, KernelLogInput::$kernel_log)?)
                    })+
                }
            }

            /// What the collector must gather for this command.
            pub fn sections(self) -> Sections {
                match self {
                    $(Command::$variant => $sections,)+
                }
            }

            /// Interpret the facts: the report this command answers.
            pub fn analyze(self, facts: &NodeFacts, opts: &AnalysisOptions) -> Report {
                match self {
                    // `into`: some reports are boxed in `Report`.
                    $(Command::$variant => Report::$report($analyze(facts, opts).into()),)+
                }
            }
        }
    };
}

commands! {
    /// GPUs, identities, PCI ids, firmware, memory, MIG/persistence/compute modes, driver versions.
    Inventory = "inventory" {
        sections: sections![identity],
        analysis: Inventory(analysis::inventory::analyze),
    }
    /// Temperatures vs thresholds, power, utilization, clocks and decoded throttle reasons.
    Telemetry = "telemetry" {
        sections: sections![identity, telemetry],
        analysis: Telemetry(analysis::telemetry::analyze),
    }
    /// GPU x GPU matrix, P2P, NVLink state/remotes/counters, NUMA affinity, fabric state.
    Topology = "topology" {
        sections: sections![identity, topology, nics],
        analysis: Topology(analysis::topology::analyze),
    }
    /// ECC counters, retired pages, remapped rows and what they require.
    Ecc = "ecc" {
        sections: sections![identity, ecc],
        analysis: Ecc(analysis::ecc::analyze),
    }
    /// Processes on each GPU with their host names and GPU memory.
    Processes = "processes" {
        sections: sections![identity, processes],
        analysis: Processes(analysis::processes::analyze),
    }
    /// Per-GPU and node verdict made of explained findings.
    Health = "health" {
        sections: Sections::GPUS_AND_HOST,
        analysis: Health(analysis::health::analyze),
    }
    /// Everything above plus the kernel log, in one run.
    Describe = "describe" {
        sections: Sections::GPUS_AND_HOST,
        analysis: Describe(analysis::describe::analyze),
    }
    /// XID/SXid events from the kernel log, decoded against NVIDIA's catalog and correlated.
    Xid = "xid" {
        arguments: KernelLog,
        kernel_log: Streamed,
        sections: sections![identity, kernel_log],
        analysis: Xid(kernel_log::report::analyze),
    }
    /// Which pod holds which GPU (kubelet PodResources API) and whose processes use it (cgroups): exact when the kubelet answers, cgroup-only otherwise.
    Allocation = "allocation" {
        sections: sections![identity, processes, kubelet],
        analysis: Allocation(attribution::analyze),
    }
    /// `describe` and `allocation` in one run: what the launcher's workload diagnosis needs of a node.
    Workload = "workload" {
        sections: Sections::ALL,
        analysis: Workload(workload::analyze_node),
    }
}

/// node-probe's subcommand for a window of samples (`crate::watch`).
pub const WATCH_COMMAND: &str = "watch";

/// node-probe's flag for a person's override of unknown GPU holders (kill, reset).
pub const OVERRIDE_FLAG: &str = "--override-unknown-holders";

/// What the launcher asks node-probe to run, typed: [`Request::argv`] writes the command line, so no
/// caller spells a subcommand or a flag (node-probe's tests parse every form back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A read-only command with no arguments of its own.
    Plain(Command),
    /// `health`, with the GPU count the node should have.
    Health { expect_gpus: Option<u32> },
    /// `xid`, only the events in a window before now.
    Xid { since: Option<Since> },
    /// Operator: end one GPU process, SIGKILL after the grace period, with the API server's claims on
    /// the node as for `reset` (the preflight asks who holds the process's GPUs).
    Kill {
        pid: u32,
        grace_seconds: u32,
        dry_run: bool,
        api_claims: Option<String>,
        /// A person overrode the refusal of a GPU whose holders no source vouches for
        /// (`--override-unknown-holders`; never with `dry_run`).
        override_unknown: bool,
        /// What the person saw in the preflight they approved (`--approved`): the process (its start
        /// time and pod), which the act signals or nothing, and the unknowns, which alone an override
        /// covers.
        seen: Option<crate::operator::reset::Seen>,
    },
    /// `allocation`, with the API server's claims on the node (`--api-claims`, see
    /// [`crate::facts::api_claims_arg`]) where the launcher read them.
    Allocation { api_claims: Option<String> },
    /// Operator: reset one GPU (index or UUID), with the API server's claims on the node as for
    /// `allocation` (the preflight's assignment check reads them).
    Reset {
        gpu: String,
        dry_run: bool,
        api_claims: Option<String>,
        /// As for `Kill`.
        override_unknown: bool,
        /// What the person saw in the preflight they approved (`--approved`): the GPU's identity, which
        /// the act resets or nothing, and the unknowns, which alone an override covers.
        seen: Option<crate::operator::reset::Seen>,
    },
    /// The evidence archive, the node's bug report limited to this many seconds.
    Evidence { time_limit_secs: u64 },
    /// A DCGM diagnostic (`dcgm-diag`) of a level or named tests on the GPUs named, with the API server's
    /// claims on the node as for `allocation` (the idle-first selection reads them).
    DcgmDiag {
        run: crate::dcgm::request::DiagRun,
        gpus: Vec<crate::dcgm::request::GpuSel>,
        /// A deadline shorter than the level's, where the launcher's own probe deadline is shorter.
        timeout_secs: Option<u64>,
        api_claims: Option<String>,
        /// The node's own host engine to run on (the GPU Operator's), else one embedded in the probe.
        engine: Option<crate::dcgm::request::Engine>,
    },
    /// AMD's ROCm Validation Suite (`rvs-diag`) of a level or one recipe on the AMD GPUs named, with the API
    /// server's claims on the node as for `allocation` (the idle-first selection reads them).
    RvsDiag {
        run: crate::rvs::request::RvsRun,
        gpus: Vec<crate::rvs::request::GpuSel>,
        /// A deadline shorter than the run's, where the launcher's own probe deadline is shorter.
        timeout_secs: Option<u64>,
        api_claims: Option<String>,
    },
    /// `watch`: the GPUs named (all when empty) sampled every `interval_ms` for `seconds`, starting at the
    /// unix time `start_at_ms` when given (so the nodes of one job sample the same instants).
    Watch {
        seconds: u32,
        interval_ms: u32,
        start_at_ms: Option<u64>,
        gpus: Vec<u32>,
    },
}

impl From<Command> for Request {
    fn from(c: Command) -> Self {
        Request::Plain(c)
    }
}

impl Request {
    /// Whether node-probe streams this request's output: lines before the document
    /// (`contract::parse_streamed`).
    pub fn streams(&self) -> bool {
        matches!(self, Request::Watch { .. })
    }

    /// The same request as a preflight only, where the command has one (the operator commands).
    pub fn preflight(mut self) -> Self {
        if let Request::Kill {
            dry_run,
            override_unknown,
            ..
        }
        | Request::Reset {
            dry_run,
            override_unknown,
            ..
        } = &mut self
        {
            *dry_run = true;
            *override_unknown = false;
        }
        self
    }

    /// The same request with a person's override of unknown GPU holders (kill, reset; not a dry run).
    pub fn overridden(mut self) -> Self {
        if let Request::Kill {
            dry_run: false,
            override_unknown,
            ..
        }
        | Request::Reset {
            dry_run: false,
            override_unknown,
            ..
        } = &mut self
        {
            *override_unknown = true;
        }
        self
    }

    /// The act bound to the preflight a person approved (reset: the GPU's identity, and the unknowns an
    /// override covers); other requests are unchanged.
    pub fn bound(mut self, saw: &crate::operator::reset::Seen) -> Self {
        if let Request::Reset { seen, .. } | Request::Kill { seen, .. } = &mut self {
            *seen = Some(saw.clone());
        }
        self
    }

    /// Whether only the operator role may send it (deploy/policies.yaml's exec policy admits it from that role
    /// alone): the acts, diagnostics that load GPUs, DCGM's named tests and the node's own DCGM engine.
    pub fn operator_only(&self) -> bool {
        match self {
            Request::Kill { .. } | Request::Reset { .. } => true,
            Request::DcgmDiag { run, engine, .. } => {
                engine.is_some() || *run != dcgm::request::DiagRun::Level(1)
            }
            Request::RvsDiag { run, .. } => run.loads(),
            Request::Plain(_)
            | Request::Health { .. }
            | Request::Xid { .. }
            | Request::Allocation { .. }
            | Request::Evidence { .. }
            | Request::Watch { .. } => false,
        }
    }

    /// node-probe's arguments for this request (without the source and `--node-name`, the runner's, and
    /// the launcher's `--driver-root`, which goes after these).
    pub fn argv(&self) -> Vec<String> {
        fn flag(argv: &mut Vec<String>, name: &str, value: Option<impl ToString>) {
            if let Some(v) = value {
                argv.extend([name.to_string(), v.to_string()]);
            }
        }
        let mut argv = Vec::new();
        let mut dry = false;
        let mut overridden = false;
        match self {
            Request::Plain(c) => argv.push(c.name().to_string()),
            Request::Health { expect_gpus } => {
                argv.push(Command::Health.name().into());
                flag(&mut argv, "--expect-gpus", *expect_gpus);
            }
            Request::Xid { since } => {
                argv.push(Command::Xid.name().into());
                flag(&mut argv, "--since", *since);
            }
            Request::Kill {
                pid,
                grace_seconds,
                dry_run,
                api_claims,
                override_unknown,
                seen,
            } => {
                argv.push(operator::kill::COMMAND.into());
                flag(&mut argv, "--pid", Some(pid));
                flag(&mut argv, "--grace-seconds", Some(grace_seconds));
                flag(&mut argv, "--api-claims", api_claims.as_ref());
                // As a reset's: an act is bound to the process the person saw.
                if let Some(s) = seen.as_ref().filter(|_| !*dry_run) {
                    let a = s.arg(*override_unknown);
                    if !a.is_empty() {
                        flag(&mut argv, "--approved", Some(a));
                    }
                }
                dry = *dry_run;
                overridden = *override_unknown;
            }
            Request::Allocation { api_claims } => {
                argv.push(Command::Allocation.name().into());
                flag(&mut argv, "--api-claims", api_claims.as_ref());
            }
            Request::Reset {
                gpu,
                dry_run,
                api_claims,
                override_unknown,
                seen,
            } => {
                argv.push(operator::reset::COMMAND.into());
                flag(&mut argv, "--gpu", Some(gpu));
                flag(&mut argv, "--api-claims", api_claims.as_ref());
                // A preflight is not bound; an act is, to what the person saw (one pair, before the
                // last flag, as the admission policy admits it).
                if let Some(s) = seen.as_ref().filter(|_| !*dry_run) {
                    let a = s.arg(*override_unknown);
                    if !a.is_empty() {
                        flag(&mut argv, "--approved", Some(a));
                    }
                }
                dry = *dry_run;
                overridden = *override_unknown;
            }
            Request::Evidence { time_limit_secs } => {
                argv.push(evidence::COMMAND.into());
                flag(&mut argv, "--time-limit", Some(time_limit_secs));
            }
            Request::DcgmDiag {
                run,
                gpus,
                timeout_secs,
                api_claims,
                engine,
            } => {
                argv.push(dcgm::COMMAND.into());
                match run {
                    dcgm::request::DiagRun::Level(l) => flag(&mut argv, "--level", Some(l)),
                    dcgm::request::DiagRun::Tests(_) => flag(&mut argv, "--tests", Some(run.arg())),
                }
                let gpus: Vec<String> = gpus.iter().map(ToString::to_string).collect();
                let gpus = if gpus.is_empty() {
                    dcgm::request::ALL.to_string()
                } else {
                    gpus.join(",")
                };
                flag(&mut argv, "--gpus", Some(gpus));
                flag(&mut argv, "--timeout-secs", *timeout_secs);
                flag(&mut argv, "--api-claims", api_claims.as_ref());
                flag(&mut argv, "--engine", engine.map(|e| e.arg()));
                // Where the launcher's orderly stop of a cancelled run finds node-probe (one fixed path, which
                // the exec admission policy admits and nothing else).
                flag(&mut argv, "--pid-file", Some(dcgm::request::PID_FILE));
            }
            Request::RvsDiag {
                run,
                gpus,
                timeout_secs,
                api_claims,
            } => {
                argv.push(crate::rvs::COMMAND.into());
                match run {
                    crate::rvs::request::RvsRun::Level(l) => flag(&mut argv, "--level", Some(l)),
                    crate::rvs::request::RvsRun::Recipe(r) => flag(&mut argv, "--tests", Some(r)),
                }
                let gpus: Vec<String> = gpus.iter().map(ToString::to_string).collect();
                let gpus = if gpus.is_empty() {
                    dcgm::request::ALL.to_string()
                } else {
                    gpus.join(",")
                };
                flag(&mut argv, "--gpus", Some(gpus));
                flag(&mut argv, "--timeout-secs", *timeout_secs);
                flag(&mut argv, "--api-claims", api_claims.as_ref());
                // As dcgm-diag's: where the launcher's orderly stop of a cancelled run finds node-probe.
                flag(&mut argv, "--pid-file", Some(crate::rvs::request::PID_FILE));
            }
            Request::Watch {
                seconds,
                interval_ms,
                start_at_ms,
                gpus,
            } => {
                // Always the same words in the same order: the exec admission policy admits this one shape.
                argv.push(WATCH_COMMAND.into());
                flag(&mut argv, "--seconds", Some(seconds));
                flag(&mut argv, "--interval-ms", Some(interval_ms));
                flag(&mut argv, "--start-at-ms", Some(start_at_ms.unwrap_or(0)));
                let gpus: Vec<String> = gpus.iter().map(ToString::to_string).collect();
                let gpus = if gpus.is_empty() {
                    "all".to_string()
                } else {
                    gpus.join(",")
                };
                flag(&mut argv, "--gpus", Some(gpus));
                argv.push("--stream".into());
            }
        }
        // One or the other, last: the admission policy admits either there. A dry run is never overridden.
        if dry {
            argv.push("--dry-run".into());
        } else if overridden {
            argv.push(OVERRIDE_FLAG.into());
        }
        argv
    }
}

/// A window before now: a number of 1 to 6 digits without a leading zero and a unit s, m, h or d
/// (`30m`, `2h`, `7d`). The one grammar of the tool argument, its schema ([`Since::PATTERN`]) and
/// node-probe's `--since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    count: u32,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    S,
    M,
    H,
    D,
}

impl Since {
    /// The grammar as a JSON Schema pattern (what the tool's input schema advertises).
    pub const PATTERN: &str = r"^[1-9][0-9]{0,5}[smhd]$";

    pub fn seconds(self) -> u64 {
        let per = match self.unit {
            Unit::S => 1,
            Unit::M => 60,
            Unit::H => 3600,
            Unit::D => 86_400,
        };
        u64::from(self.count) * per
    }
}

/// Why a text is no [`Since`]; callers put the argument's name before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a number and a unit s, m, h or d, like `30m`, `2h` or `7d` (got `{0}`)")]
pub struct InvalidSince(pub String);

impl FromStr for Since {
    type Err = InvalidSince;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidSince(s.to_string());
        if !s.is_ascii() {
            return Err(bad());
        }
        let (digits, unit) = s.split_at(s.len().saturating_sub(1));
        let unit = match unit {
            "s" => Unit::S,
            "m" => Unit::M,
            "h" => Unit::H,
            "d" => Unit::D,
            _ => return Err(bad()),
        };
        if !(1..=6).contains(&digits.len())
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let count = digits.parse().map_err(|_| bad())?;
        Ok(Since { count, unit })
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::S => 's',
            Unit::M => 'm',
            Unit::H => 'h',
            Unit::D => 'd',
        };
        write!(f, "{}{unit}", self.count)
    }
}

/// A driver root on the host that the driver roots table does not know (`--driver-root`, e.g.
/// `/opt/nvidia`): the one grammar of the launcher's flag, node-probe's flag and the exec admission
/// policy's `driverRoot` (deploy/policies.yaml), which must agree or a valid flag is refused late.
///
/// It names a directory as seen on the host, which node-probe resolves under the host root it reads
/// (`/proc/1/root` in a probe pod): absolute, normalized (no empty or `.` components, no trailing `/`),
/// no `..` (it would climb out of the host root), only `[A-Za-z0-9._+-]` in each component (no control
/// character, space or shell syntax), at most [`DriverRoot::MAX_LEN`] bytes, and not under `/proc`,
/// `/sys` or `/dev`: there `/proc/<pid>/root` leads into a container's files, which its tenant writes,
/// and node-probe loads and runs the driver's code from this root as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverRoot(String);

impl DriverRoot {
    pub const FLAG: &str = "--driver-root";
    pub const MAX_LEN: usize = 1024;
    /// The normalized form as a regular expression (the policy adds the length, `..`/`.` and prefix rules).
    pub const PATTERN: &str = r"^(/[A-Za-z0-9._+-]+)+$";
    /// Pseudo-filesystems no driver lives in, refused with what is under them.
    pub const REFUSED_TOP: &[&str] = &["proc", "sys", "dev"];

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a text is no [`DriverRoot`]; callers put the argument's name before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why} (got `{shown}`)")]
pub struct InvalidDriverRoot {
    pub why: String,
    /// The value as given, escaped and cut to 120 characters.
    pub shown: String,
}

impl FromStr for DriverRoot {
    type Err = InvalidDriverRoot;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            let mut shown: String = s.escape_debug().take(120).collect();
            if s.escape_debug().nth(120).is_some() {
                shown.push('…');
            }
            InvalidDriverRoot {
                why: why.to_string(),
                shown,
            }
        };
        if s.chars().any(char::is_control) {
            return Err(bad("must not hold a control character (newline, NUL, ...)"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(bad(&format!("is longer than {} bytes", Self::MAX_LEN)));
        }
        if !s.starts_with('/') {
            return Err(bad(
                "must be an absolute path as seen on the host, like /opt/nvidia (node-probe reads it under the host root)",
            ));
        }
        let parts: Vec<&str> = s
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(bad(
                "must not hold `..`: the driver root is a path inside the host root, named without climbing",
            ));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._+-".contains(&b);
        if parts.iter().any(|c| !c.bytes().all(allowed)) {
            return Err(bad(
                "may only hold letters, digits and `.`, `_`, `+`, `-` between its slashes",
            ));
        }
        let Some(top) = parts.first() else {
            return Err(bad(
                "names the host's own root, which is searched already; name the directory that holds the driver's usr/ or lib64/, like /opt/nvidia",
            ));
        };
        if Self::REFUSED_TOP.contains(top) {
            return Err(bad(&format!(
                "is under /{top}, a pseudo-filesystem outside the host's own files (/proc/PID/root is a container's root, written by its tenant); name a directory of the host's filesystem"
            )));
        }
        Ok(DriverRoot(format!("/{}", parts.join("/"))))
    }
}

impl fmt::Display for DriverRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_root_is_an_absolute_normalized_host_path() {
        let ok = |s: &str| s.parse::<DriverRoot>().map(|d| d.to_string());
        assert_eq!(ok("/opt/nvidia/lib64").unwrap(), "/opt/nvidia/lib64");
        assert_eq!(ok("//opt/./nvidia//").unwrap(), "/opt/nvidia");
        assert_eq!(
            ok("/run/nvidia/driver-v2.1+x_y").unwrap(),
            "/run/nvidia/driver-v2.1+x_y"
        );
        assert_eq!(ok("/process/x").unwrap(), "/process/x");
        assert_eq!(ok("/device").unwrap(), "/device");
        let pattern = regex::Regex::new(DriverRoot::PATTERN).unwrap();
        for (bad, why) in [
            ("", "absolute"),
            ("opt/nvidia", "absolute"),
            ("./opt", "absolute"),
            ("../../etc", "absolute"),
            ("/opt/../etc", "`..`"),
            ("/..", "`..`"),
            ("/opt/nvidia/..", "`..`"),
            ("/", "host's own root"),
            ("/./", "host's own root"),
            ("/proc/1/root/usr/lib64", "/proc"),
            ("/proc", "/proc"),
            ("//sys/./class", "/sys"),
            ("/dev/shm", "/dev"),
            ("/opt/nvidia\n--nvml-lib", "control"),
            ("/opt/\0x", "control"),
            ("/opt/my driver", "letters, digits"),
            ("/opt/$(id)", "letters, digits"),
            ("/opt/é", "letters, digits"),
        ] {
            let e = bad.parse::<DriverRoot>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
            // Whatever the launcher refuses, the policy's pattern (or its extra rules) refuses too.
            assert!(
                !pattern.is_match(bad)
                    || bad.contains("/..")
                    || bad.starts_with("/proc")
                    || bad.starts_with("/dev"),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "a".repeat(DriverRoot::MAX_LEN));
        let e = long.parse::<DriverRoot>().unwrap_err().to_string();
        assert!(e.contains("longer than 1024") && e.len() < 300, "{e}");
        let max = format!("/{}", "a".repeat(DriverRoot::MAX_LEN - 1));
        assert!(pattern.is_match(ok(&max).unwrap().as_str()));
    }

    #[test]
    fn since_parses_exactly_its_pattern() {
        let pattern = regex::Regex::new(Since::PATTERN).unwrap();
        for s in [
            "90s",
            "30m",
            "2h",
            "1d",
            "7d",
            "999999s",
            "",
            "h",
            "10",
            "10x",
            "-5m",
            "0s",
            "0h",
            "2w",
            "1.5h",
            "yesterday",
            "1234567s",
            "030m",
            " 2h",
            "2h ",
            "+2h",
            "٣h",
            "2٣",
        ] {
            let parsed = s.parse::<Since>();
            assert_eq!(parsed.is_ok(), pattern.is_match(s), "{s:?}");
            if let Ok(since) = parsed {
                assert_eq!(since.to_string(), s);
            }
        }
        assert_eq!("90s".parse::<Since>().unwrap().seconds(), 90);
        assert_eq!("30m".parse::<Since>().unwrap().seconds(), 1800);
        assert_eq!("2h".parse::<Since>().unwrap().seconds(), 7200);
        assert_eq!("1d".parse::<Since>().unwrap().seconds(), 86_400);
    }

    /// `findings()` answers every finding a report holds, in the order of its fields' names (the order
    /// answers have always listed equally severe findings in): a finding field a report gains without
    /// answering it fails here, on every scenario.
    #[test]
    fn every_report_answers_every_finding_it_holds() {
        use serde_json::Value;

        use crate::finding::{Finding, Judged};

        fn walk(v: &Value, out: &mut Vec<Finding>) {
            match v {
                Value::Object(m) => {
                    if let Ok(f) = serde_json::from_value::<Finding>(v.clone()) {
                        if !out.contains(&f) {
                            out.push(f);
                        }
                        return;
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        for s in crate::scenarios::BUILTIN {
            let facts = crate::scenarios::parse(&s.json()).unwrap();
            for &c in Command::ALL {
                let report = c.analyze(&facts, &AnalysisOptions::default());
                let mut held = Vec::new();
                walk(&serde_json::to_value(&report).unwrap(), &mut held);
                let answered: Vec<Finding> = report.findings().into_iter().cloned().collect();
                assert_eq!(answered, held, "{} on {}", c.name(), s.name);
            }
        }
    }

    #[test]
    fn every_command_has_a_distinct_name_and_help() {
        let mut names: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Command::ALL.len());
        assert!(Command::ALL.iter().all(|c| !c.about().is_empty()));
    }

    /// Every row of the table is whole: a subcommand that names it back, sections that at least
    /// identify the GPUs, and an analysis whose report is keyed by the command's own name (the row
    /// names the right `Report` variant).
    #[test]
    fn every_row_has_its_subcommand_sections_and_analysis() {
        let facts = crate::scenarios::parse(&crate::scenarios::BUILTIN[0].json()).unwrap();
        for &c in Command::ALL {
            assert_eq!(Command::named(c.name()), Some(c));
            assert!(c.sections().identity, "{}", c.name());
            let report =
                serde_json::to_value(c.analyze(&facts, &AnalysisOptions::default())).unwrap();
            let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
            assert_eq!(keys, [c.name()], "the report of `{}`", c.name());
            // Only a command that takes the kernel-log arguments can stream the log they name.
            if c.kernel_log() == KernelLogInput::Streamed {
                assert_eq!(c.arguments(), ArgumentGroup::KernelLog, "{}", c.name());
                assert!(c.sections().kernel_log, "{}", c.name());
            }
        }
    }

    /// A table with one more command: the macro gives it everything node-probe reads (name, help,
    /// arguments, kernel-log input, sections, analysis); node-probe's CLI test adds such a row too.
    mod fixture {
        use super::*;

        commands! {
            /// Per-GPU and node verdict made of explained findings.
            Health = "health" {
                sections: Sections::GPUS_AND_HOST,
                analysis: Health(analysis::health::analyze),
            }
            /// A fixture command: the kernel-log arguments over the ECC analysis.
            Recheck = "recheck" {
                arguments: KernelLog,
                kernel_log: Streamed,
                sections: sections![identity, ecc],
                analysis: Ecc(analysis::ecc::analyze),
            }
        }

        #[test]
        fn a_new_row_is_a_whole_command() {
            assert_eq!(Command::ALL, [Command::Health, Command::Recheck]);
            let c = Command::named("recheck").unwrap();
            assert_eq!(
                c.about(),
                "A fixture command: the kernel-log arguments over the ECC analysis"
            );
            assert_eq!(c.arguments(), ArgumentGroup::KernelLog);
            assert_eq!(c.kernel_log(), KernelLogInput::Streamed);
            assert_eq!(
                c.sections(),
                Sections {
                    identity: true,
                    ecc: true,
                    ..Sections::default()
                }
            );
            assert_eq!(Command::Health.arguments(), ArgumentGroup::None);
            assert_eq!(Command::Health.kernel_log(), KernelLogInput::Facts);
            let facts = crate::scenarios::parse(&crate::scenarios::BUILTIN[0].json()).unwrap();
            assert!(matches!(
                c.analyze(&facts, &AnalysisOptions::default()),
                Report::Ecc(_)
            ));
        }
    }

    /// The launcher's rvs-diag argv is node-probe's grammar, and the shape deploy/policies.yaml admits.
    #[test]
    fn rvs_diag_argv() {
        let argv = Request::RvsDiag {
            run: crate::rvs::request::RvsRun::Level(1),
            gpus: vec![],
            timeout_secs: Some(90),
            api_claims: Some("none".into()),
        }
        .argv();
        assert_eq!(
            argv,
            [
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "all",
                "--timeout-secs",
                "90",
                "--api-claims",
                "none",
                "--pid-file",
                "/tmp/k8s-gpu-mcp-rvs-diag.pid"
            ]
        );
        let argv = Request::RvsDiag {
            run: crate::rvs::request::RvsRun::Recipe("gst_single"),
            gpus: vec![
                crate::rvs::request::GpuSel::Index(0),
                crate::rvs::request::GpuSel::Index(3),
            ],
            timeout_secs: None,
            api_claims: None,
        }
        .argv();
        assert_eq!(
            argv[..5],
            ["rvs-diag", "--tests", "gst_single", "--gpus", "0,3"]
        );
    }
}
