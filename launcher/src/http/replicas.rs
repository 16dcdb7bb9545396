//! Several replicas of `serve --http` behind one round-robin Service, without session affinity.
//!
//! A task and a 2025-11-25 session live in the memory of the replica that started them. Each replica puts
//! its pod's name before the ids it hands out (`{pod}.{id}`); a request that names another replica's id is
//! forwarded to that replica, found as a pod of the configured labels in the replicas' namespace (read with
//! the server's own identity, which may only `get` pods there). The forwarded request keeps its bearer token:
//! it goes to the same resource (this server, the token's audience), which checks it again. Where the named
//! replica has stopped or is stopping, the request is answered here and says so.
//!
//! What is never done: forward to a pod without the replicas' labels, to a name that is not a pod name, to
//! a pod outside the namespace, or a second time (a forwarded request is answered where it lands).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Pod;

use super::config::ReplicasConfig;
use crate::mcp::framework::caller::split_replica;

/// Set on a forwarded request: the replica it came through. The receiver answers it itself (no second hop);
/// a client that sets it only keeps its own request from being forwarded.
pub const FORWARDED_BY: &str = "k8s-gpu-mcp-forwarded-by";

/// How long connecting to another replica may take (the pod network; a replica that accepts nothing is
/// stopping).
const CONNECT: Duration = Duration::from_secs(3);

/// A pod that is gone and one that is no replica read the same: a person learns nothing of the namespace's
/// other pods by naming them.
const GONE: &str = "has stopped (no replica pod of that name)";

/// How long the pod lookup may take.
const LOOKUP: Duration = Duration::from_secs(5);

/// Hop-by-hop headers (RFC 9110 section 7.6.1) are the connection's, not the request's.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub struct Replicas {
    /// This replica: its pod's name.
    me: String,
    namespace: String,
    selector: BTreeMap<String, String>,
    port: u16,
    pods: kube::Api<Pod>,
    client: Client<HttpConnector, Body>,
}

/// Where a named replica is.
#[derive(Debug, PartialEq, Eq)]
pub enum Peer {
    /// Serving at this address.
    At(SocketAddr),
    /// Not to be asked: why, as the answer says it ("has stopped", "is stopping", ...).
    Gone(String),
}

impl Replicas {
    /// This replica's name from `POD_NAME` (the downward API), its namespace from the config, `POD_NAMESPACE`
    /// or the service account's; `client` is the server's own identity.
    pub fn new(cfg: &ReplicasConfig, client: kube::Client) -> Result<Replicas, String> {
        let me = std::env::var("POD_NAME")
            .ok()
            .filter(|n| split_replica(&format!("{n}.x")).is_some_and(|(r, _)| r == n))
            .ok_or(
                "replicas: POD_NAME must name this replica's pod (the downward API: fieldRef \
                 metadata.name, as deploy/http/server.yaml sets it)",
            )?;
        let namespace = cfg
            .namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
            })
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .ok_or("replicas: no namespace (set replicas.namespace or POD_NAMESPACE)")?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT));
        http.set_nodelay(true);
        Ok(Replicas {
            pods: kube::Api::namespaced(client, &namespace),
            me,
            namespace,
            selector: cfg.selector.clone(),
            port: cfg.port,
            client: Client::builder(TokioExecutor::new()).build(http),
        })
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// The id a client sees for this replica's `id`.
    pub fn outer(&self, id: &str) -> String {
        format!("{}.{id}", self.me)
    }

    /// Another replica named by `id`, if it names one.
    pub fn other<'a>(&self, id: &'a str) -> Option<&'a str> {
        split_replica(id).map(|(r, _)| r).filter(|r| *r != self.me)
    }

    /// Where replica `name` serves, from its pod: it must carry every label of the selector, be running and
    /// ready, not be deleted, and have an IP.
    pub async fn locate(&self, name: &str) -> Peer {
        let pod = match tokio::time::timeout(LOOKUP, self.pods.get_opt(name)).await {
            Err(_) => return Peer::Gone("could not be looked up in time".into()),
            Ok(Err(e)) => {
                tracing::warn!(replica = name, error = %e, "replica lookup failed");
                return Peer::Gone(format!(
                    "could not be looked up ({})",
                    brief(&e.to_string())
                ));
            }
            Ok(Ok(None)) => return Peer::Gone(GONE.into()),
            Ok(Ok(Some(p))) => p,
        };
        judge(&pod, &self.selector, &self.namespace, self.port)
    }

    /// Send `req` to the replica at `addr` and stream its answer back; the request's `Host` and token go
    /// with it (the same resource checks them again).
    pub async fn forward(&self, mut req: Request, addr: SocketAddr, replica: &str) -> Response {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let Ok(uri) = format!("http://{addr}{pq}").parse::<Uri>() else {
            return (StatusCode::BAD_REQUEST, "bad request path").into_response();
        };
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        for name in HOP_BY_HOP {
            h.remove(name);
        }
        if let Ok(v) = HeaderValue::from_str(&self.me) {
            h.insert(FORWARDED_BY, v);
        }
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::warn!(replica, %addr, error = %e, "forwarding to a replica failed");
                (
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "replica {replica}, which holds this request's task or session, did not answer \
                         ({}); if it is stopping, its tasks end with it: start the call again",
                        brief(&e.to_string())
                    ),
                )
                    .into_response()
            }
        }
    }
}

