//! The scheduler mark a diagnostic run holds while it loads the GPUs (`run_gpu_diagnostic` with
//! `keep_pods_off`): lifted when the run ends, however it ends.

use crate::cluster::{ClusterBackend, run_mark};

/// The mark of a run with `keep_pods_off`: lifted when the run ends, whichever way (an answer, an error,
/// a cancelled task whose future is dropped); while it lives, this process's sweeps never lift it.
pub struct RunMarkHold {
    cluster: std::sync::Arc<dyn ClusterBackend>,
    context: Option<String>,
    node: String,
    key: String,
    /// Taken by `finish`, or by the lift a drop starts: the mark stays this process's until lifted.
    live: Option<run_mark::Live>,
}

impl RunMarkHold {
    pub fn new(
        cluster: std::sync::Arc<dyn ClusterBackend>,
        context: Option<String>,
        node: String,
        key: String,
        live: run_mark::Live,
    ) -> Self {
        RunMarkHold {
            cluster,
            context,
            node,
            key,
            live: Some(live),
        }
    }

    /// A cancelled run whose stop could not be seen, on an engine outside the pod that does not stop by
    /// itself when the probe goes (no heartbeat): the engine may still load the GPUs, so the mark stays
    /// until its deadline, when any launcher's sweep lifts it.
    pub fn keep_until_deadline(mut self, why: &str) -> String {
        let live = self.live.take();
        drop(live);
        tracing::warn!(node = %self.node, key = %self.key, "run_gpu_diagnostic cancelled; its mark stays until its deadline: {why}");
        format!(
            "taint {} left on node {} until its deadline: the cancelled run's stop could not be seen ({why}) \
             and its DCGM engine outside the probe may still be testing the GPUs; any launcher's `gc` or start \
             lifts it once its deadline passed, or `kubectl taint node {} {}-` once the engine says the run ended",
            self.key, self.node, self.node, self.key
        )
    }

    pub async fn finish(mut self) -> String {
        let live = self.live.take();
        let said = match self
            .cluster
            .lift_run_mark(self.context.as_deref(), &self.node, &self.key)
            .await
        {
            Ok(what) => what,
            Err(e) => format!(
                "taint {} left on node {}: it could not be lifted ({e}); any launcher's `gc` or start lifts \
                 it once its deadline passed, or `kubectl taint node {} {}-`",
                self.key, self.node, self.node, self.key
            ),
        };
        drop(live);
        said
    }
}

impl Drop for RunMarkHold {
    fn drop(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        // The run's future was dropped (a cancelled task, a session's end): lift in the background, once;
        // the launcher awaits it before it exits.
        let (cluster, context, node, key) = (
            self.cluster.clone(),
            self.context.clone(),
            self.node.clone(),
            self.key.clone(),
        );
        run_mark::spawn_lift(async move {
            match cluster.lift_run_mark(context.as_deref(), &node, &key).await {
                Ok(what) => tracing::info!(%node, "run_gpu_diagnostic cancelled: {what}"),
                Err(e) => {
                    tracing::warn!(%node, %key, error = %e, "run_gpu_diagnostic: could not lift the run's mark after a cancelled run")
                }
            }
            drop(live);
        });
    }
}
