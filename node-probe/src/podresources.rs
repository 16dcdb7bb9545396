//! The kubelet PodResources client (`List`, `GetAllocatableResources` over
//! `{kubelet root}/pod-resources/kubelet.sock`) and the kubelet log layout reader. Both only gather raw
//! facts; `gpu_diag::attribution` interprets them. Any failure is an inline reading error, never a failed
//! document: without the kubelet the report is simply not exact.
//!
//! The kubelet's root directory is the one its own command line names (`--root-dir`, and the wrappers'
//! spellings of it), read from the host's process list, else the first of the distributions' defaults
//! whose socket exists. Only a process that is the host's own counts (see [`trusted`]): a tenant's
//! process named `kubelet` must not point the probe at a socket the tenant serves.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gpu_diag::facts::{
    ClaimDeviceFacts, ClaimFacts, ContainerDevicesFacts, ContainerLogDirFacts, FieldError,
    FieldErrorKind, KubeletGateFacts, KubeletLogFacts, NodeFacts, PodLogDirFacts,
    PodResourcesContainerFacts, PodResourcesFacts, PodResourcesPodFacts, Reading,
};

use crate::source::SourceSpec;

pub mod api {
    // Generated from proto/podresources.proto by build.rs.
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("v1");
}

use api::pod_resources_lister_client::PodResourcesListerClient;

/// The socket, relative to the kubelet's root directory.
pub const SOCKET: &str = "pod-resources/kubelet.sock";

/// Kubelet root directories, relative to the host root, in the order they are tried when no host kubelet
/// process names one. Upstream default, also kubeadm, EKS, GKE, AKS, k3s and RKE2
/// (https://kubernetes.io/docs/reference/node/kubelet-files/, from
/// https://github.com/kubernetes/website/pull/47425; k3s agents' /var/lib/kubelet/device-plugins:
/// https://github.com/k3s-io/k3s/issues/451); microk8s, a snap
/// (https://github.com/metal-stack/csi-driver-lvm/pull/34); k0s
/// (https://github.com/k0sproject/k0s/issues/6259, https://github.com/openebs/rawfile-localpv/issues/233).
pub const KUBELET_ROOTS: &[(&str, &str)] = &[
    (
        "var/lib/kubelet",
        "default (kubeadm, EKS, GKE, AKS, k3s, RKE2)",
    ),
    ("var/snap/microk8s/common/var/lib/kubelet", "microk8s"),
    ("var/lib/k0s/kubelet", "k0s"),
];

/// Program names that run a kubelet, whose command line may name its root directory: the kubelet, k0s
/// (`k0s worker --kubelet-root-dir`, https://github.com/k0sproject/k0sctl/issues/892), k3s and RKE2
/// (`--kubelet-arg=root-dir=...`, the kubelet runs inside them), microk8s's `kubelite`.
const KUBELET_PROGRAMS: &[&str] = &["kubelet", "k0s", "k3s", "rke2", "kubelite"];

/// A process list is a few thousand entries; a huge one is cut.
const MAX_PROCESSES: usize = 65536;

/// Where the kubelet keeps its files, and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletRoot {
    /// Relative to the host root.
    pub dir: PathBuf,
    pub from: String,
    /// The kubelet's `--config` file (relative to the host root), when its process named one.
    pub config: Option<PathBuf>,
    /// Its `--feature-gates` value and the pid whose command line gave it.
    pub feature_gates: Option<(String, u32)>,
    /// The trusted host kubelet process, where one runs (its version is asked of its own binary).
    pub pid: Option<u32>,
    /// Every place looked at, for a "not found" message.
    pub looked: Vec<String>,
}

