//! The probe-pod runner: create → wait Running (watch) → exec node-probe → parse → delete, with the delete
//! on every path (see [`super::lifecycle::DeleteGuard`]).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use tokio::time::timeout_at;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::delivery::{Failure, Payload, ProbeBinaries};
use super::early_exec::{EarlyError, exec_when_startable};
use super::exec::{ExecError, ExecOutput, ProbeExec};
use super::lifecycle::{
    DeleteGuard, WaitError, api_error, api_error_in, check_node, classify_pod, finish, ready_node,
    timing, wait_until,
};
use super::node_image::NodeImages;
use super::pod::{self, PROBE_CONTAINER, ProbeCall, ProbePodOptions};
use super::runner::{
    Phase, PhaseTiming, ProbeOutput, ProbeRequest, ProgressSink, RunError, RunFuture, Runner,
};
use crate::cluster::clients::Clients;

pub struct PodRunner {
    pub(crate) clients: Arc<Clients>,
    pub(crate) namespace: String,
    pub(crate) opts: ProbePodOptions,
    /// argv[0..] of node-probe inside the image (default `["node-probe"]`, found on PATH).
    pub(crate) probe_command: Vec<String>,
    pub(crate) exec: Arc<dyn ProbeExec>,
    pub(crate) max_stdout: usize,
    pub(crate) tracker: TaskTracker,
    pub(crate) delete_timeout: Duration,
    /// Copy delivery (`--probe-delivery copy`): the node-probe builds to stream in; None: the image has it.
    pub(crate) copy: Option<Arc<ProbeBinaries>>,
    /// Default delivery (no --probe-image): copy into a base image chosen from the node's own images.
    pub(crate) node_images: Option<Arc<NodeImages>>,
    /// The cluster refused the probe's priority class once: create probe pods without it.
    pub(crate) no_priority: std::sync::atomic::AtomicBool,
}

/// What survives the call's work future: the armed delete and the last seen pod state.
#[derive(Default)]
struct CallState {
    guard: Option<DeleteGuard>,
    last_state: String,
}

