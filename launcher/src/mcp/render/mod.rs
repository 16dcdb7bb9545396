//! The text renderings tools share: verdict and findings first ([`text`]), the `details:` part laid out
//! from typed fields or a report's JSON ([`details`]), one reading in a compact line ([`reading`]), the GPU
//! topology ([`topology`]) and the RDMA NICs beside it ([`nic`]), a node's faults as incidents
//! ([`incidents`]), the per-GPU sections: inventory,
//! telemetry and processes grouped for alike GPUs, and their typed details ([`gpus`]), and a window of
//! samples (`watch_gpus`) as text and as a chart ([`watch`], [`chart`]).

pub mod chart;
pub mod details;
pub mod diagnostic;
pub mod gpus;
pub mod incidents;
pub mod nic;
pub mod reading;
pub mod text;
pub mod topology;
pub mod watch;
