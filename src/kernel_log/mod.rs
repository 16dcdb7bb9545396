//! Kernel-log intelligence for three drivers (NVIDIA Xid, amdgpu, habanalabs): their catalogs, the
//! kernel-log grammar, and correlated verdicts.
//!
//! Flow, one line at a time: `grammar::RecordSplitter` joins raw lines into records (kmsg, dmesg,
//! syslog envelopes) and `grammar::parse_line` recognises the NVIDIA lines; `extract` turns them into
//! events (`event::Pending`); `report::XidAnalyzer` attributes each to its GPU (the GPU identity table,
//! `report/gpu_identity.rs`) and keeps counts, bursts and samples; `correlate` applies the catalog's
//! workflows; `report/verdicts.rs` turns what was kept into each GPU's findings and the node's verdict.
//! `contract` holds the report's types; `time` the calendar (through `jiff`).
//!
//! Imports run one way: `contract` and `time` <- `event` <- `grammar`, `correlate` <- `extract` <-
//! `report`. The grammar and the correlation never import each other.

pub mod amdgpu_catalog;
mod amdgpu_extract;
pub mod contract;
pub mod correlate;
pub mod event;
mod extract;
pub mod grammar;
pub mod habanalabs_catalog;
pub mod history;
pub mod neuron_catalog;
mod neuron_extract;
pub mod nvidia_catalog;
pub mod report;
pub mod time;