/// The kubelet root: a trusted host kubelet process's `--root-dir`, else the first default whose
/// PodResources socket exists, else the upstream default.
pub fn kubelet_root(host_root: &Path) -> KubeletRoot {
    let mut looked = Vec::new();
    let found = from_processes(host_root);
    if let Some(KubeletProcess {
        pid,
        dir: Some(dir),
        config,
        gates,
    }) = &found
    {
        looked.push(format!("/{} (--root-dir of host pid {pid})", dir.display()));
        return KubeletRoot {
            dir: dir.clone(),
            from: format!("the command line of host pid {pid}"),
            config: config.clone(),
            feature_gates: gates.clone().map(|g| (g, *pid)),
            pid: Some(*pid),
            looked,
        };
    }
    looked.push("no host kubelet process naming --root-dir".into());
    // A kubelet at its default root still names its config file and gates on its command line.
    let (pid, config, feature_gates) = match found {
        Some(k) => (Some(k.pid), k.config, k.gates.map(|g| (g, k.pid))),
        None => (None, None, None),
    };
    for (dir, what) in KUBELET_ROOTS {
        looked.push(format!("/{dir} ({what})"));
        if socket_ok(host_root, &Path::new(dir).join(SOCKET)) {
            return KubeletRoot {
                dir: PathBuf::from(dir),
                from: format!("the {what} location"),
                config,
                feature_gates,
                pid,
                looked,
            };
        }
    }
    KubeletRoot {
        dir: PathBuf::from(KUBELET_ROOTS[0].0),
        from: "the default location".into(),
        config,
        feature_gates,
        pid,
        looked,
    }
}

/// A trusted host process running the kubelet, as its command line shows it.
struct KubeletProcess {
    pid: u32,
    /// Its root directory (relative to the host root), where it names one that exists.
    dir: Option<PathBuf>,
    config: Option<PathBuf>,
    gates: Option<String>,
}

/// A socket that is there and owned by the host root directory's owner (root on a node): a socket a
/// tenant bound through a hostPath volume they were given would be theirs.
fn socket_ok(host_root: &Path, rel: &Path) -> bool {
    let owner = std::fs::metadata(host_root).map(|m| m.uid()).ok();
    std::fs::symlink_metadata(crate::host::root::path(host_root, rel))
        .is_ok_and(|m| m.file_type().is_socket() && Some(m.uid()) == owner)
}

/// The lowest trusted kubelet-running process whose command line names a root directory that exists, else
/// the lowest trusted kubelet-running process.
fn from_processes(host_root: &Path) -> Option<KubeletProcess> {
    let mut first: Option<KubeletProcess> = None;
    let proc_dir = host_root.join("proc");
    let mut pids: Vec<u32> = std::fs::read_dir(&proc_dir)
        .ok()?
        .take(MAX_PROCESSES)
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        // `comm` first: reading a `cmdline` takes the process's memory lock, which a process stuck in the
        // driver may hold; `comm` does not. Only a kubelet-running program's command line is read.
        let comm =
            read_bounded(&proc_dir.join(pid.to_string()).join("comm"), 64).unwrap_or_default();
        let comm = String::from_utf8_lossy(&comm);
        if !KUBELET_PROGRAMS
            .iter()
            .any(|p| comm.trim_end().starts_with(p))
        {
            continue;
        }
        let Ok(raw) = read_bounded(&proc_dir.join(pid.to_string()).join("cmdline"), 1 << 16) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(program) = args.first().and_then(|a| a.rsplit('/').next()) else {
            continue;
        };
        if !KUBELET_PROGRAMS.contains(&program) {
            continue;
        }
        if !trusted(host_root, pid) {
            continue;
        }
        let config = flag(&args, "--config").map(|c| PathBuf::from(c.trim_start_matches('/')));
        let gates = flag(&args, "--feature-gates");
        let dir = root_dir_arg(&args)
            .map(|d| PathBuf::from(d.trim_start_matches('/')))
            .filter(|rel| {
                !rel.as_os_str().is_empty()
                    && !rel
                        .components()
                        .any(|c| c == std::path::Component::ParentDir)
                    && crate::host::root::path(host_root, rel).is_dir()
            });
        let k = KubeletProcess {
            pid,
            dir,
            config,
            gates,
        };
        if k.dir.is_some() {
            return Some(k);
        }
        first.get_or_insert(k);
    }
    first
}

