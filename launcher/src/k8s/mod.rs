//! The Kubernetes side of the launcher: the probe pod (base spec + appliers), the pod and
//! ephemeral-container runners, the [`crate::cluster::ClusterBackend`] over kube, and the sweep of
//! leftover probe pods.

pub mod pod;

// Unit tests live beside the other test areas (tests/k8s/); they need crate internals, so they are
// compiled as a module of the binary rather than as an integration test.
#[cfg(test)]
#[path = "../../../tests/k8s/mod.rs"]
mod tests;
