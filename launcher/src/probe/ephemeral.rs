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
//!
//! Reuse: a call that finds the container an earlier call of this runner added to the same pod (same UID)
//! still running, with more of its bounded `sleep` left than the call's timeout (plus a margin), execs in it
//! instead of adding another. Nothing lives longer than before (the sleep is still the first call's timeout
//! plus 5 s), the pod's spec grows by one container instead of one per call, and the call skips the kubelet:
//! the kubelet's pod worker starts a new ephemeral container only after a PLEG relist that began after the
//! pod's previous sync (`GetNewerThan` in pkg/kubelet/pod_workers.go, v1.35.4), and every container started
//! makes the pod sync again on the next relist, so a call right after another waited 1 to 2 relists (1 s
//! each) where an idle pod starts it in about 150 ms (docs/performance.md).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use super::early_exec::{EarlyError, exec_when_startable};
use super::exec::{ExecError, ProbeExec};
use super::lifecycle::{
    Progress, WaitError, api_error, api_error_in, classify_container, finish, timing, wait_until,
};
use super::pod::{self, ProbeCall, ProbePodOptions};
use super::runner::{
    Phase, PhaseTiming, ProbeOutput, ProbeRequest, ProgressSink, RunError, RunFuture, Runner,
};
use crate::cluster::clients::Clients;

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
    /// The container the last call added, while it may still serve another (see the module's note).
    pub(crate) live: LiveContainer,
}

/// The ephemeral container this runner added last: in which pod (UID), its name, and when its `sleep` ends
/// at the latest (counted from before the patch, so never later than it really ends).
#[derive(Default)]
pub struct LiveContainer(Mutex<Option<Live>>);

#[derive(Clone)]
struct Live {
    pod_uid: String,
    name: String,
    ends: Instant,
}

/// A reused container must outlive the call's timeout by this much.
const REUSE_MARGIN: Duration = Duration::from_secs(1);

impl LiveContainer {
    fn get(&self) -> Option<Live> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn set(&self, live: Option<Live>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = live;
    }
}

/// The container to reuse for a call with `timeout`: the last one added to this very pod (an exec already
/// ran in it), if its `sleep` outlasts the call and the pod's status does not say it ended. The status is not
/// asked to say Running: the kubelet reports that only on its next relist, up to a second after the start.
fn reusable(live: Option<Live>, target: &Pod, timeout: Duration) -> Option<String> {
    let live = live?;
    let uid = target.metadata.uid.as_deref()?;
    if uid != live.pod_uid || live.ends < Instant::now() + timeout + REUSE_MARGIN {
        return None;
    }
    let ended = target
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|v| v.iter().find(|c| c.name == live.name))
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.terminated.is_some());
    (!ended).then_some(live.name)
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
        let mut argv = self.probe_command.clone();
        argv.extend(req.args.iter().cloned());
        argv.extend(["--node-name".to_string(), node.clone()]);
        if let Some(name) = reusable(self.live.get(), &target, req.timeout) {
            let looked_up = timing(Phase::StartingProbe, t);
            progress(Phase::Probing);
            let t = Instant::now();
            let exec = self.exec.exec_run(
                client.clone(),
                &tp.namespace,
                &tp.name,
                &name,
                argv.clone(),
                req.lines.as_ref(),
            );
            match tokio::time::timeout_at(t_all, exec).await {
                Err(_) => return Err(RunError::Timeout { node, secs }),
                Ok(Ok(out)) => {
                    timings.push(looked_up);
                    timings.push(timing(Phase::Probing, t));
                    return finish(
                        &node,
                        out,
                        self.max_stdout,
                        req.lines.as_ref(),
                        timings,
                        format!(
                            "{}/{} (ephemeral container {name}, added by an earlier call)",
                            tp.namespace, tp.name
                        ),
                    );
                }
                // Gone after all (killed, or the pod restarted it away): add a new one, as without reuse.
                Ok(Err(ExecError::NotRunning(m))) => {
                    tracing::debug!(container = %name, "ephemeral container not reusable: {m}");
                    self.live.set(None);
                }
                Ok(Err(ExecError::Forbidden(m))) => return Err(RunError::Forbidden(m)),
                Ok(Err(ExecError::Failed(m))) => return Err(RunError::Exec(m)),
            }
        }
        let call = ProbeCall::new(&tp.namespace, &node, &req.tool);
        let probe = pod::probe_pod(&call, &self.opts);
        let sleep = u32::try_from(secs.saturating_add(5)).unwrap_or(u32::MAX);
        let ec = pod::to_ephemeral_container(&probe, target_container.as_deref(), sleep);
        let ec_name = ec.name.clone();
        let patch = serde_json::json!({ "spec": { "ephemeralContainers": [ec] } });
        let ends = Instant::now() + Duration::from_secs(u64::from(sleep));
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
        let added = patched.metadata.uid.clone().map(|pod_uid| Live {
            pod_uid,
            name: ec_name.clone(),
            ends,
        });

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
        let attempt = || {
            self.exec.exec_run(
                client.clone(),
                &tp.namespace,
                &tp.name,
                &ec_name,
                argv.clone(),
                req.lines.as_ref(),
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
                // It runs: the next call may use it.
                self.live.set(added);
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
            req.lines.as_ref(),
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
            // timeout of the call that added it, so it ends on its own.
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
