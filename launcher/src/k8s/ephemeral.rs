//! Ephemeral-container mode (`--probe-mode ephemeral --target-pod ns/pod[/container]`): node-probe runs
//! inside one workload's pod, to look at that workload's processes and GPUs from its own point of view.
//!
//! What it sees and cannot see, by construction (Kubernetes' ephemeral containers: no volumes of their own,
//! no pod-level settings such as hostPID):
//! - no host root: no host `/proc` beyond the target's PID namespace, no PodResources socket; being
//!   privileged it still reads the kernel log (`/dev/kmsg`) and sysfs;
//! - GPUs only as the pod's runtime injected them (its `nvidia.com/gpu` allocation, `NVIDIA_VISIBLE_DEVICES`):
//!   node-probe loads the driver library injected into the target container through `/proc/<pid>/root`
//!   (`NODE_PROBE_NVML_IN_CONTAINERS`); other GPUs of the node are invisible;
//! - processes only of the target container's PID namespace (`targetContainerName`), no hostPID;
//! - it can never be removed: the container ends when its bounded `sleep` ends, but stays listed in the
//!   pod's spec (hence the unique name per call and `patch pods/ephemeralcontainers` being operator-only).

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use super::clients::Clients;
use super::early_exec::{EarlyError, exec_when_startable};
use super::exec::{ExecError, ProbeExec};
use super::lifecycle::{
    Progress, WaitError, api_error, api_error_in, classify_container, finish, timing, wait_until,
};
use super::pod::{self, ProbeCall, ProbePodOptions};
use crate::runner::{
    Phase, PhaseTiming, ProbeOutput, ProbeRequest, ProgressSink, RunError, RunFuture, Runner,
};

/// `namespace/pod` or `namespace/pod/container`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPod {
    pub namespace: String,
    pub name: String,
    pub container: Option<String>,
}

impl std::str::FromStr for TargetPod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [ns, name] if !ns.is_empty() && !name.is_empty() => Ok(TargetPod {
                namespace: ns.to_string(),
                name: name.to_string(),
                container: None,
            }),
            [ns, name, c] if !ns.is_empty() && !name.is_empty() && !c.is_empty() => Ok(TargetPod {
                namespace: ns.to_string(),
                name: name.to_string(),
                container: Some(c.to_string()),
            }),
            _ => Err(format!(
                "target pod `{s}` must be namespace/pod or namespace/pod/container"
            )),
        }
    }
}

pub struct EphemeralRunner {
    pub(crate) clients: Arc<Clients>,
    pub(crate) target: TargetPod,
    pub(crate) opts: ProbePodOptions,
    pub(crate) probe_command: Vec<String>,
    pub(crate) exec: Arc<dyn ProbeExec>,
    pub(crate) max_stdout: usize,
}

impl EphemeralRunner {
    async fn work(
        &self,
        req: &ProbeRequest,
        progress: &ProgressSink,
    ) -> Result<ProbeOutput, RunError> {
        let secs = req.timeout.as_secs();
        let t_all = tokio::time::Instant::now() + req.timeout;
        let client = self
            .clients
            .get(req.context.as_deref())
            .await
            .map_err(|e| RunError::Other(e.to_string()))?;
        let tp = &self.target;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &tp.namespace);
        let mut timings: Vec<PhaseTiming> = Vec::new();

