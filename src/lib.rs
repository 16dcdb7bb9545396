//! gpu-diag: the shared library of k8s-gpu-mcp.
//!
//! It holds the probe contract (the JSON document `node-probe` prints and the launcher reads), the raw
//! fact model both GPU sources fill, the XID catalog and kernel-log grammar, and every interpretation
//! rule. Everything here is pure: no I/O, no clock, no hardware access, so every rule is unit- and
//! snapshot-testable from plain data.

pub mod analysis;
pub mod attribution;
pub mod contract;
pub mod evidence;
pub mod facts;
pub mod finding;
pub mod operator;
pub mod pci;
pub mod scenarios;
pub mod xid;

use contract::Report;
use facts::{NodeFacts, Sections};

/// Options that change interpretation, passed through from the probe's command line.
#[derive(Debug, Clone, Default)]
pub struct AnalysisOptions {
    /// `--expect-gpus N`: report "GPU missing" when fewer answer.
    pub expect_gpus: Option<u32>,
    /// `--since`: only kernel-log events at or after this unix time count.
    pub since_unix: Option<f64>,
}

/// The read-only commands that turn node facts into a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Inventory,
    Telemetry,
    Topology,
    Ecc,
    Processes,
    Health,
    Describe,
    Xid,
    /// GPU ↔ pod ↔ process attribution (kubelet PodResources, cgroups).
    Allocation,
    /// `Describe` and `Allocation` in one run: what a workload diagnosis needs of each node.
    Workload,
}

impl Command {
    /// Every command, for the tests that hold node-probe's command line and this enum together.
    pub const ALL: [Command; 10] = [
        Command::Inventory,
        Command::Telemetry,
        Command::Topology,
        Command::Ecc,
        Command::Processes,
        Command::Health,
        Command::Describe,
        Command::Xid,
        Command::Allocation,
        Command::Workload,
    ];

    /// Its `node-probe` subcommand: the launcher builds its argv from this, never from a literal.
    pub fn arg(self) -> &'static str {
        match self {
            Command::Inventory => "inventory",
            Command::Telemetry => "telemetry",
            Command::Topology => "topology",
            Command::Ecc => "ecc",
            Command::Processes => "processes",
            Command::Health => "health",
            Command::Describe => "describe",
            Command::Xid => "xid",
            Command::Allocation => "allocation",
            Command::Workload => "workload",
        }
    }

    /// What the collector must gather for this command.
    pub fn sections(self) -> Sections {
        let none = Sections::default();
        match self {
            Command::Inventory => Sections {
                identity: true,
                ..none
            },
            Command::Telemetry => Sections {
                identity: true,
                telemetry: true,
                ..none
            },
            Command::Topology => Sections {
                identity: true,
                topology: true,
                nics: true,
                ..none
            },
            Command::Ecc => Sections {
                identity: true,
                ecc: true,
                ..none
            },
            Command::Processes => Sections {
                identity: true,
                processes: true,
                ..none
            },
            Command::Xid => Sections {
                identity: true,
                kernel_log: true,
                ..none
            },
            Command::Allocation => Sections {
                identity: true,
                processes: true,
                ..none
            },
            Command::Health | Command::Describe | Command::Workload => Sections::ALL,
        }
    }
}

/// Interpret the facts for one command.
pub fn analyze(command: Command, facts: &NodeFacts, opts: &AnalysisOptions) -> Report {
    match command {
        Command::Inventory => Report::Inventory(analysis::inventory::analyze(facts, opts)),
        Command::Telemetry => Report::Telemetry(analysis::telemetry::analyze(facts, opts)),
        Command::Topology => Report::Topology(analysis::topology::analyze(facts, opts)),
        Command::Ecc => Report::Ecc(analysis::ecc::analyze(facts, opts)),
        Command::Processes => Report::Processes(analysis::processes::analyze(facts, opts)),
        Command::Health => Report::Health(analysis::health::analyze(facts, opts)),
        Command::Describe => Report::Describe(Box::new(analysis::describe::analyze(facts, opts))),
        Command::Xid => Report::Xid(Box::new(xid::report::analyze(facts, opts))),
        Command::Allocation => Report::Allocation(attribution::analyze(facts, opts)),
        Command::Workload => Report::Workload(Box::new(analysis::workload::WorkloadNodeReport {
            describe: analysis::describe::analyze(facts, opts),
            allocation: attribution::analyze(facts, opts),
        })),
    }
}
