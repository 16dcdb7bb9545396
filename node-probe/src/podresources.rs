//! The kubelet PodResources client (`List`, `GetAllocatableResources` over
//! `{host-root}/var/lib/kubelet/pod-resources/kubelet.sock`) and the kubelet log layout reader. Both
//! only gather raw facts; `gpu_diag::attribution` interprets them. Any failure is an inline reading error,
//! never a failed document: without the kubelet the report is simply not exact.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gpu_diag::facts::{
    ContainerDevicesFacts, ContainerLogDirFacts, FieldError, FieldErrorKind, KubeletLogFacts,
    NodeFacts, PodLogDirFacts, PodResourcesContainerFacts, PodResourcesFacts, PodResourcesPodFacts,
    Reading,
};

use crate::source::SourceSpec;

pub mod api {
    // Generated from proto/podresources.proto by build.rs.
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("v1");
}

use api::pod_resources_lister_client::PodResourcesListerClient;

/// The socket, relative to the host root.
pub const SOCKET: &str = "var/lib/kubelet/pod-resources/kubelet.sock";

/// A busy kubelet answers in milliseconds; this bounds a hung one.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Large nodes list hundreds of pods; the kubelet's own limit is 16 MiB.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Ask the kubelet. Runs a current-thread runtime just for this call: the rest of the probe is synchronous.
pub fn collect(host_root: &Path) -> Reading<PodResourcesFacts> {
    let path = host_root.join(SOCKET);
    match std::fs::metadata(&path) {
        Ok(_) => {}
        Err(e) => {
            return Reading::Err(io_field_error(&e, &format!("{}: {e}", path.display())));
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
    runtime.block_on(query(path))
}

async fn query(path: std::path::PathBuf) -> Reading<PodResourcesFacts> {
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
    Reading::Ok(PodResourcesFacts {
        socket: SOCKET.to_string(),
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
                    })
                    .collect(),
            })
            .collect(),
        allocatable,
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

/// The kubelet's log layout under `{host-root}/var/log`: pod directories (with their container
/// directories' modification times) and container log file names.
pub fn read_kubelet_logs(host_root: &Path) -> Reading<KubeletLogFacts> {
    let pods_dir = host_root.join("var/log/pods");
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
    let mut containers: Vec<String> = std::fs::read_dir(host_root.join("var/log/containers"))
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
    facts.pod_resources = collect(host_root);
    facts.kubelet_logs = read_kubelet_logs(host_root);
}
