//! Who the API server says the user is (SelfSubjectReview) and whether they hold each permission of
//! deploy/'s roles (one SelfSubjectAccessReview per permission, one `permissions/<role>` row per role).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use super::ReadinessCheck;
use super::manifests::RequiredRole;

/// The user name the API server sees (SelfSubjectReview, GA since Kubernetes 1.28).
pub(super) async fn whoami(client: &Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username
}

/// SelfSubjectAccessReview for each permission of a role; one checklist line per role.
pub(super) async fn permission_check(
    client: &Client,
    role: &RequiredRole,
    subject: &str,
) -> ReadinessCheck {
    let name = format!("permissions/{}", role.role);
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for p in &role.permissions {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.clone()),
                    resource: Some(p.resource.clone()),
                    subresource: p.subresource.clone(),
                    verb: Some(p.verb.clone()),
                    namespace: p.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(p.to_string()),
            Err(e) => {
                return ReadinessCheck::fail(
                    name,
                    format!("access review failed: {e}"),
                    "kubectl auth can-i --list",
                );
            }
        }
    }
    let scope = match &role.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".into(),
    };
    if missing.is_empty() {
        return ReadinessCheck::ok(
            name,
            format!("all {} permissions {scope}", role.permissions.len()),
        );
    }
    let safe = crate::cluster::labels::label_value(subject).to_lowercase();
    let bind = match &role.namespace {
        Some(ns) => format!(
            "kubectl create rolebinding {}-{safe} -n {ns} --clusterrole={} --user={subject}",
            role.role, role.role
        ),
        None => format!(
            "kubectl create clusterrolebinding {}-{safe} --clusterrole={} --user={subject}",
            role.role, role.role
        ),
    };
    ReadinessCheck::fail(
        name,
        format!(
            "{} of {} permissions missing {scope}: {}",
            missing.len(),
            role.permissions.len(),
            missing.join(", ")
        ),
        format!("k8s-gpu-mcp setup --apply   # as a cluster admin (the roles), then: {bind}"),
    )
}
