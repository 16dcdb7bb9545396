//! The text renderings tools share: verdict and findings first, alike GPUs in one line ([`text`]), the
//! GPU topology ([`topology`]) and the RDMA NICs beside it ([`nic`]), telemetry and processes grouped for
//! alike GPUs ([`gpus`]).

pub mod gpus;
pub mod nic;
pub mod reading;
pub mod text;
pub mod topology;
