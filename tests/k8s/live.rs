//! The real runner (websocket exec included) and backend against a live cluster: ignored unless run by hand
//! against the testbed (tests/testbed/testbed.sh), e.g.
//!   K8S_LIVE_KUBECONFIG=$TESTBED_DIR/reader.kubeconfig K8S_LIVE_NODE=gpu-node-5 K8S_LIVE_STUCK_NODE=gpu-stuck \
//!   cargo test -p k8s-gpu-mcp --bin k8s-gpu-mcp live -- --ignored --nocapture
//! The full end-to-end suite (tests/e2e) covers the same through the MCP server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;

use crate::probe::kube::{K8sConfig, connect};
use crate::probe::pod::probe_selector;
use crate::probe::runner::{ProbeRequest, RunError};

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn cfg() -> K8sConfig {
    K8sConfig {
        kubeconfig: env("K8S_LIVE_KUBECONFIG").map(Into::into),
        startup_sweep: false,
        ..Default::default()
    }
}

async fn left_pods(cfg: &K8sConfig) -> Vec<String> {
    let clients = crate::cluster::clients::Clients::connect(cfg.kubeconfig.as_deref(), None)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(clients.get(None).await.unwrap(), &cfg.namespace);
    pods.list(&ListParams::default().labels(&probe_selector()))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a live cluster (K8S_LIVE_KUBECONFIG, K8S_LIVE_NODE)"]
async fn live_probe_and_backend() {
    let cfg = cfg();
    let node = env("K8S_LIVE_NODE").expect("K8S_LIVE_NODE");
    let (runner, backend) = connect(&cfg).await.expect("connect");
    let nodes = backend.list_gpu_nodes(None, None).await.expect("list");
    eprintln!(
        "gpu nodes: {:?}",
        nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    for args in [vec!["version".to_string()], vec!["health".to_string()]] {
        let t = Instant::now();
        let out = runner
            .run(
                ProbeRequest {
                    lines: None,
                    node: node.clone(),
                    args: args.clone(),
                    tool: "live_test".into(),
                    context: None,
                    timeout: Duration::from_secs(60),
                    batch: Default::default(),
                    image: Default::default(),
                },
                Arc::new(|_| {}),
                CancellationToken::new(),
            )
            .await;
        eprintln!(
            "{args:?}: {:?} in {:?}",
            out.as_ref().map(|o| (&o.timings, o.exit_code)),
            t.elapsed()
        );
        let out = out.expect("probe runs");
        assert!(out.ran_in.starts_with("gpu-diagnostics/gpu-probe-"));
    }
    assert!(left_pods(&cfg).await.is_empty(), "probe pods left");
    if let Some(stuck) = env("K8S_LIVE_STUCK_NODE") {
        let e = runner
            .run(
                ProbeRequest {
                    lines: None,
                    node: stuck,
                    args: vec!["health".into()],
                    tool: "live_test".into(),
                    context: None,
                    timeout: Duration::from_secs(3),
                    batch: Default::default(),
                    image: Default::default(),
                },
                Arc::new(|_| {}),
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
        eprintln!("stuck: {e}");
        assert!(matches!(e, RunError::ProbeNotStarted { .. }), "{e:?}");
        assert!(left_pods(&cfg).await.is_empty(), "probe pods left");
    }
    runner.shutdown().await;
}
