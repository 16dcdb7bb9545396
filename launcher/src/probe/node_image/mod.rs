//! The default delivery's base image: one the node already has (its `status.images`), so nothing is
//! published; where it has none, the fallback base pulled once by digest ([`super::fallback_base`]). node-probe is then copied in over exec (copy delivery), which needs a glibc image with
//! `sh`, `sleep`, `head`, `tee`, `sha256sum`, `wc`, `chmod`, `mktemp` and `rm`.
//!
//! Two questions, in this order, for every image the node lists:
//! 1. May it run as root here? Only from a trusted source ([`super::trust`]) and listed by digest; the pod
//!    then runs that digest (`repo@sha256:…`, pull policy Never), never the tag.
//! 2. Will it work? Ranked by repository name: plain distribution bases first (small, and their tools are
//!    known), then NVIDIA's CUDA and driver images and the common framework images (Ubuntu or UBI based, and
//!    on GPU nodes anyway). Names known not to work are never tried: distroless, busybox/Alpine (musl), UBI
//!    micro/minimal, pause; NVIDIA's component images only where their Dockerfiles say (see `known.rs`).
//!    A ranked image can still lack a tool:
//!    the copy then fails with a clear reason, the runner tries the next one, and the node remembers what
//!    worked.
//!
//! One file per job: `known.rs` (the ranking table of repository names, with why each NVIDIA component
//! image is or is not in it), `glibc.rs` (an image's glibc as its name tells), `assess.rs` (each image the
//! node lists judged: trusted, by digest, a known base, or why not; and the names the node lists), `rank.rs`
//! (the usable ones best first for a node-probe build, and the fallback base as a candidate), and
//! `memory.rs` ([`NodeImages`]: what worked and failed on each node, and the choice, or why there is none);
//! `dcgm.rs`, the base of a run that needs NVIDIA's DCGM (its own image, not a ranked base); `rvs.rs`, that of
//! a run that needs AMD's ROCm Validation Suite (AMD's test runner image, only as the node lists it).

mod assess;
pub mod dcgm;
mod glibc;
mod known;
mod memory;
mod rank;
pub mod rvs;
#[cfg(test)]
mod test_support;

pub use assess::{Candidate, lists, refused};
pub use glibc::glibc_of;
pub use memory::NodeImages;
pub use rank::{fallback, rank, rank_for};