        progress(Phase::StartingProbe);
        let t = Instant::now();
        let target = pods
            .get_opt(&tp.name)
            .await
            .map_err(|e| api_error(&format!("get target pod {}/{}", tp.namespace, tp.name), e))?
            .ok_or_else(|| {
                RunError::Other(format!("target pod {}/{} not found", tp.namespace, tp.name))
            })?;
        let spec = target.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        if !req.node.is_empty() && req.node != node {
            return Err(RunError::Other(format!(
                "target pod {}/{} runs on node `{node}`, not `{}`",
                tp.namespace, tp.name, req.node
            )));
        }
        let phase = target
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Unknown");
        if phase != "Running" {
            return Err(RunError::Other(format!(
                "target pod {}/{} is {phase}; ephemeral containers need a running pod",
                tp.namespace, tp.name
            )));
        }
        let target_container = tp.container.clone().or_else(|| {
            spec.and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
        });
        let call = ProbeCall::new(&tp.namespace, &node, &req.tool);
        let probe = pod::probe_pod(&call, &self.opts);
        let sleep = u32::try_from(secs.saturating_add(5)).unwrap_or(u32::MAX);
        let ec = pod::to_ephemeral_container(&probe, target_container.as_deref(), sleep);
        let ec_name = ec.name.clone();
        let patch = serde_json::json!({ "spec": { "ephemeralContainers": [ec] } });
        let patched = tokio::time::timeout_at(
            t_all,
            pods.patch_ephemeral_containers(
                &tp.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            ),
        )
        .await
        .map_err(|_| RunError::Timeout {
            node: node.clone(),
            secs,
        })?
        .map_err(|e| {
            api_error_in(
                "add ephemeral container (patch pods/ephemeralcontainers)",
                Some(&tp.namespace),
                e,
            )
        })?;
        timings.push(timing(Phase::StartingProbe, t));

        progress(Phase::WaitingForProbe);
        let t = Instant::now();
        let mut last = String::new();
        let classify = |p: &Pod| -> Progress {
            let st = p.status.as_ref();
            let cs = st
                .and_then(|s| s.ephemeral_container_statuses.as_ref())
                .and_then(|v| v.iter().find(|c| c.name == ec_name));
            classify_container(cs, "Waiting")
        };
        // Exec as soon as the container takes it (early_exec.rs), watching the pod meanwhile.
        let watch = wait_until(&pods, &tp.name, Some(patched), classify, &mut last);
        let mut argv = self.probe_command.clone();
        argv.extend(req.args.iter().cloned());
        argv.extend(["--node-name".to_string(), node.clone()]);
        let attempt = || {
            self.exec.exec(
                client.clone(),
                &tp.namespace,
                &tp.name,
                &ec_name,
                argv.clone(),
            )
        };
        let out = match tokio::time::timeout_at(t_all, exec_when_startable(watch, attempt)).await {
            Ok(Ok(e)) => {
                let started = e.attempt_started.into_std();
                timings.push(PhaseTiming {
                    phase: Phase::WaitingForProbe,
                    millis: u64::try_from(started.saturating_duration_since(t).as_millis())
                        .unwrap_or(u64::MAX),
                });
                progress(Phase::Probing);
                timings.push(timing(Phase::Probing, started));
                e.output
            }
            Ok(Err(EarlyError::Wait(WaitError::NotStarted(reason)))) => {
                return Err(RunError::ProbeNotStarted { node, reason });
            }
            Ok(Err(EarlyError::Wait(WaitError::Api(e)))) => {
                return Err(api_error("watch target pod", e));
            }
            Ok(Err(EarlyError::Exec(ExecError::Forbidden(m)))) => {
                return Err(RunError::Forbidden(m));
            }
            Ok(Err(EarlyError::Exec(ExecError::Failed(m) | ExecError::NotRunning(m)))) => {
                return Err(RunError::Exec(m));
            }
            Err(_) if last == "Running" || last.is_empty() => {
                return Err(RunError::Timeout { node, secs });
            }
            Err(_) => {
                return Err(RunError::ProbeNotStarted {
                    node,
                    reason: format!("ephemeral container still {last} after {secs} s"),
                });
            }
        };
        finish(
            &node,
            out,
            self.max_stdout,
            timings,
            format!(
                "{}/{} (ephemeral container {ec_name})",
                tp.namespace, tp.name
            ),
        )
    }
}

impl Runner for EphemeralRunner {
    fn run<'a>(
        &'a self,
        req: ProbeRequest,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> RunFuture<'a> {
        Box::pin(async move {
            // Nothing to delete: an ephemeral container cannot be removed; its sleep is bounded by the
            // call's timeout, so it ends on its own.
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(RunError::Cancelled),
                r = self.work(&req, &progress) => r,
            };
            progress(Phase::Done);
            result
        })
    }
}
