//! The text renderings tools share: verdict and findings first, alike GPUs in one line ([`text`]), the
//! GPU topology ([`topology`]) and the RDMA NICs beside it ([`nic`]).

pub mod nic;
pub mod text;
pub mod topology;
