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
    DeleteGuard, WaitError, api_error, api_error_in, check_node, classify_pod, finish, judge_node,
    timing, wait_until,
};
use super::node_image::NodeImages;
use super::pod::{self, PROBE_CONTAINER, ProbeCall, ProbePodOptions};
use super::pod_batch::{self, PodBatch};
use super::pod_watch::Subscription;
use super::runner::{
    Batch, ImageNeed, Phase, PhaseTiming, ProbeOutput, ProbeRequest, ProgressSink, RunError,
    RunFuture, Runner,
};
use super::stop_first::{StopFirst, StopOutcome};
use super::trust::TrustPolicy;
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
    /// Runs that need NVIDIA's DCGM ([`ImageNeed::Dcgm`]): the trusted sources and `--dcgm-image`.
    pub(crate) dcgm: Option<DcgmBase>,
    /// Runs that need AMD's RVS ([`ImageNeed::Rvs`]): the trusted sources (a test runner mirror). None: no
    /// RVS run is started (a runner set up without them, as in unit tests).
    pub(crate) rvs_trust: Option<Arc<TrustPolicy>>,
}

/// Where a run that needs DCGM gets its image: [`super::node_image::dcgm::choose`].
#[derive(Clone)]
pub struct DcgmBase {
    pub trust: Arc<TrustPolicy>,
    /// `--dcgm-image`, a trusted digest reference (checked at start).
    pub image: Option<String>,
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
            dcgm: None,
            rvs_trust: None,
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
        let client = self
            .clients
            .get(req.context.as_deref())
            .await
            .map_err(|e| RunError::Other(e.to_string()))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        progress(Phase::StartingProbe);
        let t = Instant::now();
        let mut cx = Attempts {
            req,
            progress,
            client,
            pods,
            payload: None,
            deadline,
            batch: pod_batch::of(&req.batch),
        };
        // Image delivery of one node: the pod does not depend on the node, so it is created while the node
        // is read (one round trip less before the exec); the node's verdict still comes first.
        if cx.batch.is_none()
            && self.copy.is_none()
            && self.node_images.is_none()
            && req.image == ImageNeed::Any
        {
            let configured = super::node_image::Candidate {
                image: self.opts.image.clone(),
                label: self.opts.image.clone(),
                rank: 0,
                pull: false,
            };
            let node = async {
                let n = self
                    .clients
                    .reads
                    .node(req.context.as_deref(), &cx.client, &req.node)
                    .await;
                judge_node(&req.node, n).map(|_| ())
            };
            return self
                .attempt_beside(&cx, call, &configured, t, Some(Box::pin(node)))
                .await;
        }
        // Node first: a missing or NotReady node would otherwise look like a pod stuck in Pending. A batch
        // reads all of its nodes with one list.
        let node = timeout_at(deadline, async {
            match cx.batch {
                Some(b) => b.ready_node(&cx.client, &req.node).await,
                None => {
                    let n = self
                        .clients
                        .reads
                        .node(req.context.as_deref(), &cx.client, &req.node)
                        .await;
                    judge_node(&req.node, n)
                }
            }
        })
        .await
        .map_err(|_| cx.timeout())??;
        // Copy delivery: the build for the node's architecture, before any pod exists (no build, no pod).
        if let Some(bins) = &self.copy {
            let arch = super::delivery::node_arch(&node);
            let p = timeout_at(deadline, bins.payload(&req.node, arch))
                .await
                .map_err(|_| cx.timeout())?
                .map_err(|e| RunError::Other(e.to_string()))?;
            // A far API server: the first calls after the launcher starts wait for the compressed form
            // (bounded) rather than stream the plain bytes over the slow link.
            if bins.compress && p.gzip().is_none() {
                let _ = timeout_at(deadline, p.compressed(super::delivery::GZIP_WAIT)).await;
            }
            cx.payload = Some(p);
        }
        // DCGM's diagnostic: node-probe copied into NVIDIA's DCGM image, the node's own or the configured
        // one pulled by digest; one try (there is no other image with dcgmi to fall back on). Where there is
        // none (image delivery, a node without it and no --dcgm-image), it runs as any probe does and
        // node-probe answers that its image has no dcgmi, naming what to set.
        if req.image == ImageNeed::Dcgm
            && let Some(c) = self.dcgm_base(&req.node, &node, cx.payload.is_some())
        {
            tracing::info!(node = %req.node, image = %c.image, name = %c.label, pull = c.pull, "DCGM image for the diagnostic");
            return match self.attempt(&cx, call, &c, t).await {
                Err(e) if c.pull && pull_failed(&e) => Err(RunError::Other(format!(
                    "node {} could not pull the DCGM image {} ({}): an air-gapped node needs a mirror of NVIDIA's \
                     DCGM image it can reach, set with --dcgm-image REGISTRY/PATH/dcgm@sha256:DIGEST (and \
                     --trust-image REGISTRY/PATH/)",
                    req.node,
                    c.image,
                    short_reason(&e)
                ))),
                r => r,
            };
        }
        // RVS's diagnostic: node-probe copied into AMD's test runner image as the node lists it by digest;
        // one try, nothing pulled. Without one (or with image delivery, whose probe image has no rvs) the
        // answer is "not available" and no pod is created: unlike DCGM there is no image to configure.
        if req.image == ImageNeed::Rvs {
            let c = self.rvs_base(&req.node, &node, cx.payload.is_some())?;
            tracing::info!(node = %req.node, image = %c.image, name = %c.label, "AMD test runner image for the diagnostic");
            return self.attempt(&cx, call, &c, t).await;
        }
        // Default delivery: a base image the node already has; an image that turns out unusable is
        // remembered and the next one is tried (a fresh pod each), within the call's deadline.
        let Some(images) = &self.node_images else {
            let configured = super::node_image::Candidate {
                image: self.opts.image.clone(),
                label: self.opts.image.clone(),
                rank: 0,
                pull: false,
            };
            return self.attempt(&cx, call, &configured, t).await;
        };
        let mut tries = 0;
        let mut started = t;
        loop {
            let needs = cx.payload.as_ref().and_then(|p| p.glibc);
            let c = images
                .choose_for(&req.node, &node, needs)
                .map_err(RunError::Other)?;
            tries += 1;
            if c.pull {
                tracing::info!(node = %req.node, image = %c.image, name = %c.label, "default delivery: the node lists no usable base; pulling the fallback base by digest");
            } else {
                tracing::info!(node = %req.node, image = %c.image, name = %c.label, "default delivery: trusted base image from the node, by digest");
            }
            match self.attempt(&cx, call, &c, started).await {
                Ok(out) => {
                    images.worked(&req.node, &c);
                    return Ok(out);
                }
                // A pull that fails (no route to the registry, an air gap) is the answer at once: the
                // node has nothing else to try, and waiting would only end in the call's timeout.
                Err(e) if c.pull && pull_failed(&e) => {
                    images.failed(&req.node, &c, &short_reason(&e));
                    return Err(fallback_pull_failed(&req.node, &node, &e));
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

    /// The DCGM image of a run that needs DCGM on `node`, where node-probe is copied in (`copy`: a probe
    /// image has no dcgmi) and the node lists one or `--dcgm-image` names one; None: run as any probe.
    fn dcgm_base(
        &self,
        node_name: &str,
        node: &k8s_openapi::api::core::v1::Node,
        copy: bool,
    ) -> Option<super::node_image::Candidate> {
        let d = self.dcgm.as_ref().filter(|_| copy)?;
        match super::node_image::dcgm::choose(node_name, node, &d.trust, d.image.as_deref()) {
            Ok(c) => Some(c),
            Err(why) => {
                tracing::info!(node = %node_name, "{why}");
                None
            }
        }
    }

    /// AMD's test runner image of a run that needs RVS on `node`; Err: why the run is not available (no pod).
    fn rvs_base(
        &self,
        node_name: &str,
        node: &k8s_openapi::api::core::v1::Node,
        copy: bool,
    ) -> Result<super::node_image::Candidate, RunError> {
        let Some(trust) = self.rvs_trust.as_ref() else {
            return Err(RunError::Other(
                "not available: this launcher runs no RVS diagnostic (no trust policy for AMD's test runner \
                 image); no pod was started"
                    .into(),
            ));
        };
        if !copy {
            return Err(RunError::Other(format!(
                "not available: the probe image (--probe-image) has no AMD ROCm Validation Suite, and the \
                 diagnostic runs node-probe copied into AMD's test runner image (rocm/test-runner) on node {}: \
                 use the default or copy delivery (--probe-delivery); no pod was started",
                node_name
            )));
        }
        super::node_image::rvs::choose(node_name, node, trust).map_err(RunError::Other)
    }

    /// One probe pod with `image`: create, exec node-probe as soon as the container takes it, parse.
    /// `started`: when this attempt's starting phase began.
    async fn attempt(
        &self,
        cx: &Attempts<'_>,
        call: &mut CallState,
        base: &super::node_image::Candidate,
        started: Instant,
    ) -> Result<ProbeOutput, RunError> {
        self.attempt_beside(cx, call, base, started, None).await
    }

    /// [`Self::attempt`] with the node's check (`node`) run beside the create: both are awaited before
    /// anything else, so a node that is missing or not Ready answers as such and the pod, created by then,
    /// is deleted as on every path (a create never left in flight, whose pod a delete could miss).
    async fn attempt_beside(
        &self,
        cx: &Attempts<'_>,
        call: &mut CallState,
        base: &super::node_image::Candidate,
        started: Instant,
        node: Option<NodeCheck<'_>>,
    ) -> Result<ProbeOutput, RunError> {
        let image = base.image.as_str();
        let probe = ProbeCall::new(&self.namespace, &cx.req.node, &cx.req.tool);
        let mut spec = self.pod_spec(&probe, image, cx.payload.is_some(), base.pull);
        if cx.req.image.diagnostic_pid_file().is_some() {
            // A diagnostic runs for minutes: the kubelet ends its pod at the run's own deadline, not earlier.
            pod::apply_dcgm(&mut spec, cx.req.timeout);
        } else if cx.req.lines.is_some() {
            // So does a window (a streamed run) that outlasts the pod's deadline. Other runs keep the
            // deadline the person set (`--probe-deadline`), shorter than the run's or not.
            pod::lengthen(&mut spec, cx.req.timeout);
        }
        // In a batch, the pod's waiter subscribes to the batch's watch before the create is sent.
        let sub = cx.batch.map(|b| {
            pod::apply_batch(&mut spec, &b.id);
            b.watch(&cx.client).subscribe(&probe.name)
        });
        let mut guard = DeleteGuard::new(
            cx.pods.clone(),
            probe.name.clone(),
            self.tracker.clone(),
            self.delete_timeout,
        );
        if let Some(pid_file) = cx.req.image.diagnostic_pid_file() {
            guard.stop_first(StopFirst {
                pid_file,
                exec: self.exec.clone(),
                client: cx.client.clone(),
                namespace: self.namespace.clone(),
                pod: probe.name.clone(),
                container: PROBE_CONTAINER.into(),
            });
        }
        call.guard = Some(guard);
        tracing::info!(pod = %probe.name, node = %cx.req.node, tool = %cx.req.tool, "creating probe pod");
        let created = match node {
            None => self.create(cx, spec).await?,
            Some(node) => {
                let node = async {
                    timeout_at(cx.deadline, node)
                        .await
                        .map_err(|_| cx.timeout())?
                };
                let (node, created) = tokio::join!(node, self.create(cx, spec));
                node?;
                created?
            }
        };
        let mut timings = vec![timing(Phase::StartingProbe, started)];
        let out = self
            .exec_when_started(cx, call, &probe.name, (created, sub), image, &mut timings)
            .await?;
        if let Some(g) = call.guard.as_mut() {
            g.probe_ended();
        }
        if let Some(p) = &cx.payload {
            delivery_failure(&out, image, p)?;
        }
        finish(
            &cx.req.node,
            out,
            self.max_stdout,
            cx.req.lines.as_ref(),
            timings,
            format!("{}/{}", self.namespace, probe.name),
        )
    }

    /// The probe pod's spec with `image`; `copy`: node-probe is streamed in (copy delivery); `pull`: the
    /// default delivery's fallback base, which the node may pull.
    fn pod_spec(&self, probe: &ProbeCall, image: &str, copy: bool, pull: bool) -> Pod {
        let mut opts = self.opts.clone();
        image.clone_into(&mut opts.image);
        if self.node_images.is_some() {
            // A base the node already has, by the digest it lists: never pulled (a pull could only fetch
            // what the node does not have, which is not what was judged). The fallback base is pulled by
            // its digest, which names its content wherever it comes from.
            opts.image_pull_policy = if pull { "IfNotPresent" } else { "Never" }.into();
        }
        let mut spec = pod::probe_pod(probe, &opts);
        if copy {
            pod::apply_copy_delivery(&mut spec);
        }
        spec
    }

    /// Create the probe pod. None: it was created by a request the client retried (the pod is ours).
    async fn create(&self, cx: &Attempts<'_>, mut spec: Pod) -> Result<Option<Pod>, RunError> {
        if self.no_priority.load(std::sync::atomic::Ordering::Relaxed) {
            pod::without_priority(&mut spec);
        }
        let mut result = timeout_at(cx.deadline, cx.pods.create(&PostParams::default(), &spec))
            .await
            .map_err(|_| cx.timeout())?;
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
            result = timeout_at(cx.deadline, cx.pods.create(&PostParams::default(), &spec))
                .await
                .map_err(|_| cx.timeout())?;
        }
        match result {
            Ok(p) => Ok(Some(p)),
            // The name is unique to this call: AlreadyExists means the client retried a create that had
            // reached the server (429/503/504 retries), so the pod is ours.
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(None),
            Err(kube::Error::Api(s)) if s.is_not_found() => Err(RunError::Other(format!(
                "create probe pod: namespace {} not found (apply deploy/00-namespace.yaml or pass --namespace)",
                self.namespace
            ))),
            Err(e) => Err(api_error_in(
                &format!("create probe pod in namespace {}", self.namespace),
                Some(&self.namespace),
                e,
            )),
        }
    }

    /// Exec node-probe as soon as the container takes it (early_exec.rs), watching the pod meanwhile for
    /// reasons it never will run: with a watch of its own, or through the batch's (`sub`). The waiting and
    /// probing phases' timings are added to `timings`.
    async fn exec_when_started(
        &self,
        cx: &Attempts<'_>,
        call: &mut CallState,
        pod_name: &str,
        (created, sub): (Option<Pod>, Option<Subscription>),
        image: &str,
        timings: &mut Vec<PhaseTiming>,
    ) -> Result<ExecOutput, RunError> {
        (cx.progress)(Phase::WaitingForProbe);
        let t = Instant::now();
        let last = &mut call.last_state;
        let watch = async move {
            match sub {
                Some(mut sub) => {
                    if let Some(p) = &created {
                        sub.created(p);
                    }
                    sub.running(last).await
                }
                None => {
                    wait_until(
                        &cx.pods,
                        pod_name,
                        created,
                        |p| classify_pod(p, PROBE_CONTAINER),
                        last,
                    )
                    .await
                }
            }
        };
        let attempt = || match &cx.payload {
            None => self.exec.exec_run(
                cx.client.clone(),
                &self.namespace,
                pod_name,
                PROBE_CONTAINER,
                self.argv(cx.req),
                cx.req.lines.as_ref(),
            ),
            Some(p) => self.exec.exec_stdin(
                cx.client.clone(),
                &self.namespace,
                pod_name,
                PROBE_CONTAINER,
                p.argv(self.probe_args(cx.req)),
                p.clone(),
                cx.req.lines.clone(),
            ),
        };
        match timeout_at(cx.deadline, exec_when_startable(watch, attempt)).await {
            Ok(Ok(e)) => {
                // Waiting: until the attempt that worked began; probing: that attempt.
                let waited = e.attempt_started.into_std().saturating_duration_since(t);
                timings.push(PhaseTiming {
                    phase: Phase::WaitingForProbe,
                    millis: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
                (cx.progress)(Phase::Probing);
                tracing::debug!(
                    attempts = e.attempts,
                    "exec attempts until the container took it"
                );
                timings.push(timing(Phase::Probing, e.attempt_started.into_std()));
                Ok(e.output)
            }
            Ok(Err(e)) => Err(never_ran(cx, e, image)),
            Err(_) => Err(timed_out(cx, &call.last_state).await),
        }
    }
}

/// A node's readiness check run beside the probe pod's create.
type NodeCheck<'a> = Pin<Box<dyn std::future::Future<Output = Result<(), RunError>> + Send + 'a>>;

/// What one call's attempts share: the request, the cluster it runs in, what copy delivery streams in, and
/// the call's deadline.
struct Attempts<'a> {
    req: &'a ProbeRequest,
    progress: &'a ProgressSink,
    client: kube::Client,
    pods: Api<Pod>,
    /// Copy delivery: the node-probe build for the node's architecture.
    payload: Option<Arc<Payload>>,
    deadline: tokio::time::Instant,
    /// The many-node call this run is part of (one watch, one node list).
    batch: Option<&'a PodBatch>,
}

impl Attempts<'_> {
    fn timeout(&self) -> RunError {
        RunError::Timeout {
            node: self.req.node.clone(),
            secs: self.req.timeout.as_secs(),
        }
    }
}

/// Why node-probe never ran in the pod with `image`: the pod failed to start, the API refused, or the exec
/// failed (naming what the image lacks where the runtime says an executable is missing).
fn never_ran(cx: &Attempts<'_>, e: EarlyError, image: &str) -> RunError {
    match e {
        EarlyError::Wait(WaitError::NotStarted(reason)) => RunError::ProbeNotStarted {
            node: cx.req.node.clone(),
            reason: not_started(&reason, image, cx.payload.is_some()),
        },
        EarlyError::Wait(WaitError::Api(e)) => api_error("watch probe pod", e),
        EarlyError::Exec(ExecError::Forbidden(m)) => RunError::Forbidden(m),
        EarlyError::Exec(ExecError::Failed(m) | ExecError::NotRunning(m)) => {
            // The runtime's "executable file not found": node-probe (image) or sh (copy) is not there.
            let missing = m.contains("executable file not found");
            RunError::Exec(match &cx.payload {
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
            })
        }
    }
}

/// The deadline passed while waiting for the pod or probing: the node gone away meanwhile is the better
/// answer, then the pod's last state if it never ran.
async fn timed_out(cx: &Attempts<'_>, last_state: &str) -> RunError {
    if let Ok(Err(e)) =
        tokio::time::timeout(Duration::from_secs(3), check_node(&cx.client, &cx.req.node)).await
    {
        return e;
    }
    if last_state.is_empty() || last_state == "Running" {
        return cx.timeout();
    }
    RunError::ProbeNotStarted {
        node: cx.req.node.clone(),
        reason: format!("still {last_state} after {} s", cx.req.timeout.as_secs()),
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

/// Whether the pod never started because its image could not be pulled.
fn pull_failed(e: &RunError) -> bool {
    matches!(e, RunError::ProbeNotStarted { reason, .. }
        if reason.contains("ErrImagePull") || reason.contains("ImagePullBackOff"))
}

/// The fallback base could not be pulled: say what was pulled from where, why it failed, and the flags.
fn fallback_pull_failed(
    node_name: &str,
    node: &k8s_openapi::api::core::v1::Node,
    e: &RunError,
) -> RunError {
    let f = super::fallback_base::for_node(node);
    let why = match e {
        RunError::ProbeNotStarted { reason, .. } => reason.chars().take(300).collect::<String>(),
        e => e.to_string(),
    };
    // The fix before the kubelet's words: messages are cut at a bound, and the registry's error is long.
    RunError::ProbeNotStarted {
        node: node_name.to_string(),
        reason: format!(
            "the node lists no trusted base image node-probe can be copied into, and pulling the fallback base \
             {} ({}) from {} failed: the node cannot reach that registry (an air gap, a proxy, or an outage). \
             Pass --probe-image IMAGE@sha256:DIGEST (the probe image or a glibc base in a registry the node \
             reaches; --trust-image REGISTRY/NAMESPACE/ for your own bases), or pre-pull a trusted base on the \
             node; --no-pull never pulls. The kubelet said: {why}",
            f.label, f.image, f.registry
        ),
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
            "a copy-delivery base image needs sh, sleep, head, tee, sha256sum, wc, chmod, mktemp, rm and glibc"
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
    fn batch(&self, context: Option<&str>, nodes: &[String]) -> Batch {
        Batch::new(
            Arc::new(PodBatch::new(
                &self.namespace,
                nodes,
                self.copy.is_some() || self.node_images.is_some(),
            )),
            Some(self.clients.pressure(context)),
        )
    }

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
            let (deleted, stopped) = match call.guard.take() {
                Some(g) => g.delete_after_stop().await,
                None => (true, None),
            };
            let result = match (result, stopped) {
                (Err(RunError::Cancelled), Some(StopOutcome::Unconfirmed(why))) => {
                    Err(RunError::CancelledUnstopped {
                        node: req.node.clone(),
                        why,
                    })
                }
                (r, _) => r,
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
            // Past a DCGM run's orderly stop (stop_first.rs: up to 45 s) and its delete.
            if tokio::time::timeout(Duration::from_secs(60), self.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("some probe pod deletes did not finish within 60 s");
            }
        })
    }
}
