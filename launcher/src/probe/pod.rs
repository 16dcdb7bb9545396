//! The probe pod: one base spec plus small appliers, the shape of kubectl debug's node profiles
//! (kubernetes/kubectl `pkg/cmd/debug/debug.go` `generateNodeDebugPod` + `profiles.go`).
//!
//! [`base_pod`] holds everything every probe pod has; each applier changes one aspect:
//! - driver: [`apply_runtime_class`] (GPU Operator / container toolkit injects NVML) or
//!   [`apply_host_driver`] (node-probe loads `libnvidia-ml.so.1` from the host root under `/host`);
//! - access: [`apply_read_only`] or [`apply_operator`];
//! - placement: a pod of its own (the default) or [`to_ephemeral_container`] inside a workload's pod.
//!
//! [`probe_pod`] composes them from [`ProbePodOptions`]; the snapshots under `snapshots/k8s/` show every
//! combination as YAML.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EphemeralContainer, LocalObjectReference, Pod, PodSpec,
    ResourceRequirements, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use crate::cluster::labels::{LABEL_MANAGED_BY, MANAGED_BY, label_value, launcher_host};

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_CALL_ID: &str = "k8s-gpu-mcp.io/call-id";
pub const LABEL_TOOL: &str = "k8s-gpu-mcp.io/tool";
/// The many-node call a probe pod belongs to: that call's one watch selects it (`pod_batch.rs`).
pub const LABEL_BATCH: &str = "k8s-gpu-mcp.io/batch";
pub const ANN_NODE: &str = "k8s-gpu-mcp.io/node";
pub const ANN_TOOL: &str = "k8s-gpu-mcp.io/tool";
pub const ANN_LAUNCHER_VERSION: &str = "k8s-gpu-mcp.io/launcher-version";
pub const ANN_LAUNCHER_HOST: &str = "k8s-gpu-mcp.io/launcher-host";
/// The person a shared server (`serve --http`) ran the probe for.
pub const ANN_ON_BEHALF_OF: &str = "k8s-gpu-mcp.io/on-behalf-of";
pub const ANN_DEADLINE: &str = "k8s-gpu-mcp.io/deadline-seconds";
pub const ANN_ACCESS: &str = "k8s-gpu-mcp.io/access";
pub const ANN_DRIVER: &str = "k8s-gpu-mcp.io/driver";
pub const ANN_DELIVERY: &str = "k8s-gpu-mcp.io/probe-delivery";

/// The label selector that matches every probe pod any k8s-gpu-mcp launcher created.
pub fn probe_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_NAME}=node-probe")
}

/// Name of the probe container (and the exec target).
pub const PROBE_CONTAINER: &str = "probe";
/// Where node-probe reads the host: the root of the host's init (the pod shares the host's PID namespace),
/// told through node-probe's `--host-root` environment variable.
///
/// Why not a hostPath volume of `/`: a pod with any volume waits for the kubelet's volume manager, which
/// checks the mounts every 300 ms, so every probe paid about 0.3 s for it (measured on the real-node
/// testbed). A privileged container can reach the host's root anyway, so the read-only bind was no boundary.
pub const HOST_ROOT: &str = "/proc/1/root";
pub const HOST_ROOT_ENV: &str = "NODE_PROBE_HOST_ROOT";
/// Copy delivery: tells the delivery script (delivery.rs) to extract into a tmpfs of the container's own
/// (in memory, gone with the container) instead of a volume, for the same reason.
pub const DELIVERY_TMPFS_ENV: &str = "NODE_PROBE_TMPFS";

/// Default probe image: the tag that matches this launcher's version, so probe and launcher speak the
/// same contract.
pub fn default_image() -> String {
    format!(
        "ghcr.io/k8s-gpu-mcp/node-probe:v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// How node-probe gets at NVML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverMode {
    /// `runtimeClassName: <class>` + `NVIDIA_VISIBLE_DEVICES=all`, `NVIDIA_DRIVER_CAPABILITIES=utility`:
    /// the NVIDIA container runtime injects the driver libraries (GPU Operator / container toolkit).
    RuntimeClass(String),
    /// No runtime class: node-probe finds `libnvidia-ml.so.1` under `/host` (driver root `/`, or
    /// `/run/nvidia/driver` for the GPU Operator's containerised driver).
    HostLibrary,
}

/// What the probe may change on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// Host root read-only: diagnostics only.
    ReadOnly,
    /// Host root read-write, for operator actions (e.g. writing to sysfs through `/host`).
    Operator,
}

