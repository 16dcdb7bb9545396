//! The Kubernetes runner's settings ([`K8sConfig`], from the CLI flags) and how it is built: [`connect`]
//! reads the kubeconfig and gives the launcher the runner for node tools (a [`PodRunner`] or an
//! [`EphemeralRunner`]) and the [`KubeBackend`] for cluster tools; the probe pods a crashed launcher left are
//! swept in the background at connect.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::cluster::ClusterBackend;
use crate::cluster::backend::KubeBackend;
use crate::cluster::clients::Clients;

use super::ephemeral::{EphemeralRunner, TargetPod};
use super::pod::{self, AccessMode, DriverMode, ProbePodOptions};
use super::pod_runner::PodRunner;
use super::runner::Runner;
use super::{delivery, exec, node_image, sweep, trust};

/// What [`connect`] gives the launcher: the runner for node tools and the backend for cluster tools.
pub type Connected = (Arc<dyn Runner>, Arc<dyn ClusterBackend>);

pub const DEFAULT_NAMESPACE: &str = "gpu-diagnostics";

/// Where node-probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeMode {
    /// A short-lived probe pod on the node (the default).
    #[default]
    Pod,
    /// An ephemeral container in `K8sConfig::target_pod` (see [`super::ephemeral`] for what it cannot see).
    Ephemeral,
}

impl std::str::FromStr for ProbeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pod" => Ok(ProbeMode::Pod),
            "ephemeral" => Ok(ProbeMode::Ephemeral),
            _ => Err(format!("probe mode `{s}`: expected `pod` or `ephemeral`")),
        }
    }
}

/// The launcher's Kubernetes settings (CLI flags).
#[derive(Debug, Clone)]
pub struct K8sConfig {
    /// `--kubeconfig` (default: `$KUBECONFIG`, `~/.kube/config`, then in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// `--context` (default: the kubeconfig's current-context).
    pub context: Option<String>,
    /// `--namespace`: where probe pods run.
    pub namespace: String,
    /// `--probe-image` (default: [`pod::default_image`]).
    pub probe_image: Option<String>,
    /// `--probe-mode`.
    pub probe_mode: ProbeMode,
    /// `--probe-runtime-class` (e.g. `nvidia`); None: host driver library.
    pub runtime_class: Option<String>,
    /// `--probe-deadline`: the probe pod's activeDeadlineSeconds.
    pub active_deadline: Duration,
    /// Host root writable in the probe pod.
    pub operator_mode: bool,
    /// `--target-pod ns/pod[/container]` for ephemeral mode.
    pub target_pod: Option<String>,
    /// node-probe inside the image (default `["node-probe"]`, resolved on the image's PATH).
    pub probe_command: Vec<String>,
    /// Cap on node-probe's stdout.
    pub max_stdout_bytes: usize,
    /// Delete this launcher's leftover probe pods (past their deadline) in the background at connect.
    pub startup_sweep: bool,
    /// `--probe-delivery`: node-probe from the image, or copied in over exec (see [`delivery`]).
    pub probe_delivery: delivery::DeliveryChoice,
    /// `--probe-bin-dir`: node-probe builds per architecture for copy delivery.
    pub probe_bin_dir: Option<PathBuf>,
    /// `--image-pull-secret`: imagePullSecrets of probe pods.
    pub image_pull_secrets: Vec<String>,
    /// `--probe-priority-class` (empty: none).
    pub priority_class: Option<String>,
    /// The sources whose images may run as the default delivery's base (built-in + `--trust-image`).
    pub trust: Arc<trust::TrustPolicy>,
    /// Default delivery: pull the fallback base on a node that lists no usable base (`--no-pull`: never).
    pub pull_fallback: bool,
    /// `--driver-root`: the runs' argv carries it already (`Config::probe_args_suffix`); `check` asks
    /// admission about an argv with it.
    pub driver_root: Option<gpu_diag::command::DriverRoot>,
    /// `--dcgm-image`: NVIDIA's DCGM image (or a mirror) by digest, for DCGM's diagnostic.
    pub dcgm_image: Option<String>,
    /// `serve --http`: every request acts for the call's caller.
    pub impersonate: Option<crate::cluster::clients::Impersonate>,
}

