//! Tests of the Kubernetes runner, backend and pod builder (compiled into the launcher binary's test
//! target through `#[path]` in `launcher/src/main.rs`).

mod backend;
mod clients;
mod delivery;
mod ephemeral;
mod exec;
mod live;
mod mock;
mod operator;
mod pod_runner;
mod pod_spec;
mod policies;
mod stream_exec;
mod sweep;
