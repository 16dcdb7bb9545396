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
    let may = |group: &str, resource: &str, verb: &str| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    verb: Some(verb.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &review)
                .await
                .map(|r| r.status.is_some_and(|s| s.allowed))
        }
    };
    // The legacy grant (`impersonate`, rbac.yaml) applies whenever it is there; the constrained one
    // (`impersonate:user-info`, rbac-constrained.yaml, Kubernetes 1.36+) bounds the server only without it.
    let (mut missing, mut legacy) = (Vec::new(), false);
    for resource in ["users", "groups"] {
        let grants = async {
            if may("", resource, "impersonate").await? {
                return Ok::<_, kube::Error>(Some(true));
            }
            Ok(
                may("authentication.k8s.io", resource, "impersonate:user-info")
                    .await?
                    .then_some(false),
            )
        };
        match grants.await {
            Ok(Some(l)) => legacy |= l,
            Ok(None) => missing.push(resource),
            Err(e) => {
                return vec![ReadinessCheck::fail(
                    "permissions/impersonate",
                    format!("access review failed: {e}"),
                    "kubectl auth can-i impersonate users",
                )];
            }
        }
    }
    if !missing.is_empty() {
        return vec![ReadinessCheck::fail(
            "permissions/impersonate",
            format!(
                "the server's identity may not impersonate {}: no call could act as its person",
                missing.join(" or ")
            ),
            FIX_RBAC,
        )];
    }
    vec![ReadinessCheck::ok(
        "permissions/impersonate",
        if legacy {
            "the server's identity may act for people (users and groups) with any verb; every call is authorized \
             as its person. On Kubernetes 1.36+, deploy/http/rbac-constrained.yaml bounds it to the tools' verbs"
        } else {
            "the server's identity may act for people only with the tools' verbs (constrained impersonation); \
             every call is authorized as its person"
        },
    )]
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    type Rule = (String, String, String);

    /// (group, resource, verb) of every rule of the ClusterRoles in `yaml` (only `name`, where given).
    fn rules(yaml: &str, name: Option<&str>) -> BTreeSet<Rule> {
        let mut out = BTreeSet::new();
        for doc in yaml.split("\n---\n") {
            let v: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
            if v["kind"] != "ClusterRole" || name.is_some_and(|n| v["metadata"]["name"] != n) {
                continue;
            }
            for r in v["rules"].as_array().unwrap() {
                let list = |k: &str| -> Vec<String> {
                    r[k].as_array()
                        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default()
                };
                for g in list("apiGroups") {
                    for res in list("resources") {
                        for verb in list("verbs") {
                            out.insert((g.clone(), res.clone(), verb));
                        }
                    }
                }
            }
        }
        out
    }

    /// rbac-constrained.yaml lets the server act for people with exactly the requests deploy/rbac.yaml's
    /// roles allow (their marker permissions aside, which no request uses): a rule added to one and not the
    /// other fails here.
    #[test]
    fn the_constrained_grant_covers_the_tools_rules_and_no_more() {
        let tools: BTreeSet<Rule> = rules(include_str!("../../../deploy/rbac.yaml"), None)
            .into_iter()
            .filter(|(g, _, _)| g != "k8s-gpu-mcp.io")
            .map(|(g, r, v)| (g, r, format!("impersonate-on:user-info:{v}")))
            .collect();
        let granted: BTreeSet<Rule> = rules(
            include_str!("../../../deploy/http/rbac-constrained.yaml"),
            Some("k8s-gpu-mcp-impersonator-constrained"),
        )
        .into_iter()
        // Whom, and the person's own access reviews: not requests of deploy/rbac.yaml's roles.
        .filter(|(g, _, _)| g != "authentication.k8s.io" && g != "authorization.k8s.io")
        .collect();
        let missing: Vec<_> = tools.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&tools).collect();
        assert!(
            missing.is_empty(),
            "rbac.yaml allows, the constrained grant does not: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "the constrained grant allows beyond rbac.yaml: {extra:?}"
        );
        assert!(tools.len() > 20, "{tools:?}");
    }
}