impl Default for K8sConfig {
    fn default() -> Self {
        K8sConfig {
            kubeconfig: None,
            context: None,
            namespace: DEFAULT_NAMESPACE.into(),
            probe_image: None,
            probe_mode: ProbeMode::Pod,
            runtime_class: None,
            active_deadline: Duration::from_secs(120),
            operator_mode: false,
            target_pod: None,
            probe_command: vec!["node-probe".into()],
            max_stdout_bytes: 16 * 1024 * 1024,
            startup_sweep: true,
            probe_delivery: delivery::DeliveryChoice::Auto,
            probe_bin_dir: None,
            image_pull_secrets: Vec::new(),
            priority_class: Some(pod::DEFAULT_PRIORITY_CLASS.into()),
            trust: Arc::default(),
            pull_fallback: true,
            driver_root: None,
            dcgm_image: None,
            impersonate: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes configuration: {0}")]
    Config(String),
    #[error("Kubernetes API: {0}")]
    Api(String),
}

impl K8sConfig {
    pub fn pod_options(&self) -> ProbePodOptions {
        ProbePodOptions {
            image: self.probe_image.clone().unwrap_or_else(pod::default_image),
            image_pull_policy: "IfNotPresent".into(),
            active_deadline_secs: u32::try_from(self.active_deadline.as_secs().max(1))
                .unwrap_or(u32::MAX),
            driver: match &self.runtime_class {
                Some(c) if !c.is_empty() => DriverMode::RuntimeClass(c.clone()),
                _ => DriverMode::HostLibrary,
            },
            access: if self.operator_mode {
                AccessMode::Operator
            } else {
                AccessMode::ReadOnly
            },
            launcher_host: crate::cluster::labels::launcher_host(),
            image_pull_secrets: self.image_pull_secrets.clone(),
            priority_class: self.priority_class.clone().filter(|c| !c.is_empty()),
            on_behalf_of: self.impersonate.as_ref().map(|i| i.user.clone()),
        }
    }
}

/// Build the runner and backend from a set of clients (also what the tests use with a mocked client).
pub fn build(
    cfg: &K8sConfig,
    clients: Arc<Clients>,
    exec: Arc<dyn exec::ProbeExec>,
) -> Result<Connected, Error> {
    let backend: Arc<dyn ClusterBackend> = Arc::new(KubeBackend::new(clients.clone()));
    let copy = cfg
        .probe_delivery
        .resolve(cfg.probe_bin_dir.is_some(), cfg.probe_image.is_some())
        == delivery::Delivery::Copy;
    let runner: Arc<dyn Runner> = match cfg.probe_mode {
        ProbeMode::Pod => {
            let api_server_local = clients.api_server_is_local();
            let mut r = PodRunner::new(clients, cfg.namespace.clone(), cfg.pod_options(), exec);
            r.probe_command = cfg.probe_command.clone();
            r.max_stdout = cfg.max_stdout_bytes;
            if let Some(img) = &cfg.dcgm_image {
                node_image::dcgm::check_configured(img, &cfg.trust).map_err(Error::Config)?;
            }
            r.dcgm = Some(super::pod_runner::DcgmBase {
                trust: cfg.trust.clone(),
                image: cfg.dcgm_image.clone(),
            });
            r.rvs_trust = Some(cfg.trust.clone());
            if copy {
                let mut bins = delivery::ProbeBinaries::from_flag(cfg.probe_bin_dir.as_deref());
                // Beside its API server, the launcher sends node-probe plain: there the transfer is
                // cheaper than decompressing in the container (docs/performance.md).
                // K8S_GPU_MCP_PROBE_GZIP=always|never overrides it (an API server reached through a local
                // tunnel is far away though its address is loopback).
                bins.compress = match std::env::var("K8S_GPU_MCP_PROBE_GZIP").as_deref() {
                    Ok("always") => true,
                    Ok("never") => false,
                    _ => !api_server_local,
                };
                if !bins.compress {
                    tracing::info!(
                        "copy delivery: the API server is on this machine; node-probe is sent uncompressed"
                    );
                }
                if cfg.probe_image.is_none() {
                    // Nothing to publish: copy into an image each node already has.
                    tracing::info!(dir = %bins.dir.display(), "probe delivery: copy into an image from the node");
                    let images = node_image::NodeImages::new(cfg.trust.clone());
                    r.node_images = Some(Arc::new(if cfg.pull_fallback {
                        images
                    } else {
                        images.without_pull()
                    }));
                } else {
                    tracing::info!(dir = %bins.dir.display(), image = %r.opts.image, "probe delivery: copy");
                }
                let bins = Arc::new(bins);
                bins.prewarm();
                r.copy = Some(bins);
            }
            if cfg.startup_sweep {
                startup_sweep(&r);
            }
            Arc::new(r)
        }
        ProbeMode::Ephemeral => {
            // An ephemeral container cannot have a volume of its own to copy into.
            if copy {
                return Err(Error::Config(
                    "--probe-delivery copy works with --probe-mode pod only (an ephemeral container has no \
                     private volume); use --probe-delivery image"
                        .into(),
                ));
            }
            let target: TargetPod = cfg
                .target_pod
                .as_deref()
                .ok_or_else(|| {
                    Error::Config(
                        "--probe-mode ephemeral needs --target-pod ns/pod[/container]".into(),
                    )
                })?
                .parse()
                .map_err(Error::Config)?;
            Arc::new(EphemeralRunner {
                clients,
                target,
                opts: cfg.pod_options(),
                probe_command: cfg.probe_command.clone(),
                exec,
                max_stdout: cfg.max_stdout_bytes,
                live: Default::default(),
            })
        }
    };
    Ok((runner, backend))
}

/// Connect to the cluster: read the kubeconfig, check `--context`, build the runner and the backend, and
/// start the background sweep of leftover probe pods.
pub async fn connect(cfg: &K8sConfig) -> Result<Connected, Error> {
    let clients = Clients::connect_as(
        cfg.kubeconfig.as_deref(),
        cfg.context.as_deref(),
        cfg.impersonate.clone(),
    )
    .await
    .map_err(Error::Config)?;
    let exec = Arc::new(exec::WebsocketExec {
        max_stdout: cfg.max_stdout_bytes,
        ..Default::default()
    });
    build(cfg, Arc::new(clients), exec)
}

/// The sweep at startup runs in the background, tracked so `Runner::shutdown` awaits it; failures only
/// log (the launcher works without it, e.g. without `list` on pods).
fn startup_sweep(r: &PodRunner) {
    let clients = r.clients.clone();
    let ns = r.namespace.clone();
    r.tracker.spawn(async move {
        let client = match clients.get(None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "startup sweep skipped");
                return;
            }
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match sweep::sweep(&pods, &ns, false).await {
            Ok(rep) if !rep.deleted.is_empty() || !rep.failed.is_empty() => {
                tracing::info!(namespace = %ns, deleted = ?rep.deleted, failed = ?rep.failed, "startup sweep of leftover probe pods")
            }
            Ok(_) => tracing::debug!(namespace = %ns, "startup sweep: no leftover probe pods"),
            // An identity that may not list probe pods (a team server's own, which acts only as its
            // people): their leftovers end at their activeDeadlineSeconds, or by `gc` of someone who may.
            Err(kube::Error::Api(s)) if s.code == 403 => tracing::info!(
                namespace = %ns,
                "startup sweep: this identity may not list probe pods here; leftovers end at their deadline"
            ),
            Err(e) => tracing::warn!(namespace = %ns, error = %e, "startup sweep failed"),
        }
        sweep_run_marks(client, "startup").await;
    });
}

/// Lift the marks (`keep_pods_off` taints) of runs that are gone: deadline passed, not a live run of this
/// process. Failures only log: an identity that may not list or patch nodes leaves them to `gc` by one who
/// may, or to the next run on the node, which sweeps it first.
pub async fn sweep_run_marks(client: kube::Client, when: &str) {
    use crate::cluster::run_mark;
    match run_mark::sweep(client, None, &run_mark::live()).await {
        Ok(m) if !m.lifted.is_empty() || !m.failed.is_empty() => tracing::info!(
            lifted = ?m.lifted, failed = ?m.failed, kept = ?m.kept, "{when} sweep of gone runs' marks"
        ),
        Ok(m) => tracing::debug!(kept = ?m.kept, "{when} sweep: no gone runs' marks"),
        Err(e) => tracing::info!(error = %e, "{when} sweep of gone runs' marks skipped"),
    }
}
