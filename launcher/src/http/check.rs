//! `k8s-gpu-mcp check --http-config FILE`: the shared server's own readiness. Its configuration, its issuer
//! (discovery and keys reachable, the issuer named as configured), its TLS files, and its own Kubernetes
//! identity, which must be able to impersonate people and needs nothing else (deploy/http/rbac.yaml). The
//! people's own rights are theirs: each person runs `check` with their own kubeconfig.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::config::HttpConfig;
use super::fetch::Fetcher;
use crate::cluster::clients::Clients;
use crate::probe::kube::K8sConfig;
use crate::readiness::ReadinessCheck;

const FIX_RBAC: &str = "kubectl apply -f deploy/http/rbac.yaml   # as a cluster admin; run the server as \
                        the k8s-gpu-mcp-server service account";

/// The issuer's discovery document and keys.
async fn issuer(cfg: &HttpConfig) -> ReadinessCheck {
    let fetch = match Fetcher::new(cfg.issuer_ca_file.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            return ReadinessCheck::fail("issuer", e, "set issuer_ca_file to a PEM file of CAs");
        }
    };
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        cfg.issuer.trim_end_matches('/')
    );
    let jwks_uri = match &cfg.jwks_uri {
        Some(j) => j.clone(),
        None => match fetch.json(&discovery).await {
            Ok(doc) => {
                if doc.get("issuer").and_then(|v| v.as_str()) != Some(cfg.issuer.as_str()) {
                    return ReadinessCheck::fail(
                        "issuer",
                        format!(
                            "{discovery} names issuer {}, not {}: tokens would never match",
                            doc.get("issuer").unwrap_or(&serde_json::Value::Null),
                            cfg.issuer
                        ),
                        "set issuer to exactly the provider's issuer URL",
                    );
                }
                match doc.get("jwks_uri").and_then(|v| v.as_str()) {
                    Some(j) => j.to_string(),
                    None => {
                        return ReadinessCheck::fail(
                            "issuer",
                            format!("{discovery} has no jwks_uri"),
                            "set jwks_uri",
                        );
                    }
                }
            }
            Err(e) => {
                return ReadinessCheck::fail(
                    "issuer",
                    e,
                    "check the issuer URL and that this host reaches it (issuer_ca_file for a private CA)",
                );
            }
        },
    };
    match fetch.json(&jwks_uri).await {
        Ok(set) => {
            let keys = set
                .get("keys")
                .and_then(|k| k.as_array())
                .map_or(0, Vec::len);
            if keys == 0 {
                ReadinessCheck::fail(
                    "issuer",
                    format!("{jwks_uri}: no keys"),
                    "check the provider",
                )
            } else {
                ReadinessCheck::ok(
                    "issuer",
                    format!("{}: {keys} signing key(s) at {jwks_uri}", cfg.issuer),
                )
            }
        }
        Err(e) => ReadinessCheck::fail("issuer", e, "check jwks_uri and that this host reaches it"),
    }
}

fn tls(cfg: &HttpConfig) -> Option<ReadinessCheck> {
    let t = cfg.tls.as_ref()?;
    for (what, p) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
        if let Err(e) = std::fs::metadata(p) {
            return Some(ReadinessCheck::fail(
                "tls",
                format!("{what} {}: {e}", p.display()),
                "give readable PEM files, or serve plain HTTP behind a TLS proxy",
            ));
        }
    }
    Some(ReadinessCheck::ok(
        "tls",
        format!("HTTPS with {}", t.cert_file.display()),
    ))
}

/// Whether the server's own identity may impersonate users and groups (and says so per kind).
async fn impersonation(k8s: &K8sConfig) -> Vec<ReadinessCheck> {
    let clients = match Clients::connect(k8s.kubeconfig.as_deref(), k8s.context.as_deref()).await {
        Ok(c) => c,
        Err(e) => return vec![ReadinessCheck::fail("kubeconfig", e, FIX_RBAC)],
    };
    let client = match clients.get(None).await {
        Ok(c) => c,
        Err(e) => {
            return vec![ReadinessCheck::fail(
                "api-server",
                e.to_string(),
                "kubectl cluster-info",
            )];
        }
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client);
    let mut missing = Vec::new();
    for resource in ["users", "groups"] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(String::new()),
                    resource: Some(resource.into()),
                    verb: Some("impersonate".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(resource),
            Err(e) => {
                return vec![ReadinessCheck::fail(
                    "permissions/impersonate",
                    format!("access review failed: {e}"),
                    "kubectl auth can-i impersonate users",
                )];
            }
        }
    }
    if missing.is_empty() {
        vec![ReadinessCheck::ok(
            "permissions/impersonate",
            "the server's identity may act for people (users and groups); every call is authorized as its person",
        )]
    } else {
        vec![ReadinessCheck::fail(
            "permissions/impersonate",
            format!(
                "the server's identity may not impersonate {}: no call could act as its person",
                missing.join(" or ")
            ),
            FIX_RBAC,
        )]
    }
}

/// The checklist of a shared server.
pub async fn run(path: &std::path::Path, k8s: &K8sConfig) -> Vec<ReadinessCheck> {
    let cfg = match HttpConfig::read(path) {
        Ok(c) => c,
        Err(e) => {
            return vec![ReadinessCheck::fail(
                "http-config",
                e,
                "see deploy/http/config.yaml for every key",
            )];
        }
    };
    let mut out = vec![ReadinessCheck::ok(
        "http-config",
        format!(
            "{} takes tokens of {} for audience {}; people are `{}<{}>`",
            cfg.url,
            cfg.issuer,
            cfg.audience(),
            cfg.user_prefix,
            cfg.user_claim
        ),
    )];
    out.push(issuer(&cfg).await);
    out.extend(tls(&cfg));
    out.extend(impersonation(k8s).await);
    out
}
