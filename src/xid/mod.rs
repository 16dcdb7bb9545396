//! Kernel-log intelligence: the NVIDIA XID catalog, the kernel-log grammar, and correlated verdicts.
//!
//! Flow: `grammar::records` splits raw lines into records (kmsg, dmesg, syslog envelopes),
//! `grammar::parse_line` recognises the NVIDIA lines, `report::analyze` attributes events to GPUs,
//! `correlate` groups bursts and applies the catalog's workflows, and the report carries events,
//! per-GPU summaries, a node verdict and findings.

pub mod catalog;
pub mod correlate;
pub mod grammar;
pub mod report;
pub mod time;
