//! How node-probe runs: the [`runner::Runner`] trait the tools call ("run `node-probe <argv>` on node X"),
//! the local runner (a child process, [`local`]) and the Kubernetes runners: a probe pod ([`pod`] its spec,
//! [`pod_runner`] create, wait, exec, delete, [`early_exec`] exec as soon as the container takes it,
//! [`lifecycle`] the waits and the delete guard, [`pod_batch`] what the pods of a many-node call share: one
//! watch, [`pod_watch`], and one list of nodes) or an ephemeral container ([`ephemeral`]); the exec
//! transports ([`exec`], [`stream_exec`] with stdin, [`exec_result`] what both give back); how node-probe
//! reaches the node ([`delivery`], into a base image the node has: [`node_image`], [`trust`], or pulls once: [`fallback_base`]); the sweep of
//! leftover probe pods ([`sweep`]); a cancelled DCGM run's orderly stop before its pod goes ([`stop_first`]); and the settings and wiring of the Kubernetes runner ([`kube`]).

pub mod delivery;
pub mod early_exec;
pub mod ephemeral;
pub mod exec;
pub mod exec_result;
pub mod fallback_base;
pub mod kube;
pub mod lifecycle;
pub mod local;
pub mod node_image;
pub mod pod;
pub mod pod_batch;
pub mod pod_runner;
pub mod pod_watch;
pub mod runner;
pub mod stop_first;
pub mod stream_exec;
pub mod sweep;
pub mod trust;
