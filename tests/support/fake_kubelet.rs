//! A fake kubelet for tests: a tonic PodResources server on the unix socket of a temporary host root,
//! answering `List` with the pods it is given, `Get` as the kubelets of 1.27-1.33 do by default (disabled)
//! and `GetAllocatableResources` with the devices it is given.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod api {
    #![allow(clippy::all, clippy::pedantic, dead_code)]
    tonic::include_proto!("v1");
}

use api::pod_resources_lister_server::{PodResourcesLister, PodResourcesListerServer};

#[derive(Clone, Default)]
pub struct Kubelet {
    pub pods: Vec<api::PodResources>,
    /// None: answer `GetAllocatableResources` as a pre-1.21 kubelet does (unimplemented).
    pub allocatable: Option<Vec<api::ContainerDevices>>,
}

#[tonic::async_trait]
impl PodResourcesLister for Kubelet {
    async fn list(
        &self,
        _: tonic::Request<api::ListPodResourcesRequest>,
    ) -> Result<tonic::Response<api::ListPodResourcesResponse>, tonic::Status> {
        Ok(tonic::Response::new(api::ListPodResourcesResponse {
            pod_resources: self.pods.clone(),
        }))
    }
    async fn get(
        &self,
        r: tonic::Request<api::GetPodResourcesRequest>,
    ) -> Result<tonic::Response<api::GetPodResourcesResponse>, tonic::Status> {
        // As the kubelet of 1.27-1.33 with its default gates (KubeletPodResourcesGet off).
        let _ = r;
        Err(tonic::Status::unknown(
            "PodResources API Get method disabled",
        ))
    }

    async fn get_allocatable_resources(
        &self,
        _: tonic::Request<api::AllocatableResourcesRequest>,
    ) -> Result<tonic::Response<api::AllocatableResourcesResponse>, tonic::Status> {
        match &self.allocatable {
            Some(d) => Ok(tonic::Response::new(api::AllocatableResourcesResponse {
                devices: d.clone(),
            })),
            None => Err(tonic::Status::unimplemented("unknown method")),
        }
    }
}

/// A served kubelet; stops and joins its thread when dropped.
pub struct Served {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn socket_path(root: &Path) -> PathBuf {
    root.join("var/lib/kubelet/pod-resources/kubelet.sock")
}

pub fn serve(root: &Path, kubelet: Kubelet) -> Served {
    serve_at(socket_path(root), kubelet)
}

pub fn serve_at(sock: PathBuf, kubelet: Kubelet) -> Served {
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    // Bound before the probe starts, so there is no race with its connect.
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::UnixListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .add_service(PodResourcesListerServer::new(kubelet))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(l),
                    async {
                        let _ = rx.await;
                    },
                )
                .await
                .unwrap();
        });
    });
    Served {
        stop: Some(tx),
        thread: Some(thread),
    }
}

pub fn pod(ns: &str, name: &str, containers: &[(&str, &str, &[&str])]) -> api::PodResources {
    api::PodResources {
        name: name.into(),
        namespace: ns.into(),
        containers: containers
            .iter()
            .map(|(c, resource, ids)| api::ContainerResources {
                name: (*c).into(),
                devices: vec![devices(resource, ids)],
                dynamic_resources: vec![],
            })
            .collect(),
    }
}

pub fn devices(resource: &str, ids: &[&str]) -> api::ContainerDevices {
    api::ContainerDevices {
        resource_name: resource.into(),
        device_ids: ids.iter().map(|s| s.to_string()).collect(),
        topology: Some(api::TopologyInfo {
            nodes: vec![api::NumaNode { id: 0 }],
        }),
    }
}