/// `--root-dir X` / `--root-dir=X` (kubelet), `--kubelet-root-dir` (k0s), `--kubelet-arg root-dir=X`
/// (k3s, RKE2); the last one given wins, as in the kubelet's own flag parsing.
fn root_dir_arg(args: &[String]) -> Option<String> {
    let mut found = None;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let value = || inline.clone().or_else(|| args.get(i + 1).cloned());
        match name {
            "--root-dir" | "--kubelet-root-dir" => found = value(),
            "--kubelet-arg" => {
                if let Some(v) =
                    value().and_then(|v| v.strip_prefix("root-dir=").map(str::to_string))
                {
                    found = Some(v);
                }
            }
            _ => {}
        }
        i += 1;
    }
    found.filter(|v| v.starts_with('/'))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    let mut out = None;
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            out = Some(v.to_string());
        } else if a == name {
            out = args.get(i + 1).cloned();
        }
    }
    out
}

/// Whether `pid` is a host process and not a tenant's: it runs as uid 0, in pid 1's pid and mount
/// namespaces (a container has its own mount namespace even with hostPID), and outside any pod's cgroup.
pub fn trusted(host_root: &Path, pid: u32) -> bool {
    let proc_dir = host_root.join("proc");
    let ns = |p: &str, kind: &str| std::fs::read_link(proc_dir.join(p).join("ns").join(kind)).ok();
    let me = pid.to_string();
    let same_ns = ["pid", "mnt"]
        .iter()
        .all(|k| ns(&me, k).is_some() && ns(&me, k) == ns("1", k));
    let uid0 = read_bounded(&proc_dir.join(&me).join("status"), 1 << 16)
        .ok()
        .and_then(|s| {
            String::from_utf8_lossy(&s).lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().all(|u| u == "0"))
            })
        })
        .unwrap_or(false);
    let in_pod = read_bounded(&proc_dir.join(&me).join("cgroup"), 1 << 16)
        .map(|c| String::from_utf8_lossy(&c).contains("kubepods"))
        .unwrap_or(true);
    same_ns && uid0 && !in_pod
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// The kubelet's `podLogsDir` from its config file (KubeletConfiguration, default /var/log/pods), relative
/// to the host root. Read line by line: only a top-level `podLogsDir:` key counts.
pub fn pod_logs_dir(host_root: &Path, kubelet: &KubeletRoot) -> PathBuf {
    let default = PathBuf::from("var/log/pods");
    let Some(config) = &kubelet.config else {
        return default;
    };
    let Ok(text) = read_bounded(&crate::host::root::path(host_root, config), 1 << 20) else {
        return default;
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix("podLogsDir:"))
        .map(|v| v.trim().trim_matches('"').trim_matches('\''))
        .filter(|v| v.starts_with('/') && !v.contains(".."))
        .map(|v| PathBuf::from(v.trim_start_matches('/')))
        .unwrap_or(default)
}

/// A busy kubelet answers in milliseconds; this bounds a hung one.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Large nodes list hundreds of pods; the kubelet's own limit is 16 MiB.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Ask the kubelet. Runs a current-thread runtime just for this call: the rest of the probe is synchronous.
pub fn collect(host_root: &Path, kubelet: &KubeletRoot) -> Reading<PodResourcesFacts> {
    let rel = kubelet.dir.join(SOCKET);
    // Resolved as the host would: a kubelet root moved by a link (`/var/lib/kubelet -> /data/kubelet`).
    let path = crate::host::root::path(host_root, &rel);
    match std::fs::metadata(&path) {
        Ok(_) => {}
        Err(e) => {
            return Reading::Err(io_field_error(
                &e,
                &format!(
                    "{}: {e} (kubelet root from {}; looked at {})",
                    path.display(),
                    kubelet.from,
                    kubelet.looked.join(", ")
                ),
            ));
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("cannot start the gRPC runtime: {e}"),
            ));
        }
    };
    let mut answer = runtime.block_on(query(path, rel.display().to_string()));
    if let Reading::Ok(p) = &mut answer {
        p.dra_gate = dra_gate(host_root, kubelet);
    }
    answer
}