/// Everything that shapes a probe pod besides the call itself.
#[derive(Debug, Clone)]
pub struct ProbePodOptions {
    pub image: String,
    /// `IfNotPresent` for a configured image; `Never` for a base the node already lists by digest.
    pub image_pull_policy: String,
    /// `activeDeadlineSeconds`, also how long the container sleeps.
    pub active_deadline_secs: u32,
    pub driver: DriverMode,
    pub access: AccessMode,
    /// Who started the probe (the launcher's host name), for people who find the pod.
    pub launcher_host: String,
    /// Secrets (in the probe namespace) to pull `image` with.
    pub image_pull_secrets: Vec<String>,
    /// `priorityClassName` (default `system-node-critical`): the kubelet admits critical pods on a node under
    /// disk or memory pressure, exactly when a diagnosis is needed. None: no priority class.
    pub priority_class: Option<String>,
    /// `serve --http`: the person the probe runs for (the user the API server was asked to act as).
    pub on_behalf_of: Option<String>,
}

impl Default for ProbePodOptions {
    fn default() -> Self {
        ProbePodOptions {
            image: default_image(),
            image_pull_policy: "IfNotPresent".into(),
            active_deadline_secs: 120,
            driver: DriverMode::HostLibrary,
            access: AccessMode::ReadOnly,
            launcher_host: launcher_host(),
            image_pull_secrets: Vec::new(),
            priority_class: Some(DEFAULT_PRIORITY_CLASS.into()),
            on_behalf_of: None,
        }
    }
}

/// The built-in class the kubelet's eviction admission lets through under node pressure.
pub const DEFAULT_PRIORITY_CLASS: &str = "system-node-critical";

/// Drop the priority class (a cluster that refuses it).
pub fn without_priority(pod: &mut Pod) {
    if let Some(spec) = pod.spec.as_mut() {
        spec.priority_class_name = None;
        spec.priority = None;
    }
}

/// One probe call: which pod, where, on whose behalf.
#[derive(Debug, Clone)]
pub struct ProbeCall {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub call_id: String,
    /// The MCP tool that asked.
    pub tool: String,
}

impl ProbeCall {
    /// A call with a fresh client-generated name: `gpu-probe-<node>-<call id>`. The name is fixed before the
    /// create is sent, so a create retried by the client (429/503/504) hits AlreadyExists instead of
    /// starting a second pod, and the delete can be armed before the create.
    pub fn new(namespace: &str, node: &str, tool: &str) -> Self {
        let call_id = random_id();
        let name = format!("gpu-probe-{}-{}", name_part(node, 40), call_id);
        ProbeCall {
            name,
            namespace: namespace.to_string(),
            node: node.to_string(),
            call_id,
            tool: tool.to_string(),
        }
    }
}

