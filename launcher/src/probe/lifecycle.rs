//! Pieces of a probe call shared by the pod and ephemeral runners: node check, waiting by watch with
//! fail-fast classification, the tracked delete, error mapping and turning exec output into a result.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use gpu_diag::contract::{ContractError, parse_document, parse_streamed};
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, WatchEvent, WatchParams};
use tokio_util::task::TaskTracker;

use super::exec::ExecOutput;
use super::runner::{Phase, PhaseTiming, ProbeOutput, RunError};
use super::stop_first::{StopFirst, StopOutcome};

/// Container waiting reasons that will not resolve by waiting (with `restartPolicy: Never`).
const FAIL_FAST: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerError",
    "CreateContainerConfigError",
    "RunContainerError",
    "CrashLoopBackOff",
];

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn timing(phase: Phase, since: Instant) -> PhaseTiming {
    PhaseTiming {
        phase,
        millis: millis(since.elapsed()),
    }
}

/// Map a kube error of `action` to what the caller can act on.
pub fn api_error(action: &str, e: kube::Error) -> RunError {
    api_error_in(action, None, e)
}

/// [`api_error`] for a write into `namespace`: an admission denial (Pod Security) names that namespace,
/// which for an ephemeral container is the target pod's, not the probe namespace.
pub fn api_error_in(action: &str, namespace: Option<&str>, e: kube::Error) -> RunError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() && s.message.contains("PodSecurity") => {
            let ns = namespace.unwrap_or("the probe namespace");
            RunError::PolicyDenied(format!(
                "{action}: {}\nhint: Pod Security admission of namespace {ns} forbids privileged pods; label it \
                 `kubectl label namespace {ns} pod-security.kubernetes.io/enforce=privileged --overwrite` \
                 (deploy/00-namespace.yaml does this for the probe namespace), or probe from a namespace that \
                 allows it",
                s.message
            ))
        }
        // RBAC denials read `User "x" cannot create resource "pods" ...`.
        kube::Error::Api(s) if s.is_forbidden() => RunError::Forbidden(format!(
            "{action}: {} (see deploy/rbac.yaml for the roles the launcher needs)",
            s.message
        )),
        kube::Error::Api(s) => RunError::Other(format!("{action}: {} ({})", s.message, s.code)),
        e => RunError::Other(format!("{action}: {e}")),
    }
}

/// The node must exist and be Ready before a probe can run there: say so instead of waiting.
pub async fn check_node(client: &Client, node: &str) -> Result<(), RunError> {
    ready_node(client, node).await.map(|_| ())
}

/// [`check_node`] that also gives back the node it read (its architecture picks copy delivery's binary).
pub async fn ready_node(client: &Client, node: &str) -> Result<Node, RunError> {
    let nodes: Api<Node> = Api::all(client.clone());
    judge_node(node, nodes.get_opt(node).await)
}

/// [`ready_node`]'s verdict on a node already read.
pub fn judge_node(node: &str, read: Result<Option<Node>, kube::Error>) -> Result<Node, RunError> {
    let n = read
        .map_err(|e| api_error(&format!("get node {node}"), e))?
        .ok_or_else(|| RunError::NodeNotFound(node.to_string()))?;
    match node_not_ready(&n) {
        None => Ok(n),
        Some(reason) => Err(RunError::NodeNotReady {
            node: node.into(),
            reason,
        }),
    }
}

/// Why a node is not Ready, or None when it is.
pub fn node_not_ready(n: &Node) -> Option<String> {
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!(
            "Ready={}{}{}",
            c.status,
            c.reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default(),
            c.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        None => Some("the node reports no Ready condition".into()),
    }
}

/// Where a starting probe stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Running,
    /// Will never run: the reason.
    Failed(String),
    /// Still starting: a short description of the state.
    Waiting(String),
}