/// `KubeletPodResourcesDynamicResources` as the kubelet was started with it: its `--feature-gates`
/// (`A=true,B=false`), which the kubelet applies over its config file's, else the config file's
/// `featureGates:` map. `None` where neither names it.
pub fn dra_gate(host_root: &Path, kubelet: &KubeletRoot) -> Option<KubeletGateFacts> {
    let gate = gpu_diag::attribution::dra::DRA_GATE;
    if let Some((flags, pid)) = &kubelet.feature_gates
        && let Some(on) = flags.split(',').rev().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == gate).then(|| v.trim().eq_ignore_ascii_case("true"))
        })
    {
        return Some(KubeletGateFacts {
            enabled: on,
            from: format!("--feature-gates of host pid {pid}"),
        });
    }
    if let Some(config) = &kubelet.config
        && let Ok(text) = read_bounded(&crate::host::root::path(host_root, config), 1 << 20)
        && let Some(on) = config_gate(&String::from_utf8_lossy(&text), gate)
    {
        return Some(KubeletGateFacts {
            enabled: on,
            from: format!("featureGates in {}", config.display()),
        });
    }
    // Neither sets it: the default of the kubelet's version, which its own binary tells.
    let pid = kubelet.pid?;
    let (version, minor) = kubelet_version(host_root, pid)?;
    Some(KubeletGateFacts {
        enabled: gate_default(minor),
        from: format!("the default of kubelet {version} (`--version` of host pid {pid}'s program)"),
    })
}

/// The DRA gate's default by the kubelet's minor version: alpha and off 1.27-1.33, beta and on from 1.34
/// (kubernetes/website feature-gates page); before 1.27 the kubelet has no such answer at all.
fn gate_default(minor: u32) -> bool {
    minor >= 34
}

/// How long the kubelet's program may take to print its version.
const VERSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The version a trusted kubelet process's own program prints (`kubelet --version`: `Kubernetes
/// v1.35.4`; k3s and RKE2: `k3s version v1.31.1+k3s1`), run inside the host root with no environment, and
/// its 1.x minor. `None` where it cannot be run or says no `v1.N`.
fn kubelet_version(host_root: &Path, pid: u32) -> Option<(String, u32)> {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(format!("/proc/{pid}/exe"));
    cmd.arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    crate::hostexec::chroot(&mut cmd, host_root.to_path_buf());
    let mut child = cmd.spawn().ok()?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(child.stdout.take()?, 4096),
        &mut out,
    )
    .ok()?;
    parse_version(&out)
}

/// The first `v1.N[.P…]` word of a version line, and N.
fn parse_version(text: &str) -> Option<(String, u32)> {
    text.split_whitespace().find_map(|w| {
        let minor = w
            .strip_prefix("v1.")?
            .split(['.', '+', '-'])
            .next()?
            .parse()
            .ok()?;
        Some((w.to_string(), minor))
    })
}

/// `gate`'s value in a KubeletConfiguration's top-level `featureGates:` map (YAML block or JSON-style
/// flow `{A: true}`), read line by line as `pod_logs_dir` does.
fn config_gate(text: &str, gate: &str) -> Option<bool> {
    let mut in_gates = false;
    for line in text.lines() {
        let t = line.trim_end();
        if let Some(rest) = t.strip_prefix("featureGates:") {
            let rest = rest.trim();
            if rest.starts_with('{') {
                return rest
                    .trim_matches(|c| c == '{' || c == '}')
                    .split(',')
                    .find_map(|kv| value_of(kv, gate));
            }
            in_gates = true;
            continue;
        }
        if in_gates {
            if !t.starts_with([' ', '\t']) && !t.is_empty() {
                in_gates = false;
                continue;
            }
            if let Some(v) = value_of(t, gate) {
                return Some(v);
            }
        }
    }
    None
}

fn value_of(kv: &str, gate: &str) -> Option<bool> {
    let (k, v) = kv.split_once(':')?;
    let k = k.trim().trim_matches('"').trim_matches('\'');
    let v = v.split('#').next()?.trim().trim_matches('"');
    (k == gate).then(|| v.eq_ignore_ascii_case("true"))
}