/// 10 lowercase hex chars, unique per process and very likely across launchers.
pub fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from OS randomness once per process, then incremented per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// `s` reduced to a DNS-label-safe fragment of at most `max` chars (lowercase alnum and `-`).
fn name_part(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .take(max)
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    let trimmed = out.trim_start_matches('-').to_string();
    if trimmed.is_empty() {
        "node".into()
    } else {
        trimmed
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ])
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// The base probe pod, common to every mode (cf. kubectl's `generateNodeDebugPod` + sysadmin profile).
pub fn base_pod(call: &ProbeCall, opts: &ProbePodOptions) -> Pod {
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_NAME.to_string(), "node-probe".to_string()),
        (LABEL_COMPONENT.to_string(), "probe".to_string()),
        (LABEL_CALL_ID.to_string(), label_value(&call.call_id)),
        (LABEL_TOOL.to_string(), label_value(&call.tool)),
    ]);
    // Node names (253 chars) and host names don't fit label values: annotations carry them.
    let mut annotations = BTreeMap::from([
        (ANN_NODE.to_string(), call.node.clone()),
        (ANN_TOOL.to_string(), call.tool.clone()),
        (
            ANN_LAUNCHER_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (ANN_LAUNCHER_HOST.to_string(), opts.launcher_host.clone()),
        (
            ANN_DEADLINE.to_string(),
            opts.active_deadline_secs.to_string(),
        ),
    ]);
    if let Some(p) = &opts.on_behalf_of {
        annotations.insert(ANN_ON_BEHALF_OF.to_string(), p.clone());
    }
    let container = Container {
        name: PROBE_CONTAINER.into(),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(opts.image_pull_policy.clone()),
        // The container only idles; node-probe runs by exec. `sleep` comes from the image's glibc base
        // (deploy/probe-image); it ends by itself at the deadline, like the pod.
        command: Some(vec!["sleep".into(), opts.active_deadline_secs.to_string()]),
        // Small, fixed, and never nvidia.com/gpu: the probe must run even when every GPU is allocated.
        resources: Some(ResourceRequirements {
            requests: Some(quantities("50m", "64Mi")),
            limits: Some(quantities("500m", "256Mi")),
            ..Default::default()
        }),
        // NVML needs /dev/nvidia* and the kernel log needs /dev/kmsg: privileged gives both, and the host's
        // root through /proc/1/root.
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        }),
        env: Some(vec![env(HOST_ROOT_ENV, HOST_ROOT)]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(call.name.clone()),
            namespace: Some(call.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            // Bypasses the scheduler: works on cordoned and tainted nodes and needs no free GPU.
            node_name: Some(call.node.clone()),
            tolerations: Some(vec![Toleration {
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            restart_policy: Some("Never".into()),
            // Bare pods have no TTL: the kubelet kills the pod at the deadline even if the launcher dies.
            active_deadline_seconds: Some(i64::from(opts.active_deadline_secs)),
            termination_grace_period_seconds: Some(0),
            // Host PIDs: NVML's process list and /proc/<pid>/cgroup map GPU processes to pods.
            host_pid: Some(true),
            // Host network: no CNI needed, so the probe starts faster and still runs on a node whose pod
            // network is broken (itself a likely symptom worth diagnosing).
            host_network: Some(true),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            priority_class_name: opts.priority_class.clone(),
            image_pull_secrets: (!opts.image_pull_secrets.is_empty()).then(|| {
                opts.image_pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            containers: vec![container],
            ..Default::default()
        }),
        status: None,
    }
}

fn probe_container(pod: &mut Pod) -> &mut Container {
    let spec = pod.spec.as_mut().expect("probe pod has a spec");
    spec.containers
        .iter_mut()
        .find(|c| c.name == PROBE_CONTAINER)
        .expect("probe pod has the probe container")
}

fn set_annotation(pod: &mut Pod, key: &str, value: &str) {
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

/// Driver applier: the NVIDIA container runtime injects NVML and the devices.
pub fn apply_runtime_class(pod: &mut Pod, class: &str) {
    pod.spec.as_mut().expect("spec").runtime_class_name = Some(class.into());
    let c = probe_container(pod);
    let envs = c.env.get_or_insert_with(Vec::new);
    envs.push(env("NVIDIA_VISIBLE_DEVICES", "all"));
    // utility = NVML + nvidia-smi; no compute libraries are needed to read telemetry.
    envs.push(env("NVIDIA_DRIVER_CAPABILITIES", "utility"));
    set_annotation(pod, ANN_DRIVER, &format!("runtime-class/{class}"));
}

/// Driver applier: no runtime class; node-probe loads the host's `libnvidia-ml.so.1` under the host root
/// (the GPU Operator's driver root `/run/nvidia/driver`, or the distribution's library directories).
pub fn apply_host_driver(pod: &mut Pod) {
    pod.spec.as_mut().expect("spec").runtime_class_name = None;
    set_annotation(pod, ANN_DRIVER, "host-library");
}

/// A run of DCGM's diagnostic (node-probe `dcgm-diag` in NVIDIA's DCGM image): its pod lives until `run`
/// (the run's own deadline, past the launcher's default) and not longer, and has room for dcgmi's embedded
/// host engine and nvvs with the CUDA plugins, which the probe's 256 MiB would kill. Requests stay small:
/// the pod bypasses the scheduler, and the kubelet admits it by requests even on a full node.
pub fn apply_dcgm(pod: &mut Pod, run: std::time::Duration) {
    lengthen(pod, run);
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    for c in spec
        .containers
        .iter_mut()
        .filter(|c| c.name == PROBE_CONTAINER)
    {
        c.resources = Some(ResourceRequirements {
            requests: Some(quantities("100m", "256Mi")),
            limits: Some(quantities("4", "4Gi")),
            ..Default::default()
        });
    }
}

/// A run longer than the pod's own deadline (a diagnostic, a long watch window): the pod lives until the
/// run's deadline, never shorter (the kubelet would end it mid-run), and not longer.
pub fn lengthen(pod: &mut Pod, run: std::time::Duration) {
    let secs = run.as_secs().clamp(1, i64::MAX as u64) as i64;
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    if spec.active_deadline_seconds.is_some_and(|d| d >= secs) {
        return;
    }
    spec.active_deadline_seconds = Some(secs);
    for c in spec
        .containers
        .iter_mut()
        .filter(|c| c.name == PROBE_CONTAINER)
    {
        c.command = Some(vec!["sleep".into(), secs.to_string()]);
    }
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.insert(ANN_DEADLINE.to_string(), secs.to_string());
    }
}

/// Access applier: diagnostics only (node-probe's read-only commands).
pub fn apply_read_only(pod: &mut Pod) {
    set_annotation(pod, ANN_ACCESS, "read-only");
}

/// Access applier: operator mode (node-probe's operator commands write through the host root).
pub fn apply_operator(pod: &mut Pod) {
    set_annotation(pod, ANN_ACCESS, "operator");
}

/// Delivery applier: node-probe is streamed in over exec (`--probe-delivery copy`), so the image is only a base.
/// The script extracts it into a tmpfs it mounts in the container's own mount namespace (nothing on the node's
/// disk, gone with the container); that memory counts against the container's limit, raised by as much.
pub fn apply_copy_delivery(pod: &mut Pod) {
    let c = probe_container(pod);
    c.env
        .get_or_insert_with(Vec::new)
        .push(env(DELIVERY_TMPFS_ENV, "1"));
    if let Some(limits) = c.resources.as_mut().and_then(|r| r.limits.as_mut()) {
        limits.insert("memory".into(), Quantity("384Mi".into()));
    }
    set_annotation(pod, ANN_DELIVERY, "copy");
}

/// Batch applier: the pod belongs to a many-node call, whose one watch selects it by this label.
pub fn apply_batch(pod: &mut Pod, batch: &str) {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(LABEL_BATCH.into(), label_value(batch));
}

/// The probe pod for a call: base + driver applier + access applier.
pub fn probe_pod(call: &ProbeCall, opts: &ProbePodOptions) -> Pod {
    let mut pod = base_pod(call, opts);
    match &opts.driver {
        DriverMode::RuntimeClass(class) => apply_runtime_class(&mut pod, class),
        DriverMode::HostLibrary => apply_host_driver(&mut pod),
    }
    match opts.access {
        AccessMode::ReadOnly => apply_read_only(&mut pod),
        AccessMode::Operator => apply_operator(&mut pod),
    }
    pod
}

/// Placement applier: the probe as an ephemeral container in a workload's pod (kubectl debug's pod
/// target). What it keeps from the probe pod and what it cannot have:
/// - no volumes of its own: ephemeral containers may only mount the target pod's volumes, so there is
///   no host root (no host /proc beyond the target's PID namespace, no PodResources socket) and no NVML
///   from the host: node-probe loads the driver library the runtime injected into the target container
///   (through `/proc/<pid>/root`) and sees the GPUs that container was given; being privileged, it still
///   reads the kernel log (/dev/kmsg);
/// - no resources, no runtime class (pod-level), no hostPID (pod-level);
/// - `targetContainerName` shares that container's PID namespace, so its GPU processes are visible;
/// - it can never be removed: the container ends when its `sleep` does and stays in the pod's spec.
///
/// `sleep_secs` bounds its life (use the call timeout); the name must be unique per call.
pub fn to_ephemeral_container(
    pod: &Pod,
    target_container: Option<&str>,
    sleep_secs: u32,
) -> EphemeralContainer {
    let spec = pod.spec.as_ref().expect("probe pod has a spec");
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == PROBE_CONTAINER)
        .expect("probe container");
    let name = format!(
        "node-probe-{}",
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CALL_ID))
            .cloned()
            .unwrap_or_else(random_id)
    );
    // No host root here: node-probe finds NVML in the target container's root (/proc/<pid>/root), where the
    // NVIDIA container toolkit put the driver's library.
    // /proc/1/root would be the target container's root here: node-probe reads its own view instead.
    let mut envs: Vec<EnvVar> = c
        .env
        .iter()
        .flatten()
        .filter(|e| e.name != HOST_ROOT_ENV)
        .cloned()
        .collect();
    envs.push(env("NODE_PROBE_NVML_IN_CONTAINERS", "1"));
    EphemeralContainer {
        name,
        image: c.image.clone(),
        image_pull_policy: c.image_pull_policy.clone(),
        command: Some(vec!["sleep".into(), sleep_secs.to_string()]),
        env: Some(envs),
        security_context: c.security_context.clone(),
        target_container_name: target_container.map(str::to_string),
        termination_message_policy: c.termination_message_policy.clone(),
        ..Default::default()
    }
}
