//! gpu-diag: the shared library of k8s-gpu-mcp.
//!
//! It holds the probe contract (the JSON document `node-probe` prints and the launcher reads), the probe
//! commands, the raw fact model both GPU sources fill, the XID catalog and kernel-log grammar, and every
//! interpretation rule. Everything here is pure: no I/O, no clock, no hardware access, so every rule is
//! unit- and snapshot-testable from plain data.

pub mod analysis;
pub mod attribution;
pub mod command;
pub mod contract;
pub mod dcgm;
pub mod evidence;
pub mod facts;
pub mod finding;
pub mod history;
pub mod incident;
pub mod kernel_log;
pub mod operator;
pub mod options;
pub mod pci;
pub mod rvs;
pub mod scenarios;
pub mod watch;
pub mod workload;
