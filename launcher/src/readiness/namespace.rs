//! The probe namespace: it exists and its Pod Security label admits privileged pods (`namespace` row).

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;

use super::ReadinessCheck;
use super::manifests::PSA_ENFORCE;

/// The probe namespace exists and Pod Security admits privileged pods there.
pub(super) async fn namespace_check(client: &Client, ns: &str) -> ReadinessCheck {
    let name = "namespace";
    let label_fix = format!("kubectl label namespace {ns} {PSA_ENFORCE}=privileged --overwrite");
    let api: Api<Namespace> = Api::all(client.clone());
    let found = match api.get_opt(ns).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return ReadinessCheck::fail(
                name,
                format!("{ns} does not exist"),
                format!("k8s-gpu-mcp setup --apply --namespace {ns}   # as a cluster admin"),
            );
        }
        Err(kube::Error::Api(s)) if s.is_forbidden() => {
            return ReadinessCheck::fail(
                name,
                format!(
                    "cannot read namespace {ns} (forbidden): it does not exist, or the probe role is not bound to you there"
                ),
                format!("k8s-gpu-mcp setup --apply --namespace {ns}   # as a cluster admin"),
            );
        }
        Err(e) => {
            return ReadinessCheck::fail(
                name,
                format!("get namespace {ns}: {e}"),
                "kubectl cluster-info",
            );
        }
    };
    let enforce = found
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(PSA_ENFORCE))
        .map(String::as_str);
    match enforce {
        Some("privileged") => {
            ReadinessCheck::ok(name, format!("{ns} exists, {PSA_ENFORCE}=privileged"))
        }
        Some(level) => ReadinessCheck::fail(
            name,
            format!(
                "{ns} has {PSA_ENFORCE}={level}: Pod Security refuses probe pods (privileged, hostPID, host /)"
            ),
            label_fix,
        ),
        None => ReadinessCheck::fail(
            name,
            format!(
                "{ns} has no {PSA_ENFORCE} label: the cluster's default Pod Security level applies, which usually refuses probe pods (privileged, hostPID, host /)"
            ),
            label_fix,
        ),
    }
}
