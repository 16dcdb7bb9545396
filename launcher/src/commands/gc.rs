//! `k8s-gpu-mcp gc`: the sweep of leftover probe pods on demand; the report (JSON) on stdout.

use std::process::ExitCode;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use crate::cluster::clients::Clients;
use crate::config::Config;
use crate::probe::kube::{Error, K8sConfig};
use crate::probe::sweep::{self, SweepReport};

/// `k8s-gpu-mcp gc`: exit 1 when a pod could not be deleted, 2 when the cluster could not be read.
pub async fn command(cfg: &Config, all: bool) -> ExitCode {
    match gc(&cfg.k8s_config(), all).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("k8s-gpu-mcp gc: {e}");
            ExitCode::from(2)
        }
    }
}

/// Delete leftover probe pods (past their deadline, or finished) in the probe namespace; `all` deletes
/// every probe pod regardless of age.
pub async fn gc(cfg: &K8sConfig, all: bool) -> Result<SweepReport, Error> {
    let clients = Clients::connect(cfg.kubeconfig.as_deref(), cfg.context.as_deref())
        .await
        .map_err(Error::Config)?;
    let client = clients
        .get(None)
        .await
        .map_err(|e| Error::Api(e.to_string()))?;
    let pods: Api<Pod> = Api::namespaced(client, &cfg.namespace);
    sweep::sweep(&pods, &cfg.namespace, all)
        .await
        .map_err(|e| Error::Api(format!("list probe pods in {}: {e}", cfg.namespace)))
}