/// An error as one short line for an answer.
fn brief(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

/// Whether `pod` is a replica to forward to (pure, for tests).
fn judge(pod: &Pod, selector: &BTreeMap<String, String>, namespace: &str, port: u16) -> Peer {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    if pod
        .metadata
        .namespace
        .as_deref()
        .is_some_and(|n| n != namespace)
        || selector.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return Peer::Gone(GONE.into());
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Peer::Gone("is stopping".into());
    }
    let status = pod.status.clone().unwrap_or_default();
    if status.phase.as_deref() != Some("Running") {
        return Peer::Gone(format!(
            "is not running (phase {})",
            status.phase.as_deref().unwrap_or("unknown")
        ));
    }
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return Peer::Gone("is not ready".into());
    }
    match status.pod_ip.as_deref().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => Peer::At(SocketAddr::new(ip, port)),
        _ => Peer::Gone("has no pod IP".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn replica() -> serde_json::Value {
        json!({
            "metadata": {"name": "srv-a", "namespace": "gpu-diagnostics",
                         "labels": {"app.kubernetes.io/name": "k8s-gpu-mcp-server", "extra": "x"}},
            "status": {"phase": "Running", "podIP": "10.0.0.7",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    type Change = dyn Fn(&mut serde_json::Value);

    /// Only a ready, running pod of the replicas' labels and namespace is asked; every look-alike is not.
    #[test]
    fn only_a_ready_replica_pod_is_forwarded_to() {
        let sel: BTreeMap<String, String> = [(
            "app.kubernetes.io/name".to_string(),
            "k8s-gpu-mcp-server".to_string(),
        )]
        .into();
        let j = |v: serde_json::Value| judge(&pod(v), &sel, "gpu-diagnostics", 8080);
        assert_eq!(j(replica()), Peer::At("10.0.0.7:8080".parse().unwrap()));
        let cases: [(&str, &Change); 7] = [
            ("has stopped", &|p| {
                p["metadata"]["labels"] = json!({"app.kubernetes.io/name": "tenant"})
            }),
            ("has stopped", &|p| {
                p["metadata"]["labels"] = serde_json::Value::Null
            }),
            ("has stopped", &|p| {
                p["metadata"]["namespace"] = json!("other")
            }),
            ("stopping", &|p| {
                p["metadata"]["deletionTimestamp"] = json!("2026-11-25T10:00:00Z")
            }),
            ("not running", &|p| p["status"]["phase"] = json!("Pending")),
            ("not ready", &|p| {
                p["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}])
            }),
            ("no pod IP", &|p| {
                p["status"]["podIP"] = json!("evil.example.com")
            }),
        ];
        for (why, change) in cases {
            let mut p = replica();
            change(&mut p);
            match j(p.clone()) {
                Peer::Gone(w) => assert!(w.contains(why), "{p}: {w}"),
                at => panic!("{p}: forwarded to {at:?}"),
            }
        }
    }

    #[test]
    fn ids_name_their_replica() {
        assert_eq!(
            split_replica("srv-7d9f-abcde.3f2a-11"),
            Some(("srv-7d9f-abcde", "3f2a-11"))
        );
        assert_eq!(split_replica("a.b.c"), Some(("a.b", "c")));
        for bad in [
            "plain-uuid",
            ".x",
            "x.",
            "UPPER.x",
            "-lead.x",
            "a/b.x",
            "a b.x",
            "10.0.0.1:80/x.y",
        ] {
            assert_eq!(split_replica(bad), None, "{bad}");
        }
    }
}