impl PodRunner {
    pub fn new(
        clients: Arc<Clients>,
        namespace: String,
        opts: ProbePodOptions,
        exec: Arc<dyn ProbeExec>,
    ) -> Self {
        PodRunner {
            clients,
            namespace,
            opts,
            probe_command: vec!["node-probe".into()],
            exec,
            max_stdout: 16 * 1024 * 1024,
            tracker: TaskTracker::new(),
            delete_timeout: Duration::from_secs(10),
            copy: None,
            node_images: None,
            no_priority: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn argv(&self, req: &ProbeRequest) -> Vec<String> {
        let mut argv = self.probe_command.clone();
        argv.extend(self.probe_args(req));
        argv
    }

    /// node-probe's arguments (after its argv[0]).
    fn probe_args(&self, req: &ProbeRequest) -> Vec<String> {
        let mut args = req.args.clone();
        args.push("--node-name".into());
        args.push(req.node.clone());
        args
    }

    async fn work(
        &self,
        req: &ProbeRequest,
        progress: &ProgressSink,
        call: &mut CallState,
    ) -> Result<ProbeOutput, RunError> {
        let deadline = tokio::time::Instant::now() + req.timeout;
        let secs = req.timeout.as_secs();
        let timeout = || RunError::Timeout {
            node: req.node.clone(),
            secs,
        };
        let client = self
            .clients
            .get(req.context.as_deref())
            .await
            .map_err(|e| RunError::Other(e.to_string()))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        progress(Phase::StartingProbe);
        let t = Instant::now();
        // Node first: a missing or NotReady node would otherwise look like a pod stuck in Pending.
        let node = timeout_at(deadline, ready_node(&client, &req.node))
            .await
            .map_err(|_| timeout())??;
        // Copy delivery: the build for the node's architecture, before any pod exists (no build, no pod).
        let payload: Option<Arc<Payload>> = match &self.copy {
            None => None,
            Some(bins) => {
                let arch = node
                    .status
                    .as_ref()
                    .and_then(|s| s.node_info.as_ref())
                    .map(|i| i.architecture.as_str())
                    .unwrap_or_default();
                let p = timeout_at(deadline, bins.payload(&req.node, arch))
                    .await
                    .map_err(|_| timeout())?
                    .map_err(|e| RunError::Other(e.to_string()))?;
                Some(p)
            }
        };
        // Default delivery: a base image the node already has; an image that turns out unusable is
        // remembered and the next one is tried (a fresh pod each), within the call's deadline.
        let Some(images) = &self.node_images else {
            let image = self.opts.image.clone();
            return self
                .attempt(
                    req, progress, call, &client, &pods, payload, &image, deadline, t,
                )
                .await;
        };
        let mut tries = 0;
        let mut started = t;
        loop {
            let c = images.choose(&req.node, &node).map_err(RunError::Other)?;
            tries += 1;
            tracing::info!(node = %req.node, image = %c.image, name = %c.label, "default delivery: trusted base image from the node, by digest");
            let r = self
                .attempt(
                    req,
                    progress,
                    call,
                    &client,
                    &pods,
                    payload.clone(),
                    &c.image,
                    deadline,
                    started,
                )
                .await;
            match r {
                Ok(out) => {
                    images.worked(&req.node, &c);
                    return Ok(out);
                }
                Err(e) if tries < 3 && image_unusable(&e, &c.image) => {
                    tracing::info!(node = %req.node, image = %c.image, error = %e, "base image unusable; trying the next");
                    images.failed(&req.node, &c, &short_reason(&e));
                    if let Some(g) = call.guard.take() {
                        g.delete().await;
                    }
                    started = Instant::now();
                }
                Err(e) => {
                    if image_unusable(&e, &c.image) {
                        images.failed(&req.node, &c, &short_reason(&e));
                    }
                    return Err(e);
                }
            }
        }
    }

    /// One probe pod with `image`: create, exec node-probe as soon as the container takes it, parse.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        req: &ProbeRequest,
        progress: &ProgressSink,
        call: &mut CallState,
        client: &kube::Client,
        pods: &Api<Pod>,
        payload: Option<Arc<Payload>>,
        image: &str,
        deadline: tokio::time::Instant,
        started: Instant,
    ) -> Result<ProbeOutput, RunError> {
        let secs = req.timeout.as_secs();
        let timeout = || RunError::Timeout {
            node: req.node.clone(),
            secs,
        };
        let mut timings: Vec<PhaseTiming> = Vec::new();
        let t = started;
        let mut opts = self.opts.clone();
        image.clone_into(&mut opts.image);
        if self.node_images.is_some() {
            // A base the node already has, by the digest it lists: never pulled (a pull could only fetch
            // what the node does not have, which is not what was judged).
            opts.image_pull_policy = "Never".into();
        }
        let probe = ProbeCall::new(&self.namespace, &req.node, &req.tool);
        let mut spec = pod::probe_pod(&probe, &opts);
        if payload.is_some() {
            pod::apply_copy_delivery(&mut spec);
        }
        call.guard = Some(DeleteGuard::new(
            pods.clone(),
            probe.name.clone(),
            self.tracker.clone(),
            self.delete_timeout,
        ));
        tracing::info!(pod = %probe.name, node = %req.node, tool = %req.tool, "creating probe pod");
        if self.no_priority.load(std::sync::atomic::Ordering::Relaxed) {
            pod::without_priority(&mut spec);
        }
        let mut result = timeout_at(deadline, pods.create(&PostParams::default(), &spec))
            .await
            .map_err(|_| timeout())?;
        // A cluster that restricts the critical priority class (a ResourceQuota scoped to it, or an admission
        // policy) refuses the pod: create it once more without, and remember for later calls. It then runs,
        // but the kubelet's eviction admission may refuse it on a node under disk or memory pressure.
        if let Err(kube::Error::Api(st)) = &result
            && spec
                .spec
                .as_ref()
                .is_some_and(|s| s.priority_class_name.is_some())
            && (st.code == 403 || st.code == 422)
            && (st.message.contains("priority") || st.message.contains("quota"))
        {
            tracing::warn!(error = %st.message, "the cluster refuses the probe pod's priority class; creating it without");
            self.no_priority
                .store(true, std::sync::atomic::Ordering::Relaxed);
            pod::without_priority(&mut spec);
            result = timeout_at(deadline, pods.create(&PostParams::default(), &spec))
                .await
                .map_err(|_| timeout())?;
        }
        let created = match result {
            Ok(p) => Some(p),
            // The name is unique to this call: AlreadyExists means the client retried a create that had
            // reached the server (429/503/504 retries), so the pod is ours.
            Err(kube::Error::Api(s)) if s.is_already_exists() => None,
            Err(kube::Error::Api(s)) if s.is_not_found() => {
                return Err(RunError::Other(format!(
                    "create probe pod: namespace {} not found (apply deploy/00-namespace.yaml or pass --namespace)",
                    self.namespace
                )));
            }
            Err(e) => {
                return Err(api_error_in(
                    &format!("create probe pod in namespace {}", self.namespace),
                    Some(&self.namespace),
                    e,
                ));
            }
        };
        timings.push(timing(Phase::StartingProbe, t));

        // Exec as soon as the container takes it (early_exec.rs), watching the pod meanwhile for reasons
        // it never will run.
        progress(Phase::WaitingForProbe);
        let t = Instant::now();
        let watch = wait_until(
            pods,
            &probe.name,
            created,
            |p| classify_pod(p, PROBE_CONTAINER),
            &mut call.last_state,
        );
        let attempt = || match &payload {
            None => self.exec.exec(
                client.clone(),
                &self.namespace,
                &probe.name,
                PROBE_CONTAINER,
                self.argv(req),
            ),
            Some(p) => self.exec.exec_stdin(
                client.clone(),
                &self.namespace,
                &probe.name,
                PROBE_CONTAINER,
                p.argv(self.probe_args(req)),
                p.clone(),
            ),
        };
        let early = timeout_at(deadline, exec_when_startable(watch, attempt)).await;
        let out = match early {
            Ok(Ok(e)) => {
                // Waiting: until the attempt that worked began; probing: that attempt.
                let waited = e.attempt_started.into_std().saturating_duration_since(t);
                timings.push(PhaseTiming {
                    phase: Phase::WaitingForProbe,
                    millis: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
                progress(Phase::Probing);
                tracing::debug!(
                    attempts = e.attempts,
                    "exec attempts until the container took it"
                );
                let t = e.attempt_started.into_std();
                timings.push(timing(Phase::Probing, t));
                e.output
            }
            Ok(Err(EarlyError::Wait(WaitError::NotStarted(reason)))) => {
                return Err(RunError::ProbeNotStarted {
                    node: req.node.clone(),
                    reason: not_started(&reason, image, payload.is_some()),
                });
            }
            Ok(Err(EarlyError::Wait(WaitError::Api(e)))) => {
                return Err(api_error("watch probe pod", e));
            }
            Ok(Err(EarlyError::Exec(ExecError::Forbidden(m)))) => {
                return Err(RunError::Forbidden(m));
            }
            Ok(Err(EarlyError::Exec(ExecError::Failed(m) | ExecError::NotRunning(m)))) => {
                // The runtime's "executable file not found": node-probe (image) or sh (copy) is not there.
                let missing = m.contains("executable file not found");
                return Err(RunError::Exec(match &payload {
                    Some(p) if missing => {
                        format!(
                            "{} ({m})",
                            Failure::MissingTool("sh".into()).explain(image, p)
                        )
                    }
                    None if missing => format!(
                        "{m} (the probe image {} has no node-probe: check --probe-image, or use \
                         --probe-delivery copy to stream node-probe into it)",
                        image
                    ),
                    _ => m,
                }));
            }
            Err(_) => {
                // The node may have gone away while we waited: that is the better answer.
                if let Ok(Err(e)) =
                    tokio::time::timeout(Duration::from_secs(3), check_node(client, &req.node))
                        .await
                {
                    return Err(e);
                }
                if call.last_state.is_empty() || call.last_state == "Running" {
                    return Err(timeout());
                }
                return Err(RunError::ProbeNotStarted {
                    node: req.node.clone(),
                    reason: format!("still {} after {secs} s", call.last_state),
                });
            }
        };
        if let Some(p) = &payload {
            delivery_failure(&out, image, p)?;
        }
        finish(
            &req.node,
            out,
            self.max_stdout,
            timings,
            format!("{}/{}", self.namespace, probe.name),
        )
    }
}

/// Whether a failed attempt says the base image cannot host node-probe (a missing tool, no glibc, no
/// `sleep`, or the image no longer on the node), so that another of the node's images may work.
fn image_unusable(e: &RunError, image: &str) -> bool {
    match e {
        RunError::Exec(m) => m.contains(image) && m.contains("copy delivery"),
        RunError::ProbeNotStarted { reason, .. } => {
            !reason.starts_with("still ")
                && (reason.contains("executable file not found")
                    || reason.contains("ErrImageNeverPull")
                    || reason.contains("ErrImagePull")
                    || reason.contains("ImagePullBackOff")
                    || reason.contains("CreateContainerError")
                    || reason.contains("StartError"))
        }
        _ => false,
    }
}

/// The first clause of an error, for the list of images tried.
fn short_reason(e: &RunError) -> String {
    let s = e.to_string();
    let s = s.split(" (").next().unwrap_or(&s);
    s.chars().take(160).collect()
}

/// Why the probe container did not start, naming the image (the runtime's message often does not) and, when
/// the image lacks the `sleep` the container idles with, what an image needs.
fn not_started(reason: &str, image: &str, copy: bool) -> String {
    if reason.contains("\"sleep\": executable file not found") {
        let needs = if copy {
            "a copy-delivery base image needs sh, sleep, head, tar, sha256sum, mktemp, rm and glibc"
        } else {
            "the probe image needs node-probe and sleep (deploy/probe-image)"
        };
        return format!(
            "{reason}; the image {image} has no `sleep`, which the probe container idles with: {needs}"
        );
    }
    if reason.contains(image) {
        reason.to_string()
    } else {
        format!("{reason} (image {image})")
    }
}

/// A copy-delivery failure the in-container script reported, as a clear error.
fn delivery_failure(out: &ExecOutput, image: &str, payload: &Payload) -> Result<(), RunError> {
    // The script always prints (node-probe its document, the script its failure marker). Nothing at all with
    // status Success means the script never ran: containerd 1.6 reports an exec whose `sh` is missing as
    // Success when stdin is streaming (seen on the real-node testbed), instead of "executable file not found".
    if out.exit_code == 0 && out.stdout.is_empty() && out.stderr_tail.trim().is_empty() {
        return Err(RunError::Exec(format!(
            "{} (the exec reported success but nothing ran)",
            Failure::MissingTool("sh".into()).explain(image, payload)
        )));
    }
    match Failure::from_exit(out.exit_code, &out.stderr_tail) {
        None => Ok(()),
        Some(f) => Err(RunError::Exec(f.explain(image, payload))),
    }
}

impl Runner for PodRunner {
    fn run<'a>(
        &'a self,
        req: ProbeRequest,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> RunFuture<'a> {
        Box::pin(async move {
            let mut call = CallState::default();
            let result = {
                let work = self.work(&req, &progress, &mut call);
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(RunError::Cancelled),
                    r = work => r,
                }
            };
            progress(Phase::CleaningUp);
            let t = Instant::now();
            let deleted = match call.guard.take() {
                Some(g) => g.delete().await,
                None => true,
            };
            let cleanup = timing(Phase::CleaningUp, t);
            progress(Phase::Done);
            if let Err(e) = &result {
                tracing::info!(node = %req.node, tool = %req.tool, error = %e, deleted, "probe call failed");
            }
            result.map(|mut out| {
                out.timings.push(cleanup);
                out
            })
        })
    }

    fn shutdown<'a>(&'a self) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.tracker.close();
            if tokio::time::timeout(Duration::from_secs(30), self.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("some probe pod deletes did not finish within 30 s");
            }
        })
    }
}
