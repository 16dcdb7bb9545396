//! Kernel-log intelligence: the NVIDIA XID catalog, the kernel-log grammar, and correlated verdicts.

pub mod report;