async fn query(path: PathBuf, socket: String) -> Reading<PodResourcesFacts> {
    let shown = path.display().to_string();
    // The URI is required by the API and ignored by the connector.
    let endpoint = match tonic::transport::Endpoint::try_from("http://[::]:50051") {
        Ok(e) => e.connect_timeout(CONNECT_TIMEOUT).timeout(TIMEOUT),
        Err(e) => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                e.to_string(),
            ));
        }
    };
    let connect =
        endpoint.connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }));
    let channel = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Reading::Err(transport_error(&e, &shown)),
        Err(_) => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::Timeout,
                format!("{shown}: no connection within {CONNECT_TIMEOUT:?}"),
            ));
        }
    };
    let mut client = PodResourcesListerClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
    let list = match client.list(api::ListPodResourcesRequest {}).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Reading::Err(status_error(&s, "List")),
    };
    let allocatable = match client
        .get_allocatable_resources(api::AllocatableResourcesRequest {})
        .await
    {
        Ok(r) => Reading::Ok(r.into_inner().devices.into_iter().map(devices).collect()),
        Err(s) => Reading::Err(status_error(&s, "GetAllocatableResources")),
    };
    // A name no pod can have (uppercase is not a DNS label): the kubelet answers "not found" where Get is
    // served (pkg/kubelet/apis/podresources/server_v1.go), "PodResources API Get method disabled" where not.
    let get_served = match client
        .get(api::GetPodResourcesRequest {
            pod_name: "NODE-PROBE-GATE-CHECK".into(),
            pod_namespace: "NODE-PROBE-GATE-CHECK".into(),
        })
        .await
    {
        Ok(_) => Some(true),
        Err(s) if s.message().contains("Get method disabled") => Some(false),
        Err(s) if s.message().contains("not found") => Some(true),
        Err(s) if s.code() == tonic::Code::Unimplemented => Some(false),
        Err(_) => None,
    };
    Reading::Ok(PodResourcesFacts {
        socket,
        pods: list
            .pod_resources
            .into_iter()
            .map(|p| PodResourcesPodFacts {
                name: p.name,
                namespace: p.namespace,
                containers: p
                    .containers
                    .into_iter()
                    .map(|c| PodResourcesContainerFacts {
                        name: c.name,
                        devices: c.devices.into_iter().map(devices).collect(),
                        claims: c.dynamic_resources.into_iter().map(claim).collect(),
                    })
                    .collect(),
            })
            .collect(),
        allocatable,
        get_served,
        dra_gate: None,
    })
}

fn devices(d: api::ContainerDevices) -> ContainerDevicesFacts {
    ContainerDevicesFacts {
        resource_name: d.resource_name,
        device_ids: d.device_ids,
        numa_nodes: d
            .topology
            .map(|t| t.nodes.into_iter().map(|n| n.id).collect())
            .unwrap_or_default(),
    }
}

fn claim(r: api::DynamicResource) -> ClaimFacts {
    ClaimFacts {
        name: r.claim_name,
        namespace: r.claim_namespace,
        devices: r
            .claim_resources
            .into_iter()
            .map(|d| ClaimDeviceFacts {
                driver: d.driver_name,
                pool: d.pool_name,
                device: d.device_name,
                cdi_ids: d.cdi_devices.into_iter().map(|c| c.name).collect(),
            })
            .collect(),
    }
}

fn io_field_error(e: &std::io::Error, message: &str) -> FieldError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => FieldErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => FieldErrorKind::NoPermission,
        std::io::ErrorKind::TimedOut => FieldErrorKind::Timeout,
        _ => FieldErrorKind::Unknown,
    };
    FieldError::with_message(kind, message.to_string())
}

/// tonic wraps the connector's io::Error; find it to say "permission denied" rather than "transport error".
fn transport_error(e: &tonic::transport::Error, shown: &str) -> FieldError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_field_error(io, &format!("{shown}: {io}"));
        }
        source = s.source();
    }
    FieldError::with_message(FieldErrorKind::Unknown, format!("{shown}: {e}"))
}

