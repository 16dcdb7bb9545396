//! `k8s-gpu-mcp gc`: the sweep of leftover probe pods and of gone runs' marks (`keep_pods_off` taints whose
//! deadline passed) on demand; the report (JSON) on stdout.

use std::process::ExitCode;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use serde::Serialize;

use crate::cluster::clients::Clients;
use crate::cluster::run_mark::{self, MarkSweep};
use crate::config::Config;
use crate::probe::kube::{Error, K8sConfig};
use crate::probe::sweep::{self, SweepReport};

/// What `gc` did: the probe pods, then the run marks.
#[derive(Debug, Serialize)]
pub struct GcReport {
    #[serde(flatten)]
    pub pods: SweepReport,
    /// Marks of runs that are gone (their deadline passed; `gc` runs none of its own), lifted each alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_marks: Option<MarkSweep>,
    /// Why the nodes' run marks could not be swept (an identity that may not list nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_marks_error: Option<String>,
}

/// `k8s-gpu-mcp gc`: exit 1 when a pod could not be deleted or a gone run's mark not lifted, 2 when the
/// cluster could not be read.
pub async fn command(cfg: &Config, all: bool) -> ExitCode {
    match gc(&cfg.k8s_config(), all).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.pods.failed.is_empty()
                && report
                    .run_marks
                    .as_ref()
                    .is_none_or(|m| m.failed.is_empty())
            {
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
/// every probe pod regardless of age. Then lift the marks of gone runs on every node (`all` does not
/// reach them: a mark within its deadline may be a live run's, of another launcher).
pub async fn gc(cfg: &K8sConfig, all: bool) -> Result<GcReport, Error> {
    let clients = Clients::connect(cfg.kubeconfig.as_deref(), cfg.context.as_deref())
        .await
        .map_err(Error::Config)?;
    let client = clients
        .get(None)
        .await
        .map_err(|e| Error::Api(e.to_string()))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &cfg.namespace);
    let pods = sweep::sweep(&pods, &cfg.namespace, all)
        .await
        .map_err(|e| Error::Api(format!("list probe pods in {}: {e}", cfg.namespace)))?;
    let (run_marks, run_marks_error) = match run_mark::sweep(client, None, &run_mark::live()).await
    {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(GcReport {
        pods,
        run_marks,
        run_marks_error,
    })
}