/// A probe pod: Failed/Succeeded/being deleted fail; otherwise the probe container decides.
pub fn classify_pod(p: &Pod, container: &str) -> Progress {
    if p.metadata.deletion_timestamp.is_some() {
        return Progress::Failed("the probe pod is being deleted".into());
    }
    let Some(st) = p.status.as_ref() else {
        return Progress::Waiting("Pending".into());
    };
    let phase = st.phase.as_deref().unwrap_or("Pending");
    if matches!(phase, "Failed" | "Succeeded") {
        return Progress::Failed(format!(
            "pod phase {phase}{}{}",
            st.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            st.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    let cs = st
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == container);
    classify_container(cs, phase)
}

/// One container's status (also used for ephemeral containers).
pub fn classify_container(cs: Option<&ContainerStatus>, pod_phase: &str) -> Progress {
    let Some(state) = cs.and_then(|c| c.state.as_ref()) else {
        return Progress::Waiting(pod_phase.to_string());
    };
    if state.running.is_some() {
        return Progress::Running;
    }
    if let Some(t) = &state.terminated {
        return Progress::Failed(format!(
            "the probe container terminated{} with exit code {}{}",
            t.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            t.exit_code,
            t.message
                .as_deref()
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        ));
    }
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        let message = w.message.as_deref().unwrap_or("");
        if FAIL_FAST.contains(&reason) {
            let hint = if reason.contains("Image") {
                " (check --probe-image and that the node can pull it)"
            } else {
                ""
            };
            return Progress::Failed(if message.is_empty() {
                format!("{reason}{hint}")
            } else {
                format!("{reason}: {message}{hint}")
            });
        }
        return Progress::Waiting(format!("{pod_phase} ({reason})"));
    }
    Progress::Waiting(pod_phase.to_string())
}

pub enum WaitError {
    NotStarted(String),
    Api(kube::Error),
}

/// Wait by watch until `classify` says Running or Failed. `initial` is the object the create returned
/// (None: read it first). `last` keeps the latest Waiting description for the timeout message. No timeout
/// here: callers bound it.
pub async fn wait_until(
    pods: &Api<Pod>,
    name: &str,
    initial: Option<Pod>,
    classify: impl Fn(&Pod) -> Progress,
    last: &mut String,
) -> Result<(), WaitError> {
    let judge = |p: &Pod, last: &mut String| -> Option<Result<(), WaitError>> {
        match classify(p) {
            Progress::Running => {
                "Running".clone_into(last);
                Some(Ok(()))
            }
            Progress::Failed(r) => Some(Err(WaitError::NotStarted(r))),
            Progress::Waiting(s) => {
                *last = s;
                None
            }
        }
    };
    let mut rv: Option<String> = None;
    if let Some(p) = initial {
        if let Some(done) = judge(&p, last) {
            return done;
        }
        rv = p.metadata.resource_version.clone();
    }
    loop {
        let version = match rv.take() {
            Some(v) => v,
            None => {
                let p = pods
                    .get_opt(name)
                    .await
                    .map_err(WaitError::Api)?
                    .ok_or_else(|| {
                        WaitError::NotStarted(format!("pod {name} disappeared before it started"))
                    })?;
                if let Some(done) = judge(&p, last) {
                    return done;
                }
                p.metadata.resource_version.unwrap_or_else(|| "0".into())
            }
        };
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let mut stream = pods
            .watch(&wp, &version)
            .await
            .map_err(WaitError::Api)?
            .boxed();
        let mut next = Some(version);
        let mut events = 0usize;
        while let Some(ev) = stream.try_next().await.map_err(WaitError::Api)? {
            events += 1;
            match ev {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    if let Some(done) = judge(&p, last) {
                        return done;
                    }
                    next = p.metadata.resource_version.clone();
                }
                WatchEvent::Deleted(_) => {
                    return Err(WaitError::NotStarted(format!(
                        "pod {name} was deleted before it started"
                    )));
                }
                WatchEvent::Bookmark(b) => next = Some(b.metadata.resource_version),
                // 410 Gone: our resourceVersion is too old; read the pod again and re-watch.
                WatchEvent::Error(s) if s.code == 410 => {
                    next = None;
                    break;
                }
                WatchEvent::Error(s) => return Err(WaitError::Api(kube::Error::Api(s))),
            }
        }
        if events == 0 {
            // A watch that closes at once, repeatedly, must not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rv = next;
    }
}

/// Deletes a probe pod on every path. Armed before the create is sent (the name is client-generated), it
/// deletes when told to, or from `Drop` when the call's future is dropped (MCP cancellation, shutdown).
/// The delete runs as a task of the runner's tracker so `Runner::shutdown` can await it.
pub struct DeleteGuard {
    pods: Api<Pod>,
    name: String,
    tracker: TaskTracker,
    timeout: Duration,
    armed: bool,
    /// A run to stop in order before the delete while node-probe may still run ([`super::stop_first`]).
    stop: Option<StopFirst>,
}

impl DeleteGuard {
    pub fn new(pods: Api<Pod>, name: String, tracker: TaskTracker, timeout: Duration) -> Self {
        DeleteGuard {
            pods,
            name,
            tracker,
            timeout,
            armed: true,
            stop: None,
        }
    }

    /// Stop node-probe's run through `stop` before the pod is deleted, until [`Self::probe_ended`].
    pub fn stop_first(&mut self, stop: StopFirst) {
        self.stop = Some(stop);
    }

    /// node-probe's exec returned: there is nothing left to stop.
    pub fn probe_ended(&mut self) {
        self.stop = None;
    }

    fn spawn(&mut self) -> Option<tokio::task::JoinHandle<(bool, Option<StopOutcome>)>> {
        if !std::mem::take(&mut self.armed) {
            return None;
        }
        let delete = delete_pod(self.pods.clone(), self.name.clone(), self.timeout);
        let stop = self.stop.take();
        let name = self.name.clone();
        let fut = async move {
            let stopped = match stop {
                Some(s) => {
                    let o = s.stop().await;
                    match &o {
                        StopOutcome::Unconfirmed(why) => {
                            tracing::warn!(pod = %name, "node-probe's run could not be stopped in order before its pod's delete: {why}");
                        }
                        o => {
                            tracing::info!(pod = %name, outcome = ?o, "node-probe's run stopped in order before its pod's delete")
                        }
                    }
                    Some(o)
                }
                None => None,
            };
            (delete.await, stopped)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => Some(rt.spawn(self.tracker.track_future(fut))),
            Err(_) => {
                tracing::error!(pod = %self.name, "no runtime to delete the probe pod; it ends at its activeDeadlineSeconds");
                None
            }
        }
    }

    /// Delete now and wait for the outcome (true: deleted or already gone).
    pub async fn delete(self) -> bool {
        self.delete_after_stop().await.0
    }

    /// [`Self::delete`], and what the stop before it found where there was one.
    pub async fn delete_after_stop(mut self) -> (bool, Option<StopOutcome>) {
        match self.spawn() {
            Some(h) => h.await.unwrap_or((false, None)),
            None => (true, None),
        }
    }
}

impl Drop for DeleteGuard {
    fn drop(&mut self) {
        let _ = self.spawn();
    }
}

/// Delete with grace 0; NotFound counts as deleted. One retry on transient errors.
pub async fn delete_pod(pods: Api<Pod>, name: String, timeout: Duration) -> bool {
    let dp = DeleteParams::default().grace_period(0);
    let mut last = String::new();
    for attempt in 1..=2 {
        match tokio::time::timeout(timeout, pods.delete(&name, &dp)).await {
            Ok(Ok(_)) => {
                tracing::debug!(pod = %name, "probe pod deleted");
                return true;
            }
            Ok(Err(kube::Error::Api(s))) if s.is_not_found() => return true,
            Ok(Err(kube::Error::Api(s))) if s.is_forbidden() => {
                last = format!("forbidden: {}", s.message);
                break;
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {} s", timeout.as_secs()),
        }
        if attempt == 1 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    tracing::warn!(
        pod = %name,
        error = %last,
        "probe pod could not be deleted; it stops at its activeDeadlineSeconds and `k8s-gpu-mcp gc` removes it"
    );
    false
}

/// Exec output -> the call's result: the parsed contract document, or BadOutput with the stderr tail.
pub fn finish(
    node: &str,
    out: ExecOutput,
    max_stdout: usize,
    lines: Option<&super::runner::Lines>,
    timings: Vec<PhaseTiming>,
    ran_in: String,
) -> Result<ProbeOutput, RunError> {
    let parsed = if out.stdout_truncated {
        Err(ContractError::Shape(format!(
            "stdout exceeded the {max_stdout} byte cap and was cut"
        )))
    } else if lines.is_some() {
        parse_streamed(&out.stdout).map(|(_, doc)| doc)
    } else {
        parse_document(&out.stdout)
    };
    match parsed {
        Ok(document) => Ok(ProbeOutput {
            document,
            exit_code: out.exit_code,
            timings,
            ran_in,
        }),
        Err(error) => Err(RunError::BadOutput {
            node: node.into(),
            exit_code: out.exit_code,
            error,
            stderr_tail: out.stderr_tail,
        }),
    }
}