fn status_error(s: &tonic::Status, call: &str) -> FieldError {
    let kind = match s.code() {
        tonic::Code::Unimplemented => FieldErrorKind::NotSupported,
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            FieldErrorKind::NoPermission
        }
        tonic::Code::DeadlineExceeded => FieldErrorKind::Timeout,
        _ => FieldErrorKind::Unknown,
    };
    let mut message = format!("{call}: {:?}", s.code());
    if !s.message().is_empty() {
        message.push_str(": ");
        message.push_str(s.message());
    }
    FieldError::with_message(kind, message)
}

/// The kubelet's log layout under `{host-root}/var/log` (or its configured `podLogsDir`): pod directories
/// (with their container directories' modification times) and container log file names.
pub fn read_kubelet_logs(host_root: &Path, pod_logs: &Path) -> Reading<KubeletLogFacts> {
    let pods_dir = crate::host::root::path(host_root, pod_logs);
    let entries = match std::fs::read_dir(&pods_dir) {
        Ok(rd) => rd,
        Err(e) => {
            return Reading::Err(io_field_error(&e, &format!("{}: {e}", pods_dir.display())));
        }
    };
    let mut pods: Vec<PodLogDirFacts> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let mut containers: Vec<ContainerLogDirFacts> = std::fs::read_dir(e.path())
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter(|c| c.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|c| ContainerLogDirFacts {
                            name: c.file_name().to_string_lossy().into_owned(),
                            modified_unix: c
                                .metadata()
                                .ok()
                                .and_then(|m| m.modified().ok())
                                .and_then(unix_seconds),
                        })
                        .collect()
                })
                .unwrap_or_default();
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            PodLogDirFacts {
                name: e.file_name().to_string_lossy().into_owned(),
                containers,
            }
        })
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    // Missing var/log/containers is unusual but not fatal: pods still resolve by UID.
    let mut containers: Vec<String> =
        std::fs::read_dir(crate::host::root::path(host_root, "var/log/containers"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    containers.sort();
    Reading::Ok(KubeletLogFacts { pods, containers })
}

fn unix_seconds(t: SystemTime) -> Option<f64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// Add what `allocation` needs beyond the GPU source. A simulated node keeps its own kubelet facts unless
/// `--host-root` was given: then the socket, the log layout and the GPU processes' `/proc` entries are
/// read there (a fake host root around a simulated GPU set).
pub fn fill(facts: &mut NodeFacts, spec: &SourceSpec, host_root_given: bool) {
    let host_root = match spec {
        SourceSpec::Nvml { host_root, .. } => host_root,
        SourceSpec::Simulated { host_root, .. } => {
            if !host_root_given {
                return;
            }
            crate::host::fill_processes(facts, host_root, None);
            host_root
        }
    };
    let kubelet = kubelet_root(host_root);
    facts.pod_resources = collect(host_root, &kubelet);
    facts.kubelet_logs = read_kubelet_logs(host_root, &pod_logs_dir(host_root, &kubelet));
    facts.dra = crate::dra::read(host_root, &kubelet.dir);
    crate::host::fill_minor_numbers(facts, host_root);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn root_dir_in_each_spelling_last_one_wins() {
        let r = |a: &[&str]| root_dir_arg(&args(a));
        assert_eq!(r(&["kubelet", "--root-dir", "/a"]), Some("/a".into()));
        assert_eq!(
            r(&["kubelet", "--root-dir=/a", "--root-dir=/b"]),
            Some("/b".into())
        );
        assert_eq!(
            r(&["k0s", "worker", "--kubelet-root-dir=/k"]),
            Some("/k".into())
        );
        assert_eq!(
            r(&["k3s", "agent", "--kubelet-arg=root-dir=/s"]),
            Some("/s".into())
        );
        assert_eq!(r(&["k3s", "agent", "--kubelet-arg", "v=2"]), None);
        // Relative, or a flag without its value: nothing.
        assert_eq!(r(&["kubelet", "--root-dir=data"]), None);
        assert_eq!(r(&["kubelet", "--root-dir"]), None);
    }

    #[test]
    fn versions_as_kubelets_print_them() {
        assert_eq!(
            parse_version("Kubernetes v1.35.4\n"),
            Some(("v1.35.4".into(), 35))
        );
        assert_eq!(
            parse_version("k3s version v1.31.1+k3s1 (452dbbc1)\ngo version go1.22.6\n"),
            Some(("v1.31.1+k3s1".into(), 31))
        );
        assert_eq!(parse_version("Kubernetes v2.0.0"), None);
        assert_eq!(parse_version(""), None);
        assert!(gate_default(34) && gate_default(36) && !gate_default(33) && !gate_default(27));
    }

    #[test]
    fn the_dra_gate_from_the_command_line_over_the_config() {
        let gate = gpu_diag::attribution::dra::DRA_GATE;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/kubelet")).unwrap();
        let cfg = d.path().join("var/lib/kubelet/config.yaml");
        let mut k = KubeletRoot {
            dir: "var/lib/kubelet".into(),
            from: String::new(),
            config: Some("var/lib/kubelet/config.yaml".into()),
            feature_gates: None,
            pid: None,
            looked: vec![],
        };
        // Not named anywhere (a missing config, then one without it): unknown, not "off".
        assert_eq!(dra_gate(d.path(), &k), None);
        std::fs::write(
            &cfg,
            "kind: KubeletConfiguration\nfeatureGates:\n  KubeletPodResourcesGet: true\n",
        )
        .unwrap();
        assert_eq!(dra_gate(d.path(), &k), None, "Get's gate is not DRA's");
        std::fs::write(
            &cfg,
            format!("kind: KubeletConfiguration\nfeatureGates:\n  KubeletPodResourcesGet: true\n  {gate}: true # on\nport: 10250\n"),
        )
        .unwrap();
        let g = dra_gate(d.path(), &k).unwrap();
        assert!(g.enabled);
        assert_eq!(g.from, "featureGates in var/lib/kubelet/config.yaml");
        std::fs::write(&cfg, format!("featureGates: {{{gate}: false}}\n")).unwrap();
        assert!(!dra_gate(d.path(), &k).unwrap().enabled);
        // A key of another map below is not the gate.
        std::fs::write(
            &cfg,
            format!("featureGates:\n  A: true\nother:\n  {gate}: true\n"),
        )
        .unwrap();
        assert_eq!(dra_gate(d.path(), &k), None);
        // The command line wins; its last mention counts.
        k.feature_gates = Some((format!("{gate}=false,X=true,{gate}=true"), 812));
        let g = dra_gate(d.path(), &k).unwrap();
        assert!(g.enabled);
        assert_eq!(g.from, "--feature-gates of host pid 812");
    }

    #[test]
    fn pod_logs_dir_from_the_kubelet_config() {
        let d = tempfile::tempdir().unwrap();
        let mut k = KubeletRoot {
            dir: "var/lib/kubelet".into(),
            from: String::new(),
            config: None,
            feature_gates: None,
            pid: None,
            looked: vec![],
        };
        assert_eq!(pod_logs_dir(d.path(), &k), Path::new("var/log/pods"));
        k.config = Some("var/lib/kubelet/config.yaml".into());
        // Missing file: the default.
        assert_eq!(pod_logs_dir(d.path(), &k), Path::new("var/log/pods"));
        std::fs::create_dir_all(d.path().join("var/lib/kubelet")).unwrap();
        let cfg = d.path().join("var/lib/kubelet/config.yaml");
        std::fs::write(
            &cfg,
            "kind: KubeletConfiguration\npodLogsDir: \"/data/pod-logs\"\n",
        )
        .unwrap();
        assert_eq!(pod_logs_dir(d.path(), &k), Path::new("data/pod-logs"));
        std::fs::write(&cfg, "podLogsDir: /var/log/../../etc\n").unwrap();
        assert_eq!(pod_logs_dir(d.path(), &k), Path::new("var/log/pods"));
    }
}
